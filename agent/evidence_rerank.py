"""The trained evidence scorer as a retrieval reranker: a passage is as good as its best sentence.

The evidence model (agent/evidence.py) says how likely each sentence answers the question. Used
as a second stage, each fused candidate gets its best sentence's probability, blended with the
first stage's order so a confident first stage is not thrown away. It plugs into
`HybridSearcher(reranker=...)` through the retrieval `Reranker` protocol; it lives in agent/
because the scorer does (retrieval does not import agent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from agent.evidence import EvidenceFinder
from retrieval.types import Hit


class EvidenceReranker:
    """score = weight · relevance + (1 − weight) · (1 − position / (n − 1)), where relevance is
    each candidate's best-sentence probability rescaled to [0, 1] among the candidates.

    Rescaling matters: the probabilities are calibrated for answerability and sit far below 1
    (0.15 for a clear answer is common), so blended raw they could never move a passage.
    Only the first `depth` candidates are rescored (each costs its sentences' vectors, cached by
    the finder's scorer); the rest keep their order below them.
    """

    def __init__(self, finder: EvidenceFinder, weight: float = 0.5, depth: int = 30) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be between 0 and 1, got {weight}")
        if depth < 1:
            raise ValueError(f"depth must be ≥ 1, got {depth}")
        self.finder = finder
        self.weight = weight
        self.depth = depth

    def passage_scores(self, query: str, hits: Sequence[Hit]) -> np.ndarray:
        """Each hit's best sentence probability (0 for a hit without sentences)."""
        best = np.zeros(len(hits))
        for ev in self.finder.rank(query, hits, top=len(hits)):
            best[ev.hit] = max(best[ev.hit], ev.score)
        return best

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """Return new Hit objects, best first, with `score` and `ranks["rerank"]` set."""
        head, tail = list(hits[: self.depth]), list(hits[self.depth :])
        if not head:
            return []
        n = len(head)
        prior = 1.0 - np.arange(n) / (n - 1) if n > 1 else np.ones(1)
        best = self.passage_scores(query, head)
        spread = float(best.max() - best.min())
        relevance = (best - best.min()) / spread if spread > 0 else np.ones_like(best)
        blended = self.weight * relevance + (1.0 - self.weight) * prior
        order = np.argsort(-blended, kind="stable")  # ties keep the first stage's order
        ranked = [
            dataclasses.replace(
                head[i], score=float(blended[i]), ranks={**head[i].ranks, "rerank": pos}
            )
            for pos, i in enumerate(order)
        ]
        return ranked + tail
