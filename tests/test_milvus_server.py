"""Milvus Lite as its own local gRPC server (conftest `milvus_server`), several client processes:
the `citewise` command ingests and deletes in one process while this one searches, over the same
data directory; and the settings that point nowhere fail at once, in one line."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from cli_run import run_cli

from retrieval.errors import RetrievalError
from retrieval.kb import Library
from retrieval.types import Document

pytestmark = pytest.mark.slow
pytest.importorskip("pymilvus")

ZORBLAT = "The Zorblat lantern festival of Quenville is held every year on the fourteenth of March."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_document_ingested_and_deleted_by_another_process_is_seen_at_once(
    milvus_server: str, tmp_path: Path, minilm_embedder: Any
) -> None:
    data = tmp_path / "data"
    doc = tmp_path / "zorblat.txt"
    doc.write_text(ZORBLAT, encoding="utf-8")
    common = ("--data-dir", str(data), "--store", milvus_server)
    made = run_cli(*common, "ingest", "--kb", "kb", "--embedder", "bundled:minilm", str(doc))
    assert made.returncode == 0, made.stderr
    here = Library(data, embedder_loader=lambda _: minilm_embedder, store=milvus_server)
    assert [h.doc_id for h in here.dense_search("kb", "When is the lantern festival?", 3)] == [
        "zorblat.txt"
    ]
    assert [h.doc_id for h in here.lexical_search("kb", "Zorblat lantern", 3)] == ["zorblat.txt"]

    other = tmp_path / "other.txt"
    other.write_text("Volcanoes erupt molten rock.", encoding="utf-8")
    added = run_cli(*common, "ingest", "--kb", "kb", str(other))
    assert added.returncode == 0, added.stderr
    assert "other.txt" in {h.doc_id for h in here.dense_search("kb", "volcano", 2)}

    gone = run_cli(*common, "kb", "delete-doc", "kb", "zorblat.txt")
    assert gone.returncode == 0, gone.stderr
    for search in (here.dense_search, here.lexical_search):
        assert "zorblat.txt" not in {h.doc_id for h in search("kb", "Zorblat lantern festival", 5)}
    here.close()


def test_a_store_that_does_not_work_fails_at_once_with_one_line(tmp_path: Path) -> None:
    nobody = f"milvus://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(RetrievalError, match="cannot reach Milvus") as err:
        Library(tmp_path / "data", store=nobody)
    assert time.monotonic() - started < 60 and "\n" not in str(err.value)
    for bad, expected in [
        ("milvus://user:s3cret@127.0.0.1:notaport", "port is not a number"),
        ("milvus:///tmp/no-suffix", "ends in .db"),
        ("milvis://127.0.0.1:19530", "use milvus:///path/kb.db"),
    ]:
        with pytest.raises(ValueError, match=expected) as err:
            Library(tmp_path / "data", store=bad)
        assert "s3cret" not in str(err.value)
    result = run_cli("--data-dir", str(tmp_path / "data"), "--store", nobody, "kb", "list")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"citewise: error: store {nobody}: cannot reach Milvus")


def test_a_milvus_server_that_goes_away_is_one_clear_error_not_a_traceback(
    milvus_server_process: tuple[str, Any], tmp_path: Path, minilm_embedder: Any
) -> None:
    store, proc = milvus_server_process
    lib = Library(tmp_path / "data", embedder_loader=lambda _: minilm_embedder, store=store)
    lib.ingest_documents("kb", [Document("z", ZORBLAT)], progress=False)
    assert [h.doc_id for h in lib.dense_search("kb", "lantern festival", 1)] == ["z"]
    proc.terminate()
    proc.wait(timeout=30)
    for search in (lib.dense_search, lib.lexical_search):
        with pytest.raises(RetrievalError, match=f"store {store}: Milvus did not answer search"):
            search("kb", "lantern festival", 1)
    assert [d.doc_id for d in lib.documents("kb")] == ["z"]  # what citewise.db holds is intact
