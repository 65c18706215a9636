"""Copy every conversation of one dialogue store into another, empty one, ids kept (sessions,
turns, evidence, feedback): how `citewise migrate` moves dialogue.db onto PostgreSQL.

Ids are kept because they are held outside the store: a session id in a bookmarked chat URL or
an API client's `session_id`, a turn id in a rating not yet sent. The copy is one transaction on
the target, so an interrupted migration leaves the target as empty as it was.
"""

from __future__ import annotations

from typing import Any

from agent.state import DialogueStore
from agent.state_sql import DialogueStoreError, Tx

TABLES = ("sessions", "turns", "evidence", "feedback")
_WITH_IDS = ("turns", "feedback")  # identity / AUTOINCREMENT ids, given here explicitly


def copy_conversations(source: DialogueStore, target: DialogueStore) -> dict[str, int]:
    """Rows copied per table. DialogueStoreError if the target already holds conversations."""
    with source.sql.read() as tx:
        # Oldest first, so the target's tie-break order (rowid / seq) comes out the same.
        sessions = tx.rows(f"SELECT s.* FROM sessions s {source.sql.newest_first}")[::-1]
        rows = {
            "sessions": sessions,
            "turns": tx.rows("SELECT * FROM turns ORDER BY id"),
            "evidence": tx.rows("SELECT * FROM evidence ORDER BY turn_id, rank"),
            "feedback": tx.rows("SELECT * FROM feedback ORDER BY id"),
        }
    with target.sql.write() as tx:
        held = tx.one("SELECT COUNT(*) FROM sessions")
        if held and held[0]:
            raise DialogueStoreError(
                f"{target.where} already holds {held[0]} conversations; migrate into an empty "
                "database (nothing was copied)"
            )
        for table in TABLES:
            for row in rows[table]:
                _insert(tx, table, row, target.sql.keep_ids if table in _WITH_IDS else "")
            if table in _WITH_IDS and target.sql.renumber:
                tx.one(target.sql.renumber.format(table=table))
    return {table: len(rows[table]) for table in TABLES}


def _insert(tx: Tx, table: str, row: dict[str, Any], keep_ids: str) -> None:
    # Only the columns both schemas share: SQLite's rowid and PostgreSQL's seq stay each their own.
    row = {k: v for k, v in row.items() if k not in ("rowid", "seq")}
    marks = ", ".join("?" * len(row))
    tx.run(
        f"INSERT INTO {table} ({', '.join(row)}) {keep_ids} VALUES ({marks})", list(row.values())
    )
