"""Retrieval-only evaluation: build a knowledge base from a set's corpus, score ranked documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from evals.metrics import dedupe, mean_scores, retrieval_scores
from evals.sets import EvalSet
from retrieval.ingest import IngestReport
from retrieval.kb import Library
from retrieval.protocols import Reranker
from retrieval.search import HybridSearcher
from retrieval.types import Filters

# Enough chunks that, collapsed to documents, the top 10 are filled even for long documents.
DEPTH = 30
# Fusion weights (dense, lexical) tried by `--tune`; the chosen ones live in retrieval/search.py.
WEIGHT_GRID = ((1.0, 0.0), (1.0, 0.3), (1.0, 0.6), (1.0, 1.0), (0.6, 1.0), (0.3, 1.0), (0.0, 1.0))


@dataclass(frozen=True)
class RetrievalResult:
    set_name: str
    mode: str  # "dense" | "lexical" | "hybrid" | "hybrid@<wd>,<wl>" for tuning rows
    cases: int
    metrics: dict[str, float]


def eval_kb_name(evalset: EvalSet, embedder: str | None) -> str:
    """A knowledge base per (corpus bytes, embedder): rebuilt only when either changes."""
    tag = (embedder or "auto").replace(":", "-").replace("/", "-")[-24:]
    return f"eval-{evalset.name}-{evalset.content_hash()}-{tag}"


def build_eval_kb(library: Library, evalset: EvalSet, embedder: str | None = None) -> str:
    """Ingest the set's corpus (a no-op when already ingested) and return the kb name."""
    kb = eval_kb_name(evalset, embedder)
    if kb not in {info.name for info in library.list()}:
        library.create(kb, embedder=embedder, lang=majority_lang(evalset))
    check_ingested(evalset, library.ingest_paths(kb, [evalset.corpus]))
    return kb


def check_ingested(evalset: EvalSet, report: IngestReport) -> None:
    """A corpus line the loaders skipped would silently shrink the set: stop instead."""
    if report.skipped:
        raise ValueError(
            f"{evalset.corpus}: {len(report.skipped)} lines skipped, first: {report.skipped[0]}"
        )


def majority_lang(evalset: EvalSet) -> str | None:
    langs = [c.lang for c in evalset.cases if c.lang]
    if not langs:
        return None
    zh = sum(1 for lang in langs if lang == "zh")
    return "zh" if zh * 2 >= len(langs) else "en"


def evidence_reranker(library: Library, weight: float) -> Reranker:
    """The trained evidence scorer as a second stage (agent/evidence_rerank.py), over e5."""
    from agent.citations import SupportScorer
    from agent.evidence import EvidenceFinder
    from agent.evidence_rerank import EvidenceReranker

    scorer = SupportScorer(library.embedder_for("bundled:e5"), cache_size=200_000)
    return EvidenceReranker(EvidenceFinder(scorer), weight)


def run_retrieval(
    searcher: HybridSearcher,
    evalset: EvalSet,
    kb: str,
    modes: Sequence[str] = ("dense", "lexical", "hybrid"),
    progress: bool = True,
    tune: bool = False,
    reranker: Reranker | None = None,
) -> list[RetrievalResult]:
    """Mean recall@1/5/10, hit@5, MRR and nDCG@10 per mode over the cases that have gold documents.

    Candidates are fetched once per case and ranked for every mode, so modes compare on equal
    terms; `tune` adds a row per fusion weight pair in WEIGHT_GRID; `reranker` adds a row
    "hybrid+rerank": the hybrid ranking reordered by it.
    """
    cases = [c for c in evalset.cases if c.gold_doc_ids]
    variants: dict[str, tuple[str, tuple[float, float] | None]] = {m: (m, None) for m in modes}
    if tune:
        variants.update({f"hybrid@{wd:g},{wl:g}": ("hybrid", (wd, wl)) for wd, wl in WEIGHT_GRID})
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    if reranker is not None:
        rows["hybrid+rerank"] = []
    fetch = "hybrid" if tune or len(modes) > 1 else modes[0]
    for case in tqdm(cases, desc=f"{evalset.name}", disable=not progress, unit="q"):
        filters = Filters(group=case.group or None)
        dense, lexical = searcher.candidates(case.question, [kb], filters, fetch, k=DEPTH)
        for name, (mode, weights) in variants.items():
            hits = searcher.combine(
                case.question, dense, lexical, k=DEPTH, mode=mode, weights=weights
            )
            rows[name].append(retrieval_scores(dedupe(h.doc_id for h in hits), case.gold_doc_ids))
        if reranker is not None:
            fused = searcher.combine(case.question, dense, lexical, k=DEPTH, mode="hybrid")
            hits = reranker.rerank(case.question, fused)
            scores = retrieval_scores(dedupe(h.doc_id for h in hits), case.gold_doc_ids)
            rows["hybrid+rerank"].append(scores)
    return [
        RetrievalResult(evalset.name, name, len(cases), mean_scores(rows[name])) for name in rows
    ]
