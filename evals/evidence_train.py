"""Train and measure the evidence scorer (agent/evidence.py) on the shared dev sets.

    python -m evals.evidence_train [--evalsets ../shared/evalsets] [--rgb-items 90] [--vectors F]

Cases: XQuAD en and zh (the sentence holding the gold span is the positive; the same question
over the paragraphs that do not hold the answer, from the same articles, is an unanswerable case),
RGB-zh (an item's answerable group, and its negatives-only group) and our own newcomer dev set
(evals/newcomer); the newcomer held-out set is only reported on. Candidates are the top 5
passages by e5 cosine within the case's scope, as at run time; the gold passage joins at rank 5
when the cosine missed it. Train on two thirds of the items (split by document / item, so no
passage is seen in both), report on the other third: top-1 sentence accuracy against the
cosine-closest sentence (the old quote fallback), and answerability at the chosen threshold.
Writes agent/evidence_data/evidence.json (weights and figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.citations import SupportScorer
from agent.evidence import MODEL_PATH, Candidate, EvidenceModel, candidates, features
from evals.sets import load_set
from evals.short_questions import shorten
from retrieval.types import Hit

TOP = 5
NEWCOMER_WEIGHT = 1  # copies of each newcomer dev case in training


@dataclass
class Example:
    x: np.ndarray  # features of each candidate sentence
    y: np.ndarray  # 1 where the sentence holds an answer
    cos: np.ndarray
    answerable: bool
    test: bool
    source: str  # the evaluation set
    question: str = ""
    sentences: tuple[str, ...] = ()  # the candidate sentences, rows of x
    cands: tuple[Candidate, ...] = ()


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def _corpus(folder: Path) -> dict[str, dict]:
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        return {d["id"]: d for d in map(json.loads, f)}


def _example(
    scorer: SupportScorer,
    question: str,
    docs: Sequence[dict],
    doc_vecs: np.ndarray,
    answers: Sequence[str],
    must: str | None,
    test: bool,
    source: str,
) -> Example | None:
    q = scorer.embedder.embed_query(question)
    order = list(np.argsort(-(doc_vecs @ q))[:TOP])
    ids = [docs[i]["id"] for i in order]
    if must is not None and must not in ids:
        order[-1] = next(i for i, d in enumerate(docs) if d["id"] == must)
    hits = [
        Hit(k, docs[i]["id"], "train", 0.0, docs[i]["text"], docs[i].get("title", ""))
        for k, i in enumerate(order)
    ]
    cands = candidates(hits, TOP)
    if not cands:
        return None
    cos = scorer.sentence_vectors([c.sentence for c in cands]) @ q
    wanted = [_norm(a) for a in answers if a.strip()]
    y = np.array([any(a in _norm(c.sentence) for a in wanted) for c in cands], dtype=np.int8)
    x = features(question, cands, cos)
    sentences = tuple(c.sentence for c in cands)
    return Example(x, y, cos, bool(wanted), test, source, question, sentences, tuple(cands))


def shortened(scorer: SupportScorer, examples: Sequence[Example], seed: int) -> list[Example]:
    """A copy of each example asked with a shortened question (evals/short_questions.py): the
    same candidates and answer sentences, features and cosines computed again."""
    rng = random.Random(seed)
    out = []
    for e in examples:
        question = shorten(e.question, rng)
        if question == e.question:
            continue
        cos = scorer.sentence_vectors(list(e.sentences)) @ scorer.embedder.embed_query(question)
        x = features(question, e.cands, cos)
        out.append(dataclasses.replace(e, x=x, cos=cos, question=question, source=e.source))
    return out


def xquad(scorer: SupportScorer, folder: Path) -> list[Example]:
    corpus = _corpus(folder)
    docs = list(corpus.values())
    vecs = scorer.embedder.embed_documents([d["text"] for d in docs])
    test_docs = {d["id"] for i, d in enumerate(docs) if i % 3 == 0}
    out = []
    for case in load_set(folder).cases:
        gold = case.gold_doc_ids[0]
        test = gold in test_docs
        ex = _example(scorer, case.question, docs, vecs, case.answers, gold, test, folder.name)
        # The same question over what does not hold the answer: on-topic, unanswerable.
        wanted = [_norm(a) for a in case.answers]
        keep = [i for i, d in enumerate(docs) if not any(a in _norm(d["text"]) for a in wanted)]
        neg = _example(
            scorer, case.question, [docs[i] for i in keep], vecs[keep], [], None, test, folder.name
        )
        out += [e for e in (ex, neg) if e is not None]
    return out


def rgb(scorer: SupportScorer, folder: Path, items: int) -> list[Example]:
    corpus = _corpus(folder)
    groups: dict[str, list[dict]] = {}
    for d in corpus.values():
        groups.setdefault(d["group"], []).append(d)
    out: list[Example] = []
    answerable = [c for c in load_set(folder).cases if c.answer_type == "span"][:items]
    for n, case in enumerate(answerable):
        for group, answers in ((case.group, case.answers), (f"{case.group}-neg", ())):
            docs = groups.get(group, [])
            if not docs:
                continue
            vecs = scorer.sentence_vectors([d["text"] for d in docs])
            ex = _example(scorer, case.question, docs, vecs, answers, None, n % 3 == 0, "rgb-zh")
            if ex is not None and (not answers or ex.y.any()):
                out.append(ex)
    return out


def newcomer(scorer: SupportScorer, folder: Path, test: bool) -> list[Example]:
    """Our own sets (evals/newcomer*): passages cut as ingest cuts them; a follow-up is asked in
    its standalone form (`reference`), as the rewrite step hands it over."""
    from retrieval.sections import passages

    docs = []
    for d in _corpus(folder).values():
        for i, span in enumerate(passages(d["text"], count_tokens=_tokens, max_tokens=256)):
            docs.append({**d, "id": f"{d['id']}#{i}", "text": span.text, "doc": d["id"]})
    vecs = scorer.sentence_vectors([d["text"] for d in docs])
    out = []
    for case in load_set(folder).cases:
        question = case.reference if case.history and case.reference else case.question
        ex = _example(scorer, question, docs, vecs, case.answers, None, test, folder.name)
        if ex is not None and (not case.answers or ex.y.any()):
            out.append(ex)
    return out


def _tokens(text: str) -> int:
    return len(text) // 2  # about e5's tokens per character, enough to cut like ingest


class CachedEmbedder:
    """An embedder whose vectors persist in an .npz file between training runs."""

    def __init__(self, inner: Any, path: Path | None) -> None:
        self.inner, self.path, self.dim = inner, path, inner.dim
        self.docs: dict[str, np.ndarray] = {}
        self.queries: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            data = np.load(path, allow_pickle=False)
            for key, table in (("d", self.docs), ("q", self.queries)):
                table.update(zip(data[f"{key}_text"].tolist(), data[f"{key}_vec"], strict=True))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.docs]
        if missing:
            self.docs.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return np.stack([self.docs[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        if text not in self.queries:
            self.queries[text] = self.inner.embed_query(text)
        return self.queries[text]

    def save(self) -> None:
        if self.path is None:
            return
        arrays = {}
        for key, table in (("d", self.docs), ("q", self.queries)):
            arrays[f"{key}_text"] = np.array(list(table), dtype=str)
            arrays[f"{key}_vec"] = np.stack(list(table.values()))
        np.savez(self.path, **arrays)  # type: ignore[arg-type]


def fit(train: Sequence[Example]) -> EvidenceModel:
    """An MLP (16 ReLU units) on every candidate sentence, answering or not. Measured on the
    held-out cases: a logistic regression ranked worse (top-1 0.747 against 0.794), a pairwise
    (RankNet-style) one worse still (0.719), and repeating the newcomer dev cases 3x lowered the
    newcomer held-out top-1 (0.739 against 0.804); NEWCOMER_WEIGHT copies are kept to say so."""
    from sklearn.neural_network import MLPClassifier

    rows = [e for e in train for _ in range(int(NEWCOMER_WEIGHT) if "newcomer" in e.source else 1)]
    x = np.vstack([e.x for e in rows])
    y = np.concatenate([e.y for e in rows])
    mean, scale = x.mean(0), x.std(0) + 1e-9
    mlp = MLPClassifier((16,), alpha=1e-3, max_iter=500, random_state=0)
    mlp.fit((x - mean) / scale, y)
    layers = tuple((w, b) for w, b in zip(mlp.coefs_, mlp.intercepts_, strict=True))
    return EvidenceModel(layers, mean, scale, 0.5)


def report(model: EvidenceModel, examples: Sequence[Example]) -> dict[str, float]:
    """Top-1 accuracy (trained vs cosine) where an answer exists; answerability at threshold."""
    top1 = cos1 = answered_pos = refused_neg = n_pos = n_neg = 0
    best = {True: [], False: []}  # type: dict[bool, list[float]]
    for e in examples:
        p = model.probabilities(e.x)
        best[e.answerable].append(float(p.max()))
        if e.answerable:
            n_pos += 1
            top1 += int(e.y[int(np.argmax(p))])
            cos1 += int(e.y[int(np.argmax(e.cos))])
            answered_pos += int(p.max() >= model.threshold)
        else:
            n_neg += 1
            refused_neg += int(p.max() < model.threshold)
    return {
        "cases_answerable": n_pos,
        "cases_unanswerable": n_neg,
        "top1_trained": round(top1 / max(n_pos, 1), 3),
        "top1_cosine": round(cos1 / max(n_pos, 1), 3),
        "answer_rate": round(answered_pos / max(n_pos, 1), 3),
        "refusal_recall": round(refused_neg / max(n_neg, 1), 3),
        "answerability_auc": round(_auc(best[True], best[False]), 3),
    }


def _auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(an answerable case's best sentence outscores an unanswerable one's): the
    answerability decision's quality at every threshold at once."""
    if not pos or not neg:
        return float("nan")
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def choose_threshold(model: EvidenceModel, train: Sequence[Example]) -> float:
    """The threshold with the best balanced accuracy on the training cases."""
    pos = np.array([model.probabilities(e.x).max() for e in train if e.answerable])
    neg = np.array([model.probabilities(e.x).max() for e in train if not e.answerable])
    grid = np.linspace(0.05, 0.95, 91)
    acc = [((pos >= t).mean() + (neg < t).mean()) / 2 for t in grid]
    return float(grid[int(np.argmax(acc))])


