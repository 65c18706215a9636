"""DenseIndex: add, search, filter inside FAISS, remove, and checked persistence, for every kind."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.dense import DenseIndex
from retrieval.errors import ManifestMismatchError

DIM = 16


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return np.arange(1000, 1400, dtype=np.int64), unit(rng, 400)


def built(kind: str, ids: np.ndarray, vecs: np.ndarray) -> DenseIndex:
    index = DenseIndex(DIM, kind)
    index.add(ids, vecs)
    return index


def exact(ids: np.ndarray, vecs: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(vecs @ q), kind="stable")[:k]]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_search_finds_the_vector_itself_first(kind, data):
    ids, vecs = data
    index = built(kind, ids, vecs)
    assert len(index) == 400
    found, scores = index.search(vecs[7], 5)
    assert found[0] == ids[7]
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert found.dtype == np.int64 and scores.dtype == np.float32
    assert list(scores) == sorted(scores, reverse=True)


def test_flat_is_exact(data):
    ids, vecs = data
    index = built("flat", ids, vecs)
    q = unit(np.random.default_rng(1), 1)[0]
    found, _ = index.search(q, 10)
    assert found.tolist() == exact(ids, vecs, q, 10).tolist()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_filter_returns_every_allowed_match_and_nothing_else(kind, data):
    ids, vecs = data
    index = built(kind, ids, vecs)
    q = unit(np.random.default_rng(2), 1)[0]
    # Allowed ids far from the query, so a post-filter over the top k would find none of them.
    allowed = exact(ids, vecs, -q, 7)
    found, _ = index.search(q, 10, allowed_ids=allowed)
    assert sorted(found.tolist()) == sorted(allowed.tolist())
    sub = np.isin(ids, allowed)
    assert found.tolist() == exact(ids[sub], vecs[sub], q, 10).tolist()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_empty_cases_return_empty_arrays(kind, data):
    ids, vecs = data
    empty = DenseIndex(DIM, kind)
    found, scores = empty.search(vecs[0], 5)
    assert found.size == 0 and scores.size == 0
    index = built(kind, ids, vecs)
    assert index.search(vecs[0], 5, allowed_ids=np.array([], np.int64))[0].size == 0
    assert index.search(vecs[0], 5, allowed_ids=np.array([5, 6]))[0].size == 0  # unknown ids
    assert index.search(vecs[0], 0)[0].size == 0


def test_k_larger_than_index_has_no_padding(data):
    ids, vecs = data
    index = built("flat", ids[:3], vecs[:3])
    found, scores = index.search(vecs[0], 10)
    assert len(found) == 3 and (found >= 0).all() and np.isfinite(scores).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_remove_drops_ids_and_counts_them(kind, data):
    ids, vecs = data
    index = built(kind, ids, vecs)
    assert index.remove(np.array([ids[7], ids[8], 99999])) == 2
    assert len(index) == 398
    found, _ = index.search(vecs[7], 5)
    assert ids[7] not in found and ids[8] not in found
    assert index.search(vecs[9], 1)[0][0] == ids[9]
    index.add(ids[7:8], vecs[7:8])  # a removed id can come back
    assert index.search(vecs[7], 1)[0][0] == ids[7]


def test_add_validates_input(data):
    ids, vecs = data
    index = DenseIndex(DIM)
    with pytest.raises(ValueError, match=r"shape \(n, 16\)"):
        index.add(ids[:2], np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match="2 ids for 3 vectors"):
        index.add(ids[:2], vecs[:3])
    with pytest.raises(ValueError, match="integer"):
        index.add(np.array([1.5, 2.5]), vecs[:2])
    with pytest.raises(ValueError, match="float"):
        index.add(ids[:2], np.zeros((2, DIM), np.int32))
    with pytest.raises(ValueError, match="NaN"):
        index.add(ids[:1], np.full((1, DIM), np.nan, np.float32))
    with pytest.raises(ValueError, match="unique"):
        index.add(np.array([1, 1]), vecs[:2])
    index.add(ids[:2], vecs[:2])
    with pytest.raises(ValueError, match="already in the index"):
        index.add(ids[1:3], vecs[1:3])
    assert len(index) == 2
    with pytest.raises(ValueError, match="kind"):
        DenseIndex(DIM, "annoy")


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_roundtrip_with_checksum(kind, data, tmp_path):
    ids, vecs = data
    index = built(kind, ids, vecs)
    path = tmp_path / "kb" / "dense.faiss"
    sha = index.save(path)
    loaded = DenseIndex.load(path, expected_sha256=sha, expected_dim=DIM)
    assert (loaded.kind, loaded.dim, len(loaded)) == (kind, DIM, 400)
    q = vecs[42]
    assert loaded.search(q, 5)[0].tolist() == index.search(q, 5)[0].tolist()
    assert [p.name for p in path.parent.iterdir()] == ["dense.faiss"]  # no temp files left


@pytest.mark.parametrize(("kind", "knob"), [("hnsw", "ef_search"), ("ivf", "nprobe")])
def test_search_knobs_survive_save_and_load(kind, knob, data, tmp_path):
    ids, vecs = data
    index = built(kind, ids, vecs)
    setattr(index, knob, 5)
    index.save(tmp_path / "dense.faiss")
    assert getattr(DenseIndex.load(tmp_path / "dense.faiss"), knob) == 5


def test_load_rejects_changed_file(data, tmp_path):
    ids, vecs = data
    path = tmp_path / "dense.faiss"
    sha = built("flat", ids, vecs).save(path)
    built("flat", ids[:5], vecs[:5]).save(path)
    with pytest.raises(ManifestMismatchError, match=r"checksum.*reindex"):
        DenseIndex.load(path, expected_sha256=sha)


def test_load_rejects_other_dimension(data, tmp_path):
    ids, vecs = data
    path = tmp_path / "dense.faiss"
    built("flat", ids, vecs).save(path)
    with pytest.raises(ManifestMismatchError, match=r"16-dimensional.*384-dimensional.*reindex"):
        DenseIndex.load(path, expected_dim=384)


def test_load_rejects_garbage_and_passes_missing_file_through(tmp_path):
    path = tmp_path / "dense.faiss"
    path.write_bytes(b"not an index")
    with pytest.raises(ManifestMismatchError, match="not a readable FAISS index"):
        DenseIndex.load(path)
    with pytest.raises(FileNotFoundError):
        DenseIndex.load(tmp_path / "missing.faiss")
