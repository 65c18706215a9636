"""Knowledge bases on PostgreSQL + Milvus (retrieval/store_pg.py): what only a shared store must do.
Two libraries with data directories of their own (two machines) see each other's documents and
deletes; nothing of a knowledge base is written to the data directory; a dropped connection is
opened again; a wrong URL is one line; writers on different machines take turns. Real PostgreSQL,
a real `milvus-lite server`, real MiniLM (the behaviours both backends share are in
tests/test_kb_contract.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pg_server import drop_connections

from retrieval.errors import RetrievalError
from retrieval.kb import Library
from retrieval.types import Document
from retrieval.write_lock import WriteLock

pytestmark = pytest.mark.slow


def _library(folder: Path, store: str, url: str, embedder: Any) -> Library:
    return Library(folder, embedder_loader=lambda _: embedder, store=store, database_url=url)


def test_two_machines_share_documents_and_deletes(
    tmp_path: Path, pg_database: str, milvus_server: str, minilm_embedder: Any,
    english_docs: list[Document],
) -> None:  # fmt: skip
    docs = english_docs[:6]
    a = _library(tmp_path / "a", milvus_server, pg_database, minilm_embedder)
    b = _library(tmp_path / "b", milvus_server, pg_database, minilm_embedder)
    try:
        assert a.ingest_documents("kb", docs, progress=False).added == len(docs)
        assert [i.name for i in b.list()] == ["kb"]
        query = docs[2].text[:200]
        assert b.dense_search("kb", query, 1)[0].doc_id == docs[2].id
        assert b.lexical_search("kb", query, 1)[0].doc_id == docs[2].id
        assert b.document_text("kb", docs[2].id).text == docs[2].text
        assert a.delete_doc("kb", docs[2].id)
        for search in (b.dense_search, b.lexical_search):
            assert docs[2].id not in {h.doc_id for h in search("kb", query, 10)}
    finally:
        a.close()
        b.close()
    for folder in (tmp_path / "a", tmp_path / "b"):  # nothing of the knowledge base stays local
        assert not (folder / "citewise.db").exists()


def test_a_connection_the_server_dropped_is_opened_again(
    tmp_path: Path, pg_database: str, minilm_embedder: Any, english_docs: list[Document]
) -> None:
    lib = _library(tmp_path / "d", f"milvus://{tmp_path / 'm' / 'kb.db'}", pg_database,
                   minilm_embedder)  # fmt: skip
    try:
        lib.ingest_documents("kb", english_docs[:3], progress=False)
        assert drop_connections(pg_database) >= 1
        assert lib.dense_search("kb", english_docs[1].text[:200], 1)[0].doc_id == english_docs[1].id
        assert lib.ingest_documents("kb", english_docs[3:4], progress=False).added == 1
    finally:
        lib.close()


def test_a_database_url_that_does_not_work_is_one_line_naming_it(
    tmp_path: Path, pg_server: str, minilm_embedder: Any
) -> None:
    url = pg_server.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(RetrievalError) as err:
        _library(tmp_path, f"milvus://{tmp_path / 'm' / 'kb.db'}", url, minilm_embedder)
    message = str(err.value)
    assert message.startswith("database_url") and 'database "no_such_db"' in message
    assert "\n" not in message


def test_writers_on_different_machines_take_turns(pg_database: str) -> None:
    first, second = WriteLock(database_url=pg_database), WriteLock(database_url=pg_database)
    order: list[str] = []
    with first.held():
        waiter = threading.Thread(target=lambda: _hold(second, order))
        waiter.start()
        time.sleep(0.5)
        order.append("first done")
    waiter.join(10)
    assert order == ["first done", "second"]
    with first.held(), first.held():  # re-entrant within a thread
        pass


def _hold(lock: WriteLock, order: list[str]) -> None:
    with lock.held():
        order.append("second")


def test_text_postgresql_cannot_hold_keeps_its_offsets(
    tmp_path: Path, pg_database: str, minilm_embedder: Any
) -> None:
    lib = _library(tmp_path / "d", f"milvus://{tmp_path / 'm' / 'kb.db'}", pg_database,
                   minilm_embedder)  # fmt: skip
    try:
        doc = Document("nul", "Before\x00after: the quokka sleeps at noon.", title="t\x00")
        assert lib.ingest_documents("kb", [doc], progress=False).added == 1
        hit = lib.lexical_search("kb", "quokka sleeps", 1)[0]
        assert hit.text == "Before\ufffdafter: the quokka sleeps at noon." and hit.start == 0
        assert hit.end == len(doc.text)
    finally:
        lib.close()
