"""`citewise migrate`: an embedded data directory's conversations, accounts and knowledge bases
onto a real PostgreSQL server and their search onto Milvus Lite, as a user runs it; ids, order,
ratings and passage ids kept, so another machine with an empty data directory searches them."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cli_run import run_cli

from agent.state import DialogueStore, EvidenceRecord, TurnRecord
from agent.types import Citation, Notice
from retrieval.kb import Library
from retrieval.types import Document
from ui.users import UserStore

pytestmark = pytest.mark.slow
pytest.importorskip("pymilvus")


def _dialogues(path: Path) -> dict[str, Any]:
    """Three sessions (one deleted, so ids have gaps), turns with evidence, two ratings."""
    with DialogueStore(path) as store:
        first = store.create_session("合同", owner="alice")
        gone = store.create_session("deleted")
        store.append_turn(gone, TurnRecord(user_text="x"))
        store.delete_session(gone)
        turn = TurnRecord(
            user_text="试用期多久？",
            answer="不得超过一个月 [1]。",
            citations=(
                Citation(
                    1,
                    "l",
                    "law",
                    7,
                    "劳动合同法",
                    "第十九条…",
                    "不得超过一个月 [1]。",
                    0.9,
                    "试用期不得超过一个月。",
                    True,
                ),
            ),
            notices=(Notice("legal", "这不是法律意见。"),),
            evidence=(EvidenceRecord("law", "l", 7, 0.81, "第十九条 …", "劳动合同法"),),
            latencies={"ttft_ms": 412.0},
        )
        rated = store.append_turn(first, turn)
        store.append_turn(first, TurnRecord(user_text="那工资呢？", interrupted=True))
        store.add_feedback(rated, -1, "wrong article")
        second = store.create_session("paracetamol")
        store.add_feedback(store.append_turn(second, TurnRecord(user_text="dose?")), 1)
        return {
            "sessions": store.sessions(),
            "histories": {s.id: store.history(s.id) for s in store.sessions()},
            "feedback": store.feedback(),
        }


def test_migrate_copies_conversations_and_indexes_knowledge_bases(
    tmp_path: Path, pg_database: str, minilm_embedder: Any, english_docs: list[Document]
) -> None:
    data = tmp_path / "data"
    lib = Library(data, embedder_loader=lambda _: minilm_embedder)
    lib.create("kb", embedder="bundled:minilm")
    lib.ingest_documents("kb", english_docs[:6], progress=False)
    lib.delete_doc("kb", english_docs[5].id)  # the largest ids were handed out, then deleted
    passages = dict(lib.store.chunk_texts("kb"))
    last_id = lib.store.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'")
    last_id = last_id.fetchone()[0]
    assert last_id > max(passages)
    lib.close()
    with closing(UserStore(data / "users.db")) as users:
        users.add("ada", "correct horse", admin=True)
        users.add_token("ada", "laptop")
        users.set_readers("kb", ["ada"])
    before = _dialogues(data / "dialogue.db")
    store = f"milvus://{tmp_path / 'milvus' / 'kb.db'}"

    args = ("--data-dir", str(data), "migrate", "--to-database", pg_database, "--to-store", store)
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "2 sessions, 3 turns, 2 ratings" in result.stdout
    assert "accounts: 1 users copied" in result.stdout
    assert "knowledge bases: 1, with 5 documents and" in result.stdout
    assert f'store = "{store}"' in result.stdout

    with DialogueStore(pg_database) as moved:
        assert moved.sessions() == before["sessions"]  # ids, titles, owners, order, counts
        for session_id, history in before["histories"].items():
            assert moved.history(session_id) == history  # turn ids, evidence, citations, notices
        assert moved.feedback() == before["feedback"]
        # New ids continue past the copied ones: a stale rating never lands on a new turn.
        new_turn = moved.append_turn(before["sessions"][0].id, TurnRecord(user_text="next"))
        assert new_turn > max(t.id or 0 for h in before["histories"].values() for t in h)

    with closing(UserStore(pg_database)) as users:
        assert users.verify("ada", "correct horse").admin
        assert len(users.tokens("ada")) == 1 and users.readers() == {"kb": {"ada"}}

    # Another machine: an empty data directory, the same PostgreSQL and Milvus.
    searched = Library(tmp_path / "other", embedder_loader=lambda _: minilm_embedder, store=store,
                       database_url=pg_database)  # fmt: skip
    assert dict(searched.store.chunk_texts("kb")) == passages  # passage ids kept
    doc = english_docs[2]
    assert [h.doc_id for h in searched.dense_search("kb", doc.text[:300], 1)] == [doc.id]
    assert [h.doc_id for h in searched.lexical_search("kb", doc.text[:300], 1)] == [doc.id]
    searched.ingest_documents("kb", english_docs[5:6], progress=False)
    assert min(dict(searched.store.chunk_texts("kb")).keys() - passages.keys()) > last_id
    searched.close()
    assert not (tmp_path / "other" / "citewise.db").exists()

    again = run_cli("--data-dir", str(data), "migrate", "--to-database", pg_database)
    assert again.returncode == 2 and "already holds 2 conversations" in again.stderr
    with DialogueStore(pg_database) as moved:
        assert len(moved.sessions()) == 2

    nothing = run_cli("--data-dir", str(data), "migrate")
    assert nothing.returncode == 2 and "nothing to migrate to" in nothing.stderr