def main(argv: Sequence[str] | None = None) -> None:
    from retrieval.embedders import load_embedder

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evalsets", type=Path, default=Path("../shared/evalsets"))
    ap.add_argument("--rgb-items", type=int, default=100)
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--vectors", type=Path, help="keep embedded texts in this .npz between runs")
    ap.add_argument(
        "--short", type=int, default=0,
        help="train also on this many copies of each case asked with a shortened question",
    )  # fmt: skip
    ap.add_argument(
        "--threshold", type=float,
        help="answerability threshold to store instead of the training set's balanced-accuracy "
        "best (0.25): the shipped 0.18 is the best on the newcomer dev set's pipeline run "
        "(docs/EVALS.md), where retrieval over a whole corpus, not one gold paragraph, "
        "feeds the scorer",
    )  # fmt: skip
    args = ap.parse_args(argv)
    embedder = CachedEmbedder(load_embedder("bundled:e5"), args.vectors)
    scorer = SupportScorer(embedder, cache_size=200_000)  # type: ignore[arg-type]
    examples = xquad(scorer, args.evalsets / "xquad-en")
    examples += xquad(scorer, args.evalsets / "xquad-zh")
    examples += rgb(scorer, args.evalsets / "rgb-zh", args.rgb_items)
    ours = Path(__file__).parent
    examples += newcomer(scorer, ours / "newcomer", test=False)  # a dev set: trained on
    examples += newcomer(scorer, ours / "newcomer-holdout", test=True)  # never trained on
    train = [e for e in examples if not e.test]
    test = [e for e in examples if e.test]
    short_test = shortened(scorer, test, seed=1000)
    for copy in range(args.short):
        train += shortened(scorer, [e for e in examples if not e.test], seed=copy)
    embedder.save()
    model = fit(train)
    chosen = choose_threshold(model, train) if args.threshold is None else args.threshold
    model = dataclasses.replace(model, threshold=chosen)
    figures = {"train": report(model, train), "test": report(model, test)}
    for source in ("xquad-en", "xquad-zh", "rgb-zh", "newcomer-holdout"):
        figures[f"test {source}"] = report(model, [e for e in test if e.source == source])
    figures["test, questions shortened"] = report(model, short_test)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        **model.to_json(),
        "figures": figures,
        "command": f"python -m evals.evidence_train --rgb-items {args.rgb_items}"
        + (f" --short {args.short}" if args.short else "")
        + ("" if args.threshold is None else f" --threshold {args.threshold}"),
    }
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
