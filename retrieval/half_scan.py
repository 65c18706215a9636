"""Exact search over a large flat index that reads half the memory: float16 first, float32 last.

One query against a flat index is one pass over every vector, and at 100k 384-d vectors that pass
is bound by memory bandwidth (154 MB in float32; bench_scale measured 10–14 ms on this machine's
single core). A float16 copy of the vectors halves the bytes read. Its scores are off by at most
ε = 2⁻¹¹·‖q‖·max‖x‖ (float16's rounding, bounded by Cauchy–Schwarz), so the search takes the best
k' by float16 score, rescores them with the float32 vectors, and stops when the k-th exact score
beats every candidate it did not fetch (each at most the last fetched float16 score + ε);
otherwise it fetches 4× more. The result is the exact top k, not an approximation.
The copy lives in memory only: the saved index stays the float32 one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faiss
import numpy as np

# Relative rounding error of float16 (10-bit mantissa), doubled for the float32 sums on top.
_EPS_PER_NORM = 2.0**-10
_FIRST_FETCH = 4  # k' = 4k + 16 on the first try; rarely needs a second


class HalfScan:
    """A float16 copy of a flat IndexIDMap2's vectors, kept in step with its adds and removals."""

    def __init__(self, flat: Any) -> None:
        n, dim = int(flat.ntotal), int(flat.d)
        vectors = flat.index.reconstruct_n(0, n) if n else np.empty((0, dim), np.float32)
        ids = faiss.vector_to_array(flat.id_map).astype(np.int64)
        self._index = faiss.IndexIDMap2(
            faiss.IndexScalarQuantizer(
                dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
        )
        self.max_norm = 0.0
        self.add(ids, vectors)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if ids.size:
            self._index.add_with_ids(vectors, ids)
            self.max_norm = max(self.max_norm, float(np.linalg.norm(vectors, axis=1).max()))

    def remove(self, ids: np.ndarray) -> None:
        # max_norm may only shrink on removal: keeping the old one keeps ε an upper bound.
        self._index.remove_ids(faiss.IDSelectorBatch(ids))

    def search(
        self,
        q: np.ndarray,
        k: int,
        params: Any,
        exact_vectors: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact top `k` (ids, float32 scores), best first; `params` may carry an id selector.

        `exact_vectors(ids)` returns the float32 vectors of `ids`, row for row.
        """
        eps = _EPS_PER_NORM * float(np.linalg.norm(q)) * self.max_norm
        fetch = _FIRST_FETCH * k + 16
        while True:
            approx, ids = self._index.search(q, fetch, params=params)
            keep = ids[0] >= 0
            ids, approx = ids[0][keep], approx[0][keep]
            exact = exact_vectors(ids) @ q[0]
            order = np.argsort(-exact, kind="stable")[:k]
            complete = ids.size < fetch  # every allowed vector was fetched
            if complete or exact[order[-1]] >= approx[-1] + eps:
                return ids[order].astype(np.int64), exact[order].astype(np.float32)
            fetch *= 4
