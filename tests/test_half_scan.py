"""Large flat indexes scan a float16 copy first: the results must stay exactly the float32 ones."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.dense import DenseIndex

DIM = 64


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact(ids: np.ndarray, vecs: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(vecs @ q), kind="stable")[:k]]


def half_scanning(ids: np.ndarray, vecs: np.ndarray) -> DenseIndex:
    index = DenseIndex(DIM, half_scan_from=0)  # the float16 pass at any size
    index.add(ids, vecs)
    return index


def test_results_equal_brute_force_with_and_without_filters() -> None:
    rng = np.random.default_rng(0)
    ids = np.arange(5000, dtype=np.int64) * 7 + 3
    vecs = unit(rng.standard_normal((5000, DIM)))
    index = half_scanning(ids, vecs)
    allowed = np.sort(rng.choice(ids, 700, replace=False))
    rows = np.isin(ids, allowed)
    for q in unit(rng.standard_normal((40, DIM))):
        found, scores = index.search(q, 10)
        assert found.tolist() == exact(ids, vecs, q, 10).tolist()
        assert scores == pytest.approx(np.sort(vecs @ q)[::-1][:10], abs=1e-6)
        found, _ = index.search(q, 10, allowed_ids=allowed)
        assert found.tolist() == exact(ids[rows], vecs[rows], q, 10).tolist()


def test_near_ties_that_float16_cannot_order_are_still_ranked_exactly() -> None:
    rng = np.random.default_rng(1)
    centre = unit(rng.standard_normal((1, DIM)))
    # 3,000 vectors closer together than float16 can resolve: its ranking of them is noise.
    vecs = unit(centre + 2e-4 * rng.standard_normal((3000, DIM)))
    ids = np.arange(3000, dtype=np.int64)
    q = unit(centre + 0.01 * rng.standard_normal((1, DIM)))[0]
    want = exact(ids, vecs, q, 10).tolist()
    by_float16 = exact(ids, vecs.astype(np.float16).astype(np.float32), q, 10).tolist()
    assert by_float16 != want  # a float16-only search would get this wrong
    assert half_scanning(ids, vecs).search(q, 10)[0].tolist() == want


def test_float16_copy_follows_adds_removals_and_reloads(tmp_path) -> None:
    rng = np.random.default_rng(2)
    vecs = unit(rng.standard_normal((2000, DIM)))
    index = half_scanning(np.arange(1000, dtype=np.int64), vecs[:1000])
    index.search(vecs[0], 5)  # the float16 copy exists from here on
    index.add(np.arange(1000, 2000, dtype=np.int64), vecs[1000:])
    assert index.search(vecs[1500], 1)[0].tolist() == [1500]
    assert index.remove(np.array([1500, 7], dtype=np.int64)) == 2
    for gone in (1500, 7):
        assert gone not in index.search(vecs[gone], 50)[0].tolist()
    sha = index.save(tmp_path / "dense.faiss")
    loaded = DenseIndex.load(tmp_path / "dense.faiss", expected_sha256=sha)
    loaded.half_scan_from = 0
    q = unit(rng.standard_normal((1, DIM)))[0]
    kept = np.setdiff1d(np.arange(2000), [1500, 7])
    assert loaded.search(q, 10)[0].tolist() == exact(kept, vecs[kept], q, 10).tolist()
