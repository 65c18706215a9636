"""dialogue.db's schema: its ordered migrations (the SQLite layer itself is retrieval/sqlite.py).

A migration is never edited once released: a schema change is a new function at the end.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sqlite_utils import Database

from retrieval.sqlite import Migration, Migrations
from retrieval.sqlite import connect as _connect
from retrieval.sqlite import migrate as _migrate

MIGRATIONS = Migrations()
migration = MIGRATIONS.register


def connect(path: Path, busy_timeout_s: float) -> Database:
    """Open dialogue.db (retrieval/sqlite.py's settings), migrated to the latest schema."""
    db = _connect(path, busy_timeout_s)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply dialogue.db's migrations not yet recorded, in order; the names applied now."""
    return _migrate(db, migrations)


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
