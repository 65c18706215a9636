"""Second-stage rescoring: re-embed the fused candidates with a (possibly stronger) embedder.

The first stage fuses dense and lexical ranks, so its order is only as good as the weaker signal
for a given query. An embedding reranker reads each candidate's full text against the query with
its own model (e.g. the multilingual e5 behind an English MiniLM index) and blends that judgement
with the incoming rank, so a confident first stage is not thrown away.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from retrieval.protocols import Embedder
from retrieval.types import Hit


class EmbeddingReranker:
    """Rescore hits by query-passage cosine under `embedder`, blended with their incoming order.

    score = weight · cosine rescaled to [0, 1] among the candidates
          + (1 − weight) · (1 − incoming position / (n − 1))

    Rescaling within the candidates makes the blend independent of the embedder's cosine range
    (e5's cosines sit in a narrow band near 0.8). Passage vectors are kept in a bounded LRU keyed
    by the text, because the same chunks come back turn after turn.
    """

    def __init__(self, embedder: Embedder, weight: float = 0.7, cache_size: int = 4096) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be between 0 and 1, got {weight}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be ≥ 0, got {cache_size}")
        self.embedder = embedder
        self.weight = weight
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """Return new Hit objects, best first, with `score` and `ranks["rerank"]` set."""
        if not hits:
            return []
        q = self.embedder.embed_query(query)
        cosines = self._passages([h.text for h in hits]) @ q
        spread = float(cosines.max() - cosines.min())
        relevance = (cosines - cosines.min()) / spread if spread > 0 else np.ones_like(cosines)
        n = len(hits)
        prior = 1.0 - np.arange(n) / (n - 1) if n > 1 else np.ones(1)
        blended = self.weight * relevance + (1.0 - self.weight) * prior
        order = np.argsort(-blended, kind="stable")  # ties keep the first stage's order
        return [
            dataclasses.replace(
                hits[i], score=float(blended[i]), ranks={**hits[i].ranks, "rerank": pos}
            )
            for pos, i in enumerate(order)
        ]

    def _passages(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            vecs = self.embedder.embed_documents([text_of[k] for k in missing])
            for k, v in zip(missing, vecs, strict=True):
                self._cache[k] = v
        out = np.stack([self._cache[k] for k in keys])
        for k in keys:  # most recently used last
            self._cache.move_to_end(k)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out
