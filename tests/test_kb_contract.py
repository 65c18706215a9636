"""What every search backend must do alike: FAISS + FTS5 files (the default), Milvus (Milvus
Lite, embedded) over citewise.db, and Milvus with the rows on a real PostgreSQL server, with the
real MiniLM embedder. Search results, replaces and
deletes seen by other views, drops, a failure midway, isolation between knowledge bases, threads.

Files-only behaviour (manifests, checksums, FTS tables) stays in tests/test_kb.py.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import KnowledgeBaseNotFoundError
from retrieval.kb import Library
from retrieval.search import HybridSearcher
from retrieval.types import Document, Filters

pytestmark = pytest.mark.slow  # embeds with MiniLM


@pytest.fixture(params=["files", "milvus", "milvus+postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """The `store` and `database_url` settings of each backend (Milvus Lite in a file of this
    test's own; a fresh PostgreSQL database)."""
    if request.param == "files":
        return "", ""
    pytest.importorskip("pymilvus")
    milvus = f"milvus://{tmp_path / 'milvus' / 'kb.db'}"
    if request.param == "milvus":
        return milvus, ""
    return milvus, request.getfixturevalue("pg_database")


@pytest.fixture
def store(backend: tuple[str, str]) -> str:
    return backend[0]


@pytest.fixture
def opener(tmp_path: Path, backend: tuple[str, str], minilm_embedder: Any) -> Iterator[Any]:
    """open(batch_docs=...) -> a Library over one data directory and the backend's index."""
    opened: list[Library] = []
    store, database_url = backend

    def open_library(**kwargs: Any) -> Library:
        lib = Library(
            tmp_path / "data",
            embedder_loader=lambda _: minilm_embedder,
            store=store,
            database_url=database_url,
            **kwargs,
        )
        opened.append(lib)
        return lib

    yield open_library
    for lib in opened:
        lib.close()


@pytest.fixture
def docs(english_docs: list[Document]) -> list[Document]:
    return english_docs[:6] + english_docs[40:44]


@pytest.fixture
def library(opener: Any, docs: list[Document]) -> Library:
    lib = opener()
    assert lib.ingest_documents("kb", docs, progress=False).added == len(docs)
    return lib


def _ids(hits: Sequence[Any]) -> list[str]:
    return [h.doc_id for h in hits]


def _stored(lib: Library, kb: str = "kb") -> set[int]:
    return {r[0] for r in lib.store.db.execute("SELECT id FROM chunks WHERE kb = ?", [kb])}


@pytest.fixture
def consistent(check_kb: Any) -> Any:
    """consistent(lib): the knowledge base is whole (conftest check_kb: rows, FTS, index ids,
    generation) and searching finds exactly what the store holds, on both sides."""

    def check(lib: Library, kb: str = "kb") -> None:
        check_kb(lib, kb)
        _searchable(lib, kb)

    return check


def _searchable(lib: Library, kb: str) -> None:
    chunks = _stored(lib, kb)
    dense = lib.dense_search(kb, "a", len(chunks) + 5)
    assert {h.chunk_id for h in dense} == chunks
    for chunk_id, text in lib.store.chunk_texts(kb)[:5]:
        assert chunk_id in {h.chunk_id for h in lib.lexical_search(kb, text, 10)}


def test_search_finds_a_passage_by_its_text_both_ways(
    library: Library, docs: list[Document], consistent: Any
) -> None:
    doc = docs[2]
    dense = library.dense_search("kb", doc.text[:300], 3)
    lexical = library.lexical_search("kb", doc.text[:300], 3)
    assert _ids(dense)[0] == doc.id and _ids(lexical)[0] == doc.id
    assert [h.ranks for h in dense] == [{"dense": i} for i in range(3)]
    assert [h.ranks for h in lexical] == [{"lexical": i} for i in range(len(lexical))]
    assert dense[0].score > 0.5
    assert [h.score for h in dense] == sorted((h.score for h in dense), reverse=True)
    top = dense[0]
    assert (top.kb, top.title, top.domain, top.source) == ("kb", doc.title, doc.domain, doc.source)
    assert doc.text[top.start : top.end] == top.text
    consistent(library)


def test_both_backends_rank_alike(
    tmp_path: Path, docs: list[Document], minilm_embedder: Any
) -> None:
    pytest.importorskip("pymilvus")
    results = []
    for n, store in enumerate(("", f"milvus://{tmp_path / 'm' / 'kb.db'}")):
        lib = Library(tmp_path / f"d{n}", embedder_loader=lambda _: minilm_embedder, store=store)
        lib.ingest_documents("kb", docs, progress=False)
        searcher = HybridSearcher(lib)
        queries = [d.title or d.text[:80] for d in docs]
        results.append([_ids(searcher.search(q, ["kb"], k=5)) for q in queries])
        dense = lib.dense_search("kb", docs[0].text[:200], 5)
        results.append([round(h.score, 4) for h in dense])
        lib.close()
    assert results[0] == results[2]  # the same fused top 5 for every query
    assert results[1] == results[3]  # exact inner product on both


def test_filters_apply_inside_both_searches(library: Library, docs: list[Document]) -> None:
    query = docs[7].text[:200]  # a PubMedQA abstract, so unfiltered it would rank first
    for search in (library.dense_search, library.lexical_search):
        hits = search("kb", query, 20, Filters(domain="education"))
        assert hits and {h.domain for h in hits} == {"education"}
        assert search("kb", query, 20, Filters(domain="legal")) == []
        assert _ids(search("kb", query, 1, Filters(source="pubmedqa"))) == [docs[7].id]
        assert search("kb", query, 5, Filters(source='x" or lang != "')) == []


def test_a_changed_document_replaces_its_chunks(
    library: Library, docs: list[Document], consistent: Any
) -> None:
    doc = docs[1]
    old = {i for i in _stored(library) if i in _chunks_of(library, doc.id)}
    changed = dataclasses.replace(doc, text=doc.text + " The quokka ate marmalade in Zanzibar.")
    assert library.ingest_documents("kb", [changed], progress=False).replaced == 1
    new = _chunks_of(library, doc.id)
    assert not old & new
    hits = library.lexical_search("kb", "quokka marmalade Zanzibar", 5)
    assert [(h.doc_id, h.chunk_id in new) for h in hits] == [(doc.id, True)]
    consistent(library)


def _chunks_of(lib: Library, doc_id: str) -> set[int]:
    rows = lib.store.db.execute("SELECT id FROM chunks WHERE kb = 'kb' AND doc_id = ?", [doc_id])
    return {r[0] for r in rows}


def test_a_deleted_document_is_never_found_again_by_any_view(
    library: Library, opener: Any, docs: list[Document], consistent: Any
) -> None:
    doc, query = docs[3], docs[3].text[:300]
    other = opener()  # another process's view, loaded before the delete
    assert _ids(other.dense_search("kb", query, 1)) == [doc.id]
    assert library.delete_doc("kb", doc.id) is True
    assert library.delete_doc("kb", doc.id) is False
    reopened = opener()
    for lib in (library, other, reopened):
        assert doc.id not in _ids(lib.dense_search("kb", query, 50))
        assert doc.id not in _ids(lib.lexical_search("kb", query, 50))
        assert len(lib.dense_search("kb", query, 50)) == lib.info("kb").chunks
    consistent(reopened)


def test_a_dropped_kb_is_gone_and_one_made_again_is_not_the_old_one(
    library: Library, opener: Any, docs: list[Document]
) -> None:
    other = opener()
    assert _ids(other.dense_search("kb", docs[0].text, 1)) == [docs[0].id]
    library.drop("kb")
    with pytest.raises(KnowledgeBaseNotFoundError, match="none yet"):
        other.dense_search("kb", "anything", 3)
    library.ingest_documents(
        "kb", [Document("new", "Volcanoes erupt molten rock.")], progress=False
    )
    for lib in (library, other):
        assert _ids(lib.dense_search("kb", docs[0].text, 5)) == ["new"]
        assert _ids(lib.lexical_search("kb", "volcanoes", 5)) == ["new"]


def test_knowledge_bases_never_see_each_other(
    library: Library, docs: list[Document], consistent: Any
) -> None:
    library.ingest_documents(
        "other", [Document("o", "Volcanoes erupt molten rock.")], progress=False
    )
    assert _ids(library.lexical_search("other", docs[0].text, 20)) in ([], ["o"])
    assert _ids(library.dense_search("other", docs[0].text, 20)) == ["o"]
    assert "o" not in _ids(library.dense_search("kb", "Volcanoes erupt molten rock.", 50))
    library.drop("other")
    consistent(library)


def test_a_failure_between_the_commit_and_the_index_is_repaired_by_the_next_open(
    library: Library,
    opener: Any,
    docs: list[Document],
    english_docs: list[Document],
    consistent: Any,
) -> None:
    index = library.indexes

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("index write failed (disk full, or the server went away)")

    original = index.apply
    index.apply = fail  # type: ignore[method-assign]  # the store commits, the index does not
    with pytest.raises(OSError, match="index write failed"):
        library.ingest_documents("kb", english_docs[20:22], progress=False)
    index.apply = original  # type: ignore[method-assign]
    assert library.info("kb").documents == len(docs) + 2  # the store has them
    reopened = opener()
    consistent(reopened)
    new = english_docs[20]
    assert _ids(reopened.dense_search("kb", new.text[:300], 1)) == [new.id]


def test_a_failure_mid_ingest_keeps_only_whole_batches(
    opener: Any,
    english_docs: list[Document],
    minilm_embedder: Any,
    monkeypatch: pytest.MonkeyPatch,
    consistent: Any,
) -> None:
    calls = {"n": 0}
    real = minilm_embedder.embed_documents

    def flaky(texts: Sequence[str]) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("embedder failed")
        return real(texts)

    lib = opener(batch_docs=3)
    docs = english_docs[10:16]
    monkeypatch.setattr(minilm_embedder, "embed_documents", flaky)
    with pytest.raises(RuntimeError, match="embedder failed"):
        lib.ingest_documents("kb", docs, progress=False)
    monkeypatch.undo()
    assert [d.doc_id for d in lib.documents("kb")] == sorted(d.id for d in docs[:3])
    consistent(lib)
    report = opener().ingest_documents("kb", docs, progress=False)
    assert (report.unchanged, report.added) == (3, 3)


def test_concurrent_searches_agree_with_sequential_ones(
    library: Library, docs: list[Document]
) -> None:
    queries = [d.text[:200] for d in docs[::2]]

    def both(q: str) -> tuple[list[int], list[int]]:
        dense = library.dense_search("kb", q, 5)
        lexical = library.lexical_search("kb", q, 5)
        return [h.chunk_id for h in dense], [h.chunk_id for h in lexical]

    expected = [both(q) for q in queries]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(both, queries * 2)) == expected * 2


def test_searches_keep_working_while_another_thread_ingests(
    library: Library, docs: list[Document], english_docs: list[Document], consistent: Any
) -> None:
    library.batch_docs = 2
    done = threading.Event()
    errors: list[BaseException] = []
    found: list[bool] = []

    def ingest() -> None:
        try:
            library.ingest_documents("kb", english_docs[20:26], progress=False)
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    def search() -> None:
        try:
            while not done.is_set():
                found.append(_ids(library.dense_search("kb", docs[0].text, 1)) == [docs[0].id])
                found.append(_ids(library.lexical_search("kb", docs[0].text, 1)) == [docs[0].id])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=ingest), *(threading.Thread(target=search) for _ in "ab")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == [] and found and all(found)
    assert library.info("kb").documents == len(docs) + 6
    consistent(library)
