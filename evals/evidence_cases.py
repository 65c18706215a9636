"""The evidence scorer's training and held-out cases, built from the shared dev sets and ours.

Each case is one question over the top passages by e5 cosine within its scope, as at run time,
its candidate sentences, their features and which of them hold an answer (evals/evidence_train.py
trains and measures on them). XQuAD en / zh and PolicyQA: the sentence holding the gold span is
the positive, and the same question over the passages that do not hold the answer is an
unanswerable case; STARD (real people's legal questions, statute articles as gold): the gold
article's sentences are the positives, the question over the other articles is unanswerable;
RGB-zh: an item's answerable group and its negatives-only group; our newcomer sets. Cases are
split by document / item, so no passage is in both halves.
"""

from __future__ import annotations

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
from agent.evidence import Candidate, candidates, features
from evals.sets import load_set
from evals.short_questions import shorten
from retrieval.types import Hit

TOP = 5
NEWCOMER_WEIGHT = 3  # copies of each newcomer dev case in training (evidence_train.fit)


@dataclass
class Example:
    x: np.ndarray  # features of each candidate sentence
    y: np.ndarray  # 1 where the sentence holds an answer
    cos: np.ndarray
    answerable: bool
    test: bool
    source: str  # the evaluation set
    question: str = ""
    cands: tuple[Candidate, ...] = ()  # the candidate sentences, rows of x

    @property
    def sentences(self) -> tuple[str, ...]:
        return tuple(c.sentence for c in self.cands)


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
    whole: bool = False,
) -> Example | None:
    """The case; a sentence answers when it holds one of `answers` or, `whole`, lies in one."""
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
    held = [_norm(c.sentence) for c in cands]
    y = np.array(
        [any((s in a) if whole else (a in s) for a in wanted) for s in held], dtype=np.int8
    )
    x = features(question, cands, cos)
    return Example(x, y, cos, bool(wanted), test, source, question, tuple(cands))


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
        out.append(dataclasses.replace(e, x=x, cos=cos, question=question))
    return out


def spans(scorer: SupportScorer, folder: Path, limit: int | None = None) -> list[Example]:
    """A set whose cases mark the answer as a span of a gold passage (XQuAD, PolicyQA)."""
    corpus = _corpus(folder)
    docs = list(corpus.values())
    vecs = scorer.embedder.embed_documents([d["text"] for d in docs])
    test_docs = {d["id"] for i, d in enumerate(docs) if i % 3 == 0}
    out = []
    for case in load_set(folder).cases[:limit]:
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


def stard(scorer: SupportScorer, folder: Path, limit: int) -> list[Example]:
    """STARD: a person's legal question, the statute articles that answer it. An article is a
    sentence or three, so each of its sentences counts as answering."""
    corpus = _corpus(folder)
    docs = list(corpus.values())
    vecs = scorer.embedder.embed_documents([d["text"] for d in docs])
    out = []
    for n, case in enumerate(load_set(folder).cases[:limit]):
        gold = set(case.gold_doc_ids)
        texts = [corpus[g]["text"] for g in case.gold_doc_ids if g in corpus]
        if not texts:
            continue
        test = n % 3 == 0
        first = case.gold_doc_ids[0] if case.gold_doc_ids[0] in corpus else None
        ex = _example(scorer, case.question, docs, vecs, texts, first, test, folder.name, True)
        keep = [i for i, d in enumerate(docs) if d["id"] not in gold]
        neg = _example(
            scorer, case.question, [docs[i] for i in keep], vecs[keep], [], None, test, folder.name
        )
        out += [e for e in (ex, neg) if e is not None and (not e.answerable or e.y.any())]
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
