"""Hybrid search: dense and lexical candidates, fused by weighted reciprocal rank.

Plain RRF trusts both sides equally, so a weak side drags a strong one down (XQuAD-zh with MiniLM:
dense recall@5 0.28, BM25 0.997, plain RRF 0.58). Two things fix that: Chinese and mixed knowledge
bases embed with multilingual e5 (retrieval/ingest.py), and each side gets a weight per query
language, chosen on the dev sets by `citewise eval retrieval --tune` (README, "Retrieval").
The RRF constant is 5, not the customary 60: the top few ranks of each side carry most of the
signal here, and a small constant lets them count (recall@5 on STARD 0.601 -> 0.620, PolicyQA
0.444 -> 0.456, XQuAD-en 0.997 -> 0.998 with the same candidates).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from retrieval.lang import detect_lang
from retrieval.protocols import Reranker
from retrieval.types import Filters, Hit

MODES = ("hybrid", "dense", "lexical")


class CandidateSource(Protocol):
    """What fusion needs from a library of knowledge bases."""

    def dense_search(self, kb: str, query: str, k: int, filters: Filters) -> list[Hit]: ...

    def lexical_search(self, kb: str, query: str, k: int, filters: Filters) -> list[Hit]: ...


def _default_weights() -> dict[str, tuple[float, float]]:
    return {"en": (1.0, 1.0), "zh": (1.0, 0.6)}


@dataclass(frozen=True)
class FusionConfig:
    """Weighted RRF: score = w_dense / (rrf_k + rank_dense) + w_lexical / (rrf_k + rank_lexical)."""

    rrf_k: int = 5
    weights: Mapping[str, tuple[float, float]] = field(default_factory=_default_weights)
    candidates: int = 50  # per side and per knowledge base, before fusion

    def __post_init__(self) -> None:
        if self.rrf_k < 0 or self.candidates < 1:
            raise ValueError("rrf_k must be >= 0 and candidates >= 1")
        for lang, (wd, wl) in self.weights.items():
            if wd < 0 or wl < 0 or wd + wl == 0:
                raise ValueError(f"fusion weights for {lang!r} must be >= 0 and not both 0")

    def weights_for(self, lang: str) -> tuple[float, float]:
        return self.weights.get(lang, (1.0, 1.0))


def fuse(
    dense: Sequence[Hit],
    lexical: Sequence[Hit],
    weights: tuple[float, float],
    rrf_k: int = 5,
    limit: int | None = None,
) -> list[Hit]:
    """Merge two ranked lists of the same knowledge base into one, best first (`limit` of them).

    >>> a, b = Hit(1, "d1", "kb", 0.9, "x"), Hit(2, "d2", "kb", 3.0, "y")
    >>> [h.chunk_id for h in fuse([a, b], [b], (1.0, 1.0))]
    [2, 1]
    """
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    first: dict[int, Hit] = {}
    for side, hits, weight in (("dense", dense, weights[0]), ("lexical", lexical, weights[1])):
        for rank, hit in enumerate(hits):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (rrf_k + rank + 1)
            ranks.setdefault(hit.chunk_id, {})[side] = rank
            first.setdefault(hit.chunk_id, hit)
    order = sorted(scores, key=lambda cid: (-scores[cid], cid))[:limit]
    # Copies only for what is returned: a search keeps 5 of ~100 candidates.
    return [dataclasses.replace(first[c], score=scores[c], ranks=ranks[c]) for c in order]


class HybridSearcher:
    """Searches one or more knowledge bases; the composition root builds one per process."""

    def __init__(
        self,
        source: CandidateSource,
        fusion: FusionConfig | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.source = source
        self.fusion = fusion or FusionConfig()
        self.reranker = reranker

    def candidates(
        self,
        query: str,
        kbs: Sequence[str],
        filters: Filters | None = None,
        mode: str = "hybrid",
        k: int = 0,
    ) -> tuple[list[Hit], list[Hit]]:
        """(dense, lexical) candidate lists across `kbs`, each ranked by its raw score."""
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        filters = filters or Filters()
        n = max(k, self.fusion.candidates)
        dense: list[Hit] = []
        lexical: list[Hit] = []
        for kb in dict.fromkeys(kbs):
            if mode != "lexical":
                dense.extend(self.source.dense_search(kb, query, n, filters))
            if mode != "dense":
                lexical.extend(self.source.lexical_search(kb, query, n, filters))
        # Across knowledge bases each side is ranked by its raw score (cosine; BM25), then fused
        # once: fusing per kb first would give every kb's top passage the same fused score.
        if len(kbs) > 1:
            dense.sort(key=lambda h: -h.score)
            lexical.sort(key=lambda h: -h.score)
        return dense[:n], lexical[:n]

    def combine(
        self,
        query: str,
        dense: Sequence[Hit],
        lexical: Sequence[Hit],
        *,
        k: int = 5,
        mode: str = "hybrid",
        weights: tuple[float, float] | None = None,
    ) -> list[Hit]:
        """Rank candidates for one mode (fused with the query language's weights for hybrid)."""
        if mode == "hybrid":
            w = weights or self.fusion.weights_for(detect_lang(query))
            # A reranker reorders the whole candidate list, so only then is it kept whole.
            limit = None if self.reranker is not None else k
            merged = fuse(dense, lexical, w, self.fusion.rrf_k, limit)
        else:
            merged = list(dense if mode == "dense" else lexical)
        if self.reranker is not None:
            merged = self.reranker.rerank(query, merged)
        return merged[:k]

    def search(
        self,
        query: str,
        kbs: Sequence[str],
        *,
        k: int = 5,
        filters: Filters | None = None,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """Top `k` chunks for `query` across `kbs`, best first."""
        if k < 1:
            raise ValueError("k must be at least 1")
        if not query.strip():
            return []
        dense, lexical = self.candidates(query, kbs, filters, mode, k)
        return self.combine(query, dense, lexical, k=k, mode=mode)
