"""Opening dialogue.db: connection settings, and the schema as ordered migrations (as simonw/llm).

A migration is a function of the database, registered with `@migration` and never edited once
released: a schema change is a new function at the end of the list. Each one runs in its own
`BEGIN IMMEDIATE` transaction together with its row in `_migrations`, so a crash or an error
mid-migration leaves it wholly unapplied, and two processes opening a fresh store at once cannot
both apply it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

Migration = Callable[[Database], None]

MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration; its function name is its permanent identity."""
    if any(m.__name__ == fn.__name__ for m in MIGRATIONS):
        raise ValueError(f"a migration named {fn.__name__!r} exists already; pick a new name")
    MIGRATIONS.append(fn)
    return fn


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with microseconds; such strings sort in time order."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes the write lock up front.

    A deferred BEGIN that reads and then writes fails at once with SQLITE_BUSY when another
    connection committed in between (the busy timeout cannot help); IMMEDIATE waits for the lock.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.Error:
        db.rollback()
        raise


def connect(path: Path, busy_timeout_s: float) -> Database:
    """Open `path` in WAL mode with synchronous=FULL and foreign keys on, migrated to the latest.

    The connection may be used from any thread; the caller serializes access (agent/state.py says
    why FULL and why one connection).
    """
    conn = sqlite3.connect(path, timeout=busy_timeout_s, check_same_thread=False)
    try:
        _enable_wal(conn, busy_timeout_s)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")  # per connection; ON DELETE CASCADE needs it
        db = Database(conn)
        migrate(db)
    except BaseException:
        conn.close()
        raise
    return db


def _enable_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Switch the file to WAL (a no-op once it is), retrying while another connection opens it.

    The switch needs an exclusive lock, and SQLite asks for it without the busy handler, so two
    processes opening a fresh store together would otherwise fail at once with "locked".
    """
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations not yet recorded, in order; return the names applied now."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = []
    for fn in migrations:
        with immediate(db):
            # Checked inside the transaction: another process may have applied it meanwhile.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", [fn.__name__]).fetchone():
                continue
            fn(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [fn.__name__, utc_now()]
            )
        applied.append(fn.__name__)
    return applied


@migration
def m001_sessions_turns_evidence(db: Database) -> None:
    # AUTOINCREMENT so a deleted turn's id is never handed to a new turn: a stale UI tab
    # rating an old turn must fail, not attach the rating to someone else's answer.
    for sql in (
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            user_text TEXT NOT NULL,
            rewritten_query TEXT NOT NULL DEFAULT '',
            intent TEXT NOT NULL DEFAULT '',
            domain TEXT NOT NULL DEFAULT '',
            route_json TEXT NOT NULL DEFAULT '{}',
            answer TEXT NOT NULL DEFAULT '',
            citations_json TEXT NOT NULL DEFAULT '[]',
            refused INTEGER NOT NULL DEFAULT 0,
            interrupted INTEGER NOT NULL DEFAULT 0,
            notices_json TEXT NOT NULL DEFAULT '[]',
            latencies_json TEXT NOT NULL DEFAULT '{}',
            model TEXT NOT NULL DEFAULT '',
            evidence_count INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )""",
        # Unique (session_id, idx) keeps turn numbers free of duplicates and serves as the
        # session_id index.
        "CREATE UNIQUE INDEX idx_turns_session_idx ON turns (session_id, idx)",
        """CREATE TABLE evidence (
            turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            kb TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            chunk_id INTEGER NOT NULL,
            score REAL NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            PRIMARY KEY (turn_id, rank)
        )""",
    ):
        db.execute(sql)


@migration
def m002_feedback(db: Database) -> None:
    db.execute(
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            rating INTEGER NOT NULL CHECK (rating IN (1, -1)),
            comment TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_feedback_turn_id ON feedback (turn_id)")


@migration
def m003_notice_kinds(db: Database) -> None:
    """Notices were stored as text alone; store {kind, text}, the kind read from old wording."""
    rows = db.execute("SELECT id, refused, notices_json FROM turns WHERE notices_json != '[]'")
    for turn_id, refused, notices_json in rows.fetchall():
        notices = [
            n if isinstance(n, dict) else {"kind": _legacy_notice_kind(n, bool(refused)), "text": n}
            for n in json.loads(notices_json)
        ]
        db.execute(
            "UPDATE turns SET notices_json = ? WHERE id = ?",
            [json.dumps(notices, ensure_ascii=False, sort_keys=True), turn_id],
        )


@migration
def m004_session_owner(db: Database) -> None:
    """Sessions belong to a user (ui/users.py); '' for sessions of a server without accounts."""
    db.execute("ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX idx_sessions_owner ON sessions (owner)")


def _legacy_notice_kind(text: str, refused: bool) -> str:
    """The kind of a notice written before m003, from the wording agent/policy.py used."""
    lowered = text.lower()
    if "emergency" in lowered or "急救" in text:
        return "emergency"
    if "medical" in lowered or "医疗" in text:
        return "medical"
    if "legal" in lowered or "法律意见" in text:
        return "legal"
    return "refusal" if refused else "note"
