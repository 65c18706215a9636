"""The SQLite store on its own: schema, document writes, ids, filters and BM25, real SQLite files.

Vectors here come from a seeded generator: these tests are about rows, not about embeddings.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from retrieval.store import DocInfo, KBInfo, Store, fts_table
from retrieval.types import Filters, Span

DIM = 8


def _kb(name: str) -> KBInfo:
    return KBInfo(name, "general", "en", "test:vectors", DIM, 64, 0, 0, "2024-01-01", 0, 0)


def _doc(doc_id: str, n: int, group: str = "", domain: str = "general") -> DocInfo:
    return DocInfo(doc_id, f"title {doc_id}", domain, "en", group, "src", "h", n, "2024-01-01")


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _put(store: Store, kb: str, doc_id: str, texts: list[str], **meta: str) -> list[int]:
    spans = [Span(t, 0, len(t)) for t in texts]
    with store.write() as db:
        store.delete_document(db, kb, doc_id)
        return store.insert_document(
            db, kb, _doc(doc_id, len(texts), **meta), spans, _vectors(len(texts))
        )


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path)
    with s.write() as db:
        s.insert_kb(db, _kb("a"))
        s.insert_kb(db, _kb("b"))
    return s


def _fts_rowids(store: Store, kb: str) -> set[int]:
    return {r[0] for r in store.db.execute(f"SELECT rowid FROM {fts_table(kb)}")}


def test_migrations_apply_once(tmp_path: Path) -> None:
    Store(tmp_path).close()
    again = Store(tmp_path)
    names = [r[0] for r in again.db.execute("SELECT name FROM _migrations")]
    assert names == ["m001_knowledge_bases", "m002_chunk_headings"]
    assert {"kbs", "documents", "chunks"} <= set(again.db.table_names())
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_both_stores_share_one_migrations_layout(tmp_path: Path) -> None:
    from agent.migrations import connect as open_dialogue

    kb_db = Store(tmp_path).db
    dialogue = open_dialogue(tmp_path / "dialogue.db", 5)
    for db in (kb_db, dialogue):
        columns = [(r[1], r[2], r[3]) for r in db.execute("PRAGMA table_info(_migrations)")]
        assert columns == [("name", "TEXT", 0), ("applied_at", "TEXT", 1)]
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    dialogue.close()


def test_a_store_made_before_the_shared_layer_keeps_its_migrations(tmp_path: Path) -> None:
    # Knowledge-base stores used to record migrations as (name, at): opened now, the column is
    # renamed and nothing is applied twice (m001 would fail on its existing tables).
    Store(tmp_path).close()
    import sqlite3

    conn = sqlite3.connect(tmp_path / "citewise.db")
    conn.execute("ALTER TABLE _migrations RENAME COLUMN applied_at TO at")
    conn.commit()
    conn.close()
    again = Store(tmp_path)
    rows = again.db.execute("SELECT name, applied_at FROM _migrations").fetchall()
    assert [r[0] for r in rows] == ["m001_knowledge_bases", "m002_chunk_headings"]
    assert all(r[1] for r in rows)


def test_insert_and_delete_keep_chunks_and_lexical_rows_in_step(store: Store) -> None:
    ids = _put(store, "a", "d1", ["alpha beta", "gamma delta"])
    assert _fts_rowids(store, "a") == set(ids)
    info = store.kb("a")
    assert info is not None and (info.documents, info.chunks) == (1, 2)
    with store.write() as db:
        assert store.delete_document(db, "a", "d1") == ids
        assert store.delete_document(db, "a", "d1") is None
    assert _fts_rowids(store, "a") == set()
    assert store.db.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0


def test_chunk_ids_are_never_reused(store: Store) -> None:
    first = _put(store, "a", "d1", ["one", "two"])
    _put(store, "a", "d1", ["one again"])  # replaces d1: its ids are freed
    with store.write() as db:
        store.delete_kb(db, "a")
    later = _put(store, "b", "d2", ["three"])
    assert min(later) > max(first)


def test_vectors_round_trip_exactly(store: Store) -> None:
    ids = _put(store, "a", "d1", ["x", "y", "z"])
    got_ids, vecs = store.vectors("a", DIM)
    assert got_ids.tolist() == ids
    np.testing.assert_array_equal(vecs, _vectors(3))


def test_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as db:
        store.insert_document(db, "a", _doc("d1", 1), [Span("text", 0, 4)], _vectors(1))
        store.bump_generation(db, "a")
        raise RuntimeError("crash in the middle")
    info = store.kb("a")
    assert info is not None and (info.documents, info.chunks, info.generation) == (0, 0, 0)
    assert _fts_rowids(store, "a") == set()


def test_lexical_search_ranks_by_bm25_and_stays_in_its_kb(store: Store) -> None:
    _put(store, "a", "apples", ["apple apple apple pie", "apple tart"])
    _put(store, "a", "other", ["pears and plums"])
    _put(store, "b", "apples-b", ["apple everywhere"])
    hits = store.lexical("a", '"apple"', 10, Filters())
    assert [h.doc_id for h in hits] == ["apples", "apples"]
    assert hits[0].text == "apple apple apple pie" and hits[0].score > hits[1].score > 0
    assert [h.ranks for h in hits] == [{"lexical": 0}, {"lexical": 1}]
    assert hits[0].title == "title apples" and hits[0].kb == "a"


def test_filters_apply_inside_both_queries(store: Store) -> None:
    law = _put(store, "a", "law", ["contract law"], group="g1", domain="legal")
    _put(store, "a", "med", ["contract medicine"], group="g2", domain="medical")
    assert store.allowed_ids("a", Filters()) is None
    assert store.allowed_ids("a", Filters(domain="legal")).tolist() == law  # type: ignore[union-attr]
    assert store.allowed_ids("a", Filters(group="nope")).size == 0  # type: ignore[union-attr]
    hits = store.lexical("a", '"contract"', 10, Filters(group="g2"))
    assert [h.doc_id for h in hits] == ["med"]
    assert hits[0].group == "g2" and hits[0].domain == "medical"


def test_hits_keep_the_given_order_and_skip_deleted_ids(store: Store) -> None:
    ids = _put(store, "a", "d1", ["first", "second", "third"])
    hits = store.hits("a", [ids[2], 999_999, ids[0]], [0.9, 0.8, 0.7], "dense")
    assert [(h.chunk_id, h.score, h.ranks) for h in hits] == [
        (ids[2], pytest.approx(0.9), {"dense": 0}),
        (ids[0], pytest.approx(0.7), {"dense": 1}),
    ]
    assert hits[0].text == "third"


def test_readers_in_other_threads_do_not_wait_for_a_writer(store: Store) -> None:
    _put(store, "a", "d1", ["committed text"])
    seen: list[int] = []
    with store.write() as db:
        store.insert_document(db, "a", _doc("d2", 1), [Span("uncommitted", 0, 11)], _vectors(1))
        # WAL: another thread's connection reads the last commit while this one is open.
        reader = threading.Thread(target=lambda: seen.append(store.kb("a").chunks))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout=10)
    assert seen == [1]
    assert store.kb("a").chunks == 2  # type: ignore[union-attr]


def test_connections_of_finished_threads_are_closed(store: Store) -> None:
    for _ in range(5):
        t = threading.Thread(target=lambda: store.kb("a"))
        t.start()
        t.join()
    store.kb("a")
    assert len(store._conns) <= 2  # this thread's, and at most the last finished one's
