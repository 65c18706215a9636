"""The dense half of the hybrid index: FAISS inner product over unit vectors, keyed by chunk id.

Three kinds share one API. "flat" is exact and what a knowledge base uses (from
`half_scan_from` vectors on, it scans a float16 copy first and rescores exactly: retrieval/
half_scan.py); "ivf" and "hnsw" are the approximate kinds for millions of chunks
(benchmarks/bench_scale.py measures them). A metadata
filter is applied inside FAISS through an ID selector, and an approximate kind that comes back short
under a tight filter falls back to an exact scan of the allowed ids: a filter never hides a match.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from retrieval.atomic import atomic_write_bytes
from retrieval.errors import ManifestMismatchError
from retrieval.half_scan import HalfScan
from retrieval.vectors import check_ids, check_vectors

KINDS = ("flat", "hnsw", "ivf")
_REINDEX_HINT = "rebuild it with `citewise kb reindex NAME`"


class DenseIndex:
    """FAISS inner-product index over unit vectors, keyed by int64 chunk ids.

    Flat and HNSW sit inside an IndexIDMap2; IVF keeps the ids in its own lists.
    """

    def __init__(
        self,
        dim: int,
        kind: str = "flat",
        *,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        nlist: int | None = None,
        nprobe: int | None = None,
        half_scan_from: int = 50_000,
    ) -> None:
        if not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        self.dim = dim
        self.kind = kind
        self._ef_search = ef_search
        # IVF lists are sized from the training set unless given; see train().
        self._nlist = nlist
        self._nprobe = nprobe
        # Below this size a float32 scan takes a few ms and the float16 copy is not worth its RAM.
        self.half_scan_from = half_scan_from
        self._half: HalfScan | None = None
        self._index: Any = None
        if kind == "flat":
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = ef_construction
            inner.hnsw.efSearch = ef_search  # stored in the file, so a loaded index keeps it
            self._index = faiss.IndexIDMap2(inner)

    @classmethod
    def _wrap(cls, index: Any) -> DenseIndex:
        if isinstance(index, faiss.IndexIVFFlat):
            self = cls(index.d, "ivf", nlist=index.nlist, nprobe=index.nprobe)
        elif isinstance(inner := faiss.downcast_index(index.index), faiss.IndexHNSWFlat):
            self = cls(index.d, "hnsw", ef_search=inner.hnsw.efSearch)
        else:
            self = cls(index.d, "flat")
        self._index = index
        return self

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def __repr__(self) -> str:
        return f"DenseIndex(dim={self.dim}, kind={self.kind!r}, n={len(self)})"

    @property
    def ef_search(self) -> int:
        """HNSW candidates kept per query: higher is slower and closer to exact."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._ef_search = value
        if self.kind == "hnsw":
            inner: Any = faiss.downcast_index(self._index.index)
            inner.hnsw.efSearch = value

    @property
    def nprobe(self) -> int | None:
        """IVF lists scanned per query (None until an IVF index is trained)."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._nprobe = value
        if self._index is not None and self.kind == "ivf":
            self._index.nprobe = value

    def train(self, vectors: np.ndarray) -> None:
        """Fit the IVF coarse quantizer on a sample of vectors (a no-op for other kinds)."""
        if self.kind != "ivf" or self._index is not None:
            return
        x = check_vectors(self.dim, vectors)
        n = x.shape[0]
        if self._nlist and n < self._nlist:
            raise ValueError(
                f"IVF with {self._nlist} lists needs at least that many training vectors"
            )
        # ~4·sqrt(n) lists is the usual balance; FAISS wants at least 39 training points per list.
        nlist = self._nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(self.dim)
        # No IndexIDMap2 here: IVF lists store ids themselves, and IDMap2's renumbering on removal
        # assumes the inner index shifts its rows as a flat index does, which IVF does not.
        inner = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        inner.cp.max_points_per_centroid = 64  # a 64·nlist sample fits the centroids well and fast
        inner.train(x)
        # bench_scale's clustered vectors reach recall@10 0.998 probing 8 of 1,000 lists; 1/16
        # leaves a wide margin for real embeddings, at ~4 ms of CPU per query at a million.
        inner.nprobe = self._nprobe or min(nlist, max(8, nlist // 16))
        self._index = inner  # the wrapper keeps the quantizer alive
        self._nlist, self._nprobe = nlist, int(inner.nprobe)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add `vectors` (n, dim) under chunk `ids` (n,); an id already present is an error."""
        ids = check_ids(ids)
        x = check_vectors(self.dim, vectors)
        if ids.shape[0] != x.shape[0]:
            raise ValueError(
                f"got {ids.shape[0]} ids for {x.shape[0]} vectors; pass one id per row"
            )
        if ids.size == 0:
            return
        if np.unique(ids).size != ids.size:
            raise ValueError("ids must be unique within one add() call")
        if self._index is None:
            self.train(x)
        present = ids[np.isin(ids, self._all_ids())]
        if present.size:
            raise ValueError(
                f"{present.size} ids are already in the index (e.g. {present[:5].tolist()}); "
                "remove them before adding them again"
            )
        self._index.add_with_ids(x, ids)
        if self._half is not None:
            self._half.add(ids, x)

    def remove(self, ids: np.ndarray) -> int:
        """Remove the given chunk ids (unknown ids are ignored); return how many were removed."""
        ids = check_ids(ids)
        if ids.size == 0 or len(self) == 0:
            return 0
        if self._half is not None:
            self._half.remove(ids)
        if self.kind != "hnsw":
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        # HNSW graphs cannot drop nodes: rebuild from the vectors that stay (O(n); rare in use).
        all_ids = self._all_ids()
        keep = ~np.isin(all_ids, ids)
        removed = int(all_ids.size - keep.sum())
        if removed:
            inner: Any = faiss.downcast_index(self._index.index)
            kept = inner.reconstruct_batch(np.flatnonzero(keep).astype(np.int64))
            rebuilt = DenseIndex(
                self.dim,
                "hnsw",
                hnsw_m=inner.hnsw.nb_neighbors(1),
                ef_construction=inner.hnsw.efConstruction,
                ef_search=self.ef_search,
            )
            rebuilt._index.add_with_ids(kept, all_ids[keep])
            self._index = rebuilt._index
        return removed

    def search(
        self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (ids int64, scores float32) of the best `k`, best first, among `allowed_ids`."""
        q = check_vectors(self.dim, np.asarray(query).reshape(1, -1))
        empty = np.empty(0, np.int64), np.empty(0, np.float32)
        if k <= 0 or len(self) == 0:
            return empty
        allowed = None if allowed_ids is None else np.unique(check_ids(allowed_ids))
        if allowed is not None and allowed.size == 0:
            return empty
        k = min(k, len(self))
        if allowed is not None:
            k = min(k, int(allowed.size))
        ids, scores = self._faiss_search(q, k, allowed)
        if allowed is not None and self.kind != "flat" and ids.size < k:
            expected = min(k, int(np.isin(allowed, self._all_ids()).sum()))
            if ids.size < expected:
                ids, scores = self._exact_subset(q, k, allowed)
        return ids, scores

    def save(self, path: Path) -> str:
        """Write the index atomically to `path`; return the sha256 hex of the bytes written."""
        if self._index is None:
            raise ValueError("an untrained IVF index has nothing to save; add vectors first")
        data = faiss.serialize_index(self._index).tobytes()
        atomic_write_bytes(Path(path), data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        expected_sha256: str | None = None,
        expected_dim: int | None = None,
    ) -> DenseIndex:
        """Read an index written by `save`, checking its checksum and dimension when given."""
        path = Path(path)
        data = path.read_bytes()
        if expected_sha256 is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected_sha256:
                raise ManifestMismatchError(
                    f"dense index {path} has checksum {actual[:12]}…, but the manifest records "
                    f"{expected_sha256[:12]}… (the file was changed or partly written); "
                    + _REINDEX_HINT
                )
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as e:
            raise ManifestMismatchError(
                f"dense index {path} is not a readable FAISS index; {_REINDEX_HINT}"
            ) from e
        if not isinstance(index, (faiss.IndexIDMap2, faiss.IndexIVFFlat)):
            raise ManifestMismatchError(
                f"dense index {path} holds a {type(index).__name__}, not an id-mapped index; "
                + _REINDEX_HINT
            )
        if expected_dim is not None and index.d != expected_dim:
            raise ManifestMismatchError(
                f"dense index {path} holds {index.d}-dimensional vectors, but the embedder makes "
                f"{expected_dim}-dimensional ones (the embedding model changed); " + _REINDEX_HINT
            )
        return cls._wrap(index)

    def _faiss_search(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        params_cls: Any = {
            "flat": faiss.SearchParameters,
            "hnsw": faiss.SearchParametersHNSW,  # type: ignore[attr-defined]
            "ivf": faiss.SearchParametersIVF,
        }[self.kind]
        params = params_cls()
        if self.kind == "hnsw":
            params.efSearch = max(self.ef_search, k)
        elif self.kind == "ivf":
            params.nprobe = nprobe or self._nprobe
        # A short sorted list is cheapest to probe by bisection; a long one by a hash set.
        selector = None
        if allowed is not None:
            selector = (
                faiss.IDSelectorArray(allowed)
                if allowed.size <= 64
                else faiss.IDSelectorBatch(allowed)
            )
            params.sel = selector
        # One query is one memory scan: splitting it over OpenMP threads cost 5x the CPU and 4x the
        # latency under load (bench_scale), so search on the calling thread (the setting is
        # per-thread, so adds and other threads keep theirs).
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            if self.kind == "flat" and len(self) >= self.half_scan_from:
                if self._half is None:
                    self._half = HalfScan(self._index)
                found = self._half.search(q, k, params, self._index.reconstruct_batch)
            else:
                scores, ids = self._index.search(q, k, params=params)
                keep = ids[0] >= 0
                found = ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)
        finally:
            faiss.omp_set_num_threads(threads)
        del selector  # must outlive the search calls above
        return found

    def _exact_subset(
        self, q: np.ndarray, k: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the allowed ids, for when a filtered ANN search came back short."""
        if self.kind == "ivf":  # probing every list with the selector is exact
            return self._faiss_search(q, k, allowed, nprobe=self._nlist)
        all_ids = self._all_ids()
        rows = np.flatnonzero(np.isin(all_ids, allowed)).astype(np.int64)
        vecs = faiss.downcast_index(self._index.index).reconstruct_batch(rows)
        scores = vecs @ q[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return all_ids[rows[order]].astype(np.int64), scores[order].astype(np.float32)

    def _all_ids(self) -> np.ndarray:
        """Every stored id, in storage order (for IVF, list by list)."""
        if self._index is None:
            return np.empty(0, np.int64)
        if self.kind == "ivf":
            lists = self._index.invlists
            parts = [
                faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                for i in range(lists.nlist)
                if lists.list_size(i)
            ]
            return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)
        return faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
