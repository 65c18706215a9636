"""The dialogue store: round trips, sessions, feedback and threads on both backends (a real SQLite
file and a real PostgreSQL server, the `store` fixture), then SQLite's own schema and files."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlite_utils import Database

from agent.migrations import MIGRATIONS, migrate, migration
from agent.state import (
    DialogueStore,
    DialogueStoreError,
    EvidenceRecord,
    SessionNotFoundError,
    TurnNotFoundError,
    TurnRecord,
)
from agent.types import Citation, Notice, Route
from retrieval.types import Hit


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store lives: a fresh dialogue.db, or a fresh database on a real PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_database"))
    return tmp_path / "dialogue.db"


@pytest.fixture
def store(location: Path | str) -> Iterator[DialogueStore]:
    with DialogueStore(location) as s:
        yield s


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[DialogueStore]:
    with DialogueStore(tmp_path / "dialogue.db") as s:
        yield s


def _count(store: DialogueStore, table: str) -> int:
    with store._sql.read() as tx:
        (n,) = tx.one(f"SELECT COUNT(*) FROM {table}") or (0,)
    return int(n)


def _turn(text: str, n_evidence: int = 2, **kw: Any) -> TurnRecord:
    evidence = tuple(
        EvidenceRecord(kb="law", doc_id=f"d{i}", chunk_id=i, score=1.0 / (i + 1), text=f"p{i}")
        for i in range(n_evidence)
    )
    kw.setdefault("answer", f"answer to {text}")
    return TurnRecord(user_text=text, evidence=evidence, **kw)


def _schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_turn_round_trips_every_field(store: DialogueStore) -> None:
    hit = Hit(
        chunk_id=np.int64(7),  # type: ignore[arg-type]  # as FAISS ids arrive
        doc_id="民法典-143",
        kb="law",
        score=np.float32(0.83),  # type: ignore[arg-type]
        text="依法成立的合同，受法律保护。",
        title="民法典",
    )
    turn = TurnRecord(
        user_text="合同什么时候有效？",
        answer="依法成立的合同有效[1]。",
        rewritten_query="合同 有效 条件",
        intent="question",
        domain="legal",
        route=Route("knowledge", "legal", 0.9, 0.8, "trained", ("law",)),
        citations=(
            Citation(
                1,
                "民法典-143",
                "law",
                3,
                "民法典",
                "依法…",
                "依法成立的合同有效[1]。",
                0.8,
                "依法成立的合同，受法律保护。",
                True,
            ),
        ),
        refused=False,
        notices=(Notice("legal", "不构成法律意见。"), Notice("note", "history was trimmed")),
        latencies={"retrieve_ms": np.float64(12.5), "ttft_ms": 300.0, "total_ms": 2100.0},
        model="smollm2-360m",
        evidence=(EvidenceRecord.from_hit(hit), EvidenceRecord("law", "d2", 9, 0.1, "x", "t")),
    )
    session_id = store.create_session()
    turn_id = store.append_turn(session_id, turn)
    [back] = store.history(session_id)
    assert (back.id, back.session_id, back.idx) == (turn_id, session_id, 0)
    assert back.created_at
    # Everything the caller set comes back equal; numpy scalars come back as plain numbers.
    assert back == dataclasses.replace(
        turn, id=turn_id, session_id=session_id, idx=0, created_at=back.created_at
    )
    assert type(back.evidence[0].chunk_id) is int and type(back.latencies["retrieve_ms"]) is float


def test_interrupted_turn_round_trips_with_partial_answer(store: DialogueStore) -> None:
    session_id = store.create_session()
    store.append_turn(session_id, _turn("long question", interrupted=True, answer="The first half"))
    [back] = store.history(session_id)
    assert back.interrupted is True and back.refused is False
    assert back.answer == "The first half"
    assert len(back.evidence) == 2


def test_history_is_oldest_first_and_limit_keeps_the_latest(store: DialogueStore) -> None:
    session_id = store.create_session()
    ids = [store.append_turn(session_id, _turn(f"q{i}", n_evidence=i % 3)) for i in range(5)]
    history = store.history(session_id)
    assert [t.id for t in history] == ids
    assert [t.idx for t in history] == [0, 1, 2, 3, 4]
    assert [len(t.evidence) for t in history] == [0, 1, 2, 0, 1]
    assert [t.user_text for t in store.history(session_id, limit=2)] == ["q3", "q4"]
    assert store.history(session_id, limit=0) == []
    assert store.history("no-such-session") == []
    with pytest.raises(ValueError, match="limit"):
        store.history(session_id, limit=-1)


def test_append_turn_creates_missing_session_and_sessions_lists_most_recent_first(
    store: DialogueStore,
) -> None:
    older = store.create_session("older")
    newer = store.create_session("newer")
    store.append_turn("ui-made-id", _turn("hello"))
    assert [s.id for s in store.sessions()] == ["ui-made-id", newer, older]
    store.append_turn(older, _turn("back again"))  # activity moves a session to the top
    listed = store.sessions()
    assert [(s.id, s.title, s.turns) for s in listed] == [
        (older, "older", 1),
        ("ui-made-id", "", 1),
        (newer, "newer", 0),
    ]
    assert listed[0].updated_at > listed[0].created_at


def test_a_deleted_session_is_not_recreated_ownerless_by_a_late_turn(
    store: DialogueStore,
) -> None:
    # A conversation deleted while its answer streamed: the answer's turn arrives afterwards.
    mine = store.create_session("alice's", owner="alice")
    store.append_turn(mine, _turn("first"))
    assert store.delete_session(mine, "alice")
    with pytest.raises(SessionNotFoundError, match="was deleted"):
        store.append_turn(mine, _turn("late answer"))
    assert store.sessions() == []  # not brought back with owner "" and the late turn
    assert _count(store, "turns") == 0
    store.append_turn("never-seen-id", _turn("hello"))  # an unknown id is still created
    assert [s.id for s in store.sessions()] == ["never-seen-id"]


def test_session_lookup_and_rename(store: DialogueStore) -> None:
    session_id = store.create_session("draft")
    store.rename_session(session_id, "合同纠纷")
    info = store.session(session_id)
    assert (info.title, info.turns) == ("合同纠纷", 0)
    with pytest.raises(SessionNotFoundError, match="no dialogue session") as err:
        store.session("missing")
    assert isinstance(err.value, LookupError)
    with pytest.raises(SessionNotFoundError):
        store.rename_session("missing", "x")


def test_delete_session_removes_its_turns_evidence_and_feedback_only(store: DialogueStore) -> None:
    doomed, kept = store.create_session(), store.create_session()
    doomed_turn = store.append_turn(doomed, _turn("a", n_evidence=3))
    kept_turn = store.append_turn(kept, _turn("b", n_evidence=2))
    store.add_feedback(doomed_turn, -1)
    store.add_feedback(kept_turn, 1)
    assert store.delete_session(doomed) is True
    assert store.delete_session(doomed) is False
    assert [s.id for s in store.sessions()] == [kept]
    assert (_count(store, "turns"), _count(store, "evidence")) == (1, 2)
    assert [f.turn_id for f, _ in store.feedback()] == [kept_turn]


def test_feedback_validates_and_exports_with_the_rated_turn(store: DialogueStore) -> None:
    session_id = store.create_session()
    turn_id = store.append_turn(session_id, _turn("q", n_evidence=3))
    for bad in (0, 2, True):
        with pytest.raises(ValueError, match="rating must be 1"):
            store.add_feedback(turn_id, bad)
    with pytest.raises(TurnNotFoundError, match="reload the session"):
        store.add_feedback(turn_id + 100, 1)
    first = store.add_feedback(turn_id, 1)
    second = store.add_feedback(turn_id, -1, "wrong article cited")
    exported = store.feedback()
    assert [(f.id, f.rating, f.comment) for f, _ in exported] == [
        (first, 1, ""),
        (second, -1, "wrong article cited"),
    ]
    assert all(t.id == turn_id and len(t.evidence) == 3 for _, t in exported)


def test_deleted_turn_ids_are_never_reused(store: DialogueStore) -> None:
    # A stale UI tab rating a turn of a deleted session must fail, not rate a newer turn.
    old = store.create_session()
    stale_id = store.append_turn(old, _turn("q"))
    store.delete_session(old)
    fresh_id = store.append_turn(store.create_session(), _turn("q"))
    assert fresh_id != stale_id
    with pytest.raises(TurnNotFoundError):
        store.add_feedback(stale_id, 1)


def test_failure_between_turn_and_evidence_rows_stores_nothing(sqlite_store: DialogueStore) -> None:
    store = sqlite_store
    store._sql.db.execute(
        "CREATE TRIGGER fail_evidence BEFORE INSERT ON evidence WHEN NEW.text = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'disk full, say'); END"
    )
    evidence = (
        EvidenceRecord("kb", "d", 1, 0.5, "fine"),
        EvidenceRecord("kb", "d", 2, 0.4, "boom"),
    )
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        store.append_turn("new-session", TurnRecord(user_text="q", evidence=evidence))
    for table in ("sessions", "turns", "evidence"):
        assert _count(store, table) == 0
    store.append_turn("new-session", _turn("retry"))  # the store is usable afterwards
    assert [t.idx for t in store.history("new-session")] == [0]


def test_turn_with_untyped_route_or_citations_is_rejected_before_writing(
    store: DialogueStore,
) -> None:
    with pytest.raises(TypeError, match=r"turn\.route must hold Route"):
        store.append_turn("s", TurnRecord(user_text="q", route={"kbs": ["x"]}))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"turn\.citations must hold Citation"):
        store.append_turn("s", TurnRecord(user_text="q", citations=({"n": 1},)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="EvidenceRecord"):
        store.append_turn("s", TurnRecord(user_text="q", evidence=({"kb": "x"},)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="session_id"):
        store.append_turn("", _turn("q"))
    assert store.sessions() == []


def test_concurrent_appends_from_8_threads_keep_sessions_apart(store: DialogueStore) -> None:
    per_thread = 20
    sessions = [store.create_session(f"t{i}") for i in range(8)]
    barrier = threading.Barrier(len(sessions))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for j in range(per_thread):
                store.append_turn(sessions[n], _turn(f"{n}:{j}", n_evidence=1 + j % 3))
                store.history(sessions[n], limit=3)  # interleave reads with the other writers
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n, session_id in enumerate(sessions):
        history = store.history(session_id)
        assert [t.user_text for t in history] == [f"{n}:{j}" for j in range(per_thread)]
        assert [t.idx for t in history] == list(range(per_thread))
        assert [len(t.evidence) for t in history] == [1 + j % 3 for j in range(per_thread)]


def test_two_connections_appending_to_one_session_number_turns_contiguously(
    location: Path | str,
) -> None:
    # Two stores stand in for the UI and the CLI (or two replicas on PostgreSQL): separate
    # connections, one session.
    stores = [DialogueStore(location), DialogueStore(location)]
    threads = [
        threading.Thread(
            target=lambda s=s, k=k: [s.append_turn("shared", _turn(f"{k}{j}")) for j in range(15)]
        )
        for k, s in enumerate(stores)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = stores[0].history("shared")
    assert [t.idx for t in history] == list(range(30))
    expected = sorted(f"{k}{j}" for k in range(2) for j in range(15))
    assert sorted(t.user_text for t in history) == expected
    for s in stores:
        s.close()


def test_store_persists_in_wal_mode_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dialogue.db"
    with DialogueStore(path) as store:
        session_id = store.create_session("kept")
        store.append_turn(session_id, _turn("q", n_evidence=4))
    with DialogueStore(path) as store:
        assert store.session(session_id).turns == 1
        assert len(store.history(session_id)[0].evidence) == 4
        assert store._sql.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store._sql.db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_a_file_that_is_not_a_database_gives_an_actionable_error(tmp_path: Path) -> None:
    path = tmp_path / "dialogue.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DialogueStoreError, match="move it aside"):
        DialogueStore(path)


def test_db_at_the_previous_migration_is_upgraded_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "dialogue.db"
    with Database(path) as db:
        assert migrate(db, MIGRATIONS[:-1]) == [m.__name__ for m in MIGRATIONS[:-1]]
        db.execute("INSERT INTO sessions VALUES ('old', 'before upgrade', '2024-01', '2024-01')")
        db.execute(
            "INSERT INTO turns (session_id, idx, user_text, answer, evidence_count, created_at) "
            "VALUES ('old', 0, 'q', 'a', 1, '2024-01-01')"
        )
        db.execute("INSERT INTO evidence VALUES (1, 0, 'law', 'd', 3, 0.5, 't', 'passage')")
    with DialogueStore(path) as store:
        [turn] = store.history("old")
        assert (turn.user_text, turn.answer, turn.evidence[0].text) == ("q", "a", "passage")
        assert store.session("old").title == "before upgrade"
        store.add_feedback(turn.id or 0, 1)  # m002's table works
        rows = store._sql.db.execute("SELECT name FROM _migrations ORDER BY rowid")
        applied = [r[0] for r in rows]
        assert applied == [m.__name__ for m in MIGRATIONS]


def test_notices_stored_as_text_get_their_kind_back_on_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "dialogue.db"
    names = [m.__name__ for m in MIGRATIONS]
    with Database(path) as db:
        migrate(db, MIGRATIONS[: names.index("m003_notice_kinds")])
        db.execute("INSERT INTO sessions VALUES ('old', '', '2024-01', '2024-01')")
        old = [
            ("这是根据您的文档提供的信息，不构成医疗建议。", 0),
            ("If this is an emergency, call your local emergency number now.", 0),
            ("This is not legal advice. Sources: PRC law.", 0),
            ("The knowledge base does not cover this question.", 1),
        ]
        for idx, (text, refused) in enumerate(old):
            db.execute(
                "INSERT INTO turns (session_id, idx, user_text, refused, notices_json, created_at)"
                " VALUES ('old', ?, 'q', ?, ?, '2024-01-01')",
                [idx, refused, json.dumps([text], ensure_ascii=False)],
            )
    with DialogueStore(path) as store:
        kinds = [[(n.kind, n.text) for n in t.notices] for t in store.history("old")]
    assert kinds == [
        [("medical", old[0][0])],
        [("emergency", old[1][0])],
        [("legal", old[2][0])],
        [("refusal", old[3][0])],
    ]


def test_a_turn_with_a_notice_that_is_not_a_notice_is_refused_whole(tmp_path: Path) -> None:
    with DialogueStore(tmp_path / "dialogue.db") as store:
        session_id = store.create_session()
        bad = TurnRecord(user_text="q", answer="a", notices=("just text",))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Notice items"):
            store.append_turn(session_id, bad)
        assert store.history(session_id) == []


def test_running_migrations_again_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "dialogue.db"
    DialogueStore(path).close()
    schema = _schema(path)
    with sqlite3.connect(path) as conn:
        recorded = conn.execute("SELECT * FROM _migrations").fetchall()
    DialogueStore(path).close()
    with Database(path) as db:
        assert migrate(db) == []
    assert _schema(path) == schema
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT * FROM _migrations").fetchall() == recorded


def test_a_failing_migration_is_rolled_back_and_stays_pending(tmp_path: Path) -> None:
    def m_half_done(db: Database) -> None:
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("bug in migration")

    with Database(tmp_path / "dialogue.db") as db:
        with pytest.raises(RuntimeError, match="bug in migration"):
            migrate(db, [*MIGRATIONS, m_half_done])
        assert "half" not in db.table_names()
        names = [r[0] for r in db.execute("SELECT name FROM _migrations")]
        assert names == [m.__name__ for m in MIGRATIONS]


def test_migration_names_must_be_unique() -> None:
    def m001_sessions_turns_evidence(db: Database) -> None: ...

    with pytest.raises(ValueError, match="exists already"):
        migration(m001_sessions_turns_evidence)
    assert len({m.__name__ for m in MIGRATIONS}) == len(MIGRATIONS)


def test_stores_opened_at_once_on_a_fresh_file_apply_each_migration_once(tmp_path: Path) -> None:
    # The UI and the CLI starting together must not both create the tables.
    path = tmp_path / "dialogue.db"
    barrier = threading.Barrier(6)
    opened: list[DialogueStore] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            barrier.wait()
            opened.append(DialogueStore(path))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for s in opened:
        s.close()
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [m.__name__ for m in MIGRATIONS]


def test_text_neither_store_can_hold_is_refused_alike(store: DialogueStore) -> None:
    # PostgreSQL cannot store NUL, SQLite takes it: both refuse it, with the same words.
    with pytest.raises(ValueError, match="NUL character"):
        store.create_session("a\x00b")
    with pytest.raises(ValueError, match="NUL character"):
        store.append_turn("s", _turn("what\x00?"))
    with pytest.raises(ValueError, match="lone surrogate"):
        store.append_turn("s", _turn("\ud800"))
    assert store.sessions() == [] and store.history("a\x00b") == []
    with pytest.raises(SessionNotFoundError):
        store.session("a\x00b")
