"""Dialogue state: sessions, their turns with the evidence each answer saw, and user feedback.

By default one SQLite file (`<data_dir>/dialogue.db`, schema in agent/migrations.py, browsable
with sqlite-utils or Datasette); with `database_url = "postgresql://..."` the same tables on a
PostgreSQL server several citewise processes share (agent/state_pg.py). The SQL here is written
once for both (agent/state_sql.py is the seam). A turn and its evidence rows commit in one
transaction, so a crash keeps a turn whole or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.limits import check_text
from agent.state_rows import (
    EvidenceRecord,
    FeedbackRecord,
    SessionInfo,
    TurnRecord,
    evidence_row,
    storable,
    turn_of,
    turn_row,
)
from agent.state_sql import DialogueStoreError, SQLBackend, SQLiteBackend, Tx
from retrieval.sqlite import utc_now

__all__ = [
    "DialogueStore",
    "DialogueStoreError",
    "EvidenceRecord",
    "FeedbackRecord",
    "SessionInfo",
    "SessionNotFoundError",
    "TurnNotFoundError",
    "TurnRecord",
]

MAX_TOMBSTONES = 10_000  # deleted session ids a store remembers (see append_turn)


class SessionNotFoundError(DialogueStoreError, LookupError):
    """A session id that is not in the store."""


class TurnNotFoundError(DialogueStoreError, LookupError):
    """A turn id that is not in the store (its session may have been deleted)."""


class DialogueStore:
    """Sessions, turns, evidence and feedback; safe to share across threads.

    `location` is dialogue.db's path, or a "postgresql://user:password@host:5432/db" URL.
    """

    def __init__(self, location: Path | str) -> None:
        self._sql: SQLBackend
        if isinstance(location, str) and "://" in location:
            from agent.state_pg import PostgresBackend
            from retrieval.postgres import is_database_url

            if not is_database_url(location):
                raise DialogueStoreError(
                    f"database_url {location.split('://')[0]}://... is not a PostgreSQL URL: "
                    "write postgresql://user:password@host:5432/database, or leave it empty for "
                    "dialogue.db in the data directory"
                )
            self._sql = PostgresBackend(location)
        else:
            self._sql = SQLiteBackend(Path(location))
        self.where = self._sql.where
        # Ids this store deleted, oldest first: append_turn never brings one back (see there).
        self._deleted: dict[str, None] = {}

    def close(self) -> None:
        self._sql.close()

    @property
    def sql(self) -> SQLBackend:
        """The tables' backend, for tools that copy them whole (agent/state_copy.py)."""
        return self._sql

    def __enter__(self) -> DialogueStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Ownership: every method that takes a session or turn id also takes `owner`. None (the
    # command line, a single-user server) sees every session; a user name sees only that user's,
    # and another user's id is answered exactly as an unknown one, so ids do not leak.
    # A session stored with owner "" (without accounts: the command line, a single-user server,
    # sessions from before accounts existed) belongs to no account: user names are never empty
    # (ui/users.py), so with accounts only `owner=None`, the command line, lists or opens it.

    def create_session(self, title: str = "", owner: str = "") -> str:
        """Start an empty session belonging to `owner` and return its id (uuid4 hex)."""
        session_id = uuid.uuid4().hex
        now = utc_now()
        title, owner = (
            check_text(str(title), "the session title"),
            check_text(str(owner), "the owner"),
        )
        row = {"id": session_id, "title": title, "created_at": now, "updated_at": now}
        with self._sql.write() as tx:
            _insert(tx, "sessions", {**row, "owner": owner})
        return session_id

    def sessions(self, owner: str | None = None) -> list[SessionInfo]:
        """Every session (of `owner`, when given), most recently active first."""
        if owner is not None and not storable(owner):
            return []
        where, params = ("", []) if owner is None else ("WHERE s.owner = ?", [owner])
        with self._sql.read() as tx:
            rows = tx.rows(_SESSIONS_SQL.format(where=where) + self._sql.newest_first, params)
        return [SessionInfo(**row) for row in rows]

    def session(self, session_id: str, owner: str | None = None) -> SessionInfo:
        """The session, or SessionNotFoundError (also for another owner's session)."""
        rows = []
        if storable(session_id) and (owner is None or storable(owner)):
            with self._sql.read() as tx:
                rows = tx.rows(_SESSIONS_SQL.format(where="WHERE s.id = ?"), [session_id])
        if not rows or (owner is not None and rows[0]["owner"] != owner):
            raise SessionNotFoundError(_no_session(session_id))
        return SessionInfo(**rows[0])

    def rename_session(self, session_id: str, title: str, owner: str | None = None) -> None:
        self.session(session_id, owner)
        title = check_text(str(title), "the session title")
        with self._sql.write() as tx:
            if tx.run("UPDATE sessions SET title = ? WHERE id = ?", [title, session_id]) == 0:
                raise SessionNotFoundError(_no_session(session_id))

    def delete_session(self, session_id: str, owner: str | None = None) -> bool:
        """Remove the session with its turns, evidence and feedback; False if it did not exist
        (or is not `owner`'s)."""
        try:
            self.session(session_id, owner)
        except SessionNotFoundError:
            return False
        with self._sql.write() as tx:
            # Turns, evidence and feedback go by ON DELETE CASCADE (SQLite: foreign_keys is on).
            deleted = tx.run("DELETE FROM sessions WHERE id = ?", [session_id]) > 0
            if deleted:
                self._deleted[session_id] = None
                while len(self._deleted) > MAX_TOMBSTONES:
                    del self._deleted[next(iter(self._deleted))]
            return deleted

    def history(
        self, session_id: str, limit: int | None = None, owner: str | None = None
    ) -> list[TurnRecord]:
        """The session's last `limit` turns (all when None), oldest first; [] for an unknown id
        (or another owner's)."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
        if not storable(session_id):
            return []
        if owner is not None:
            try:
                self.session(session_id, owner)
            except SessionNotFoundError:
                return []
        ids_sql = "SELECT id FROM turns WHERE session_id = ?"
        params: list[object] = [session_id]
        if limit is not None:
            ids_sql += " ORDER BY idx DESC LIMIT ?"
            params.append(limit)
        with self._sql.read() as tx:
            turns = _load_turns(tx, ids_sql, params)
        return sorted(turns.values(), key=lambda t: t.idx)

    def append_turn(self, session_id: str, turn: TurnRecord) -> int:
        """Store `turn` and its evidence in one transaction, creating the session if missing.

        Returns the new turn's id. The turn number is the session's next one (0 for the first).

        A session this store deleted is not created again: a turn whose conversation was deleted
        while it was being answered raises SessionNotFoundError and is not stored. Created here,
        it would come back without its owner (this method is not told it): with accounts, a
        conversation its user deleted, kept on disk and belonging to no account.
        """
        if not isinstance(session_id, str) or not session_id.strip():
            raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
        check_text(session_id, "session_id")
        row = turn_row(turn)
        evidence = [evidence_row(rank, ev) for rank, ev in enumerate(turn.evidence)]
        now = utc_now()
        with self._sql.write() as tx:
            if session_id in self._deleted and not _exists(tx, session_id):
                raise SessionNotFoundError(
                    f"dialogue session {_shown(session_id)} was deleted (while this turn was "
                    "being answered?), so the turn is not stored; start a new conversation"
                )
            tx.run(
                "INSERT INTO sessions (id, title, created_at, updated_at) VALUES (?, '', ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                [session_id, now, now],
            )
            found = tx.one(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM turns WHERE session_id = ?", [session_id]
            )
            assert found is not None  # an aggregate always yields one row
            row.update(
                session_id=session_id, idx=found[0], evidence_count=len(evidence), created_at=now
            )
            turn_id = int(_insert(tx, "turns", row, returning="id"))
            for ev in evidence:
                _insert(tx, "evidence", {"turn_id": turn_id, **ev})
        return turn_id

    def add_feedback(
        self, turn_id: int, rating: int, comment: str = "", owner: str | None = None
    ) -> int:
        """Record a +1 / -1 rating of a turn (of `owner`'s sessions, when given); return the
        feedback id. Ratings accumulate."""
        if isinstance(rating, bool) or rating not in (1, -1):
            raise ValueError(f"rating must be 1 (helpful) or -1 (not helpful), got {rating!r}")
        if isinstance(turn_id, bool) or not isinstance(turn_id, int):
            raise TurnNotFoundError(f"no turn with id {turn_id!r}")
        comment = check_text(str(comment), "the comment")
        with self._sql.write() as tx:
            found = tx.one(
                "SELECT s.owner FROM turns t JOIN sessions s ON s.id = t.session_id WHERE t.id = ?",
                [turn_id],
            )
            if not found or (owner is not None and found[0] != owner):
                raise TurnNotFoundError(
                    f"no turn with id {turn_id!r}; its session may have been deleted, "
                    "so reload the session before rating"
                )
            row = {"turn_id": turn_id, "rating": rating, "comment": comment}
            return int(_insert(tx, "feedback", {**row, "created_at": utc_now()}, returning="id"))

    def feedback(self, owner: str | None = None) -> list[tuple[FeedbackRecord, TurnRecord]]:
        """Every rating (of `owner`'s sessions, when given) with the turn it rates (evidence
        included), oldest first, for export."""
        ids_sql = (
            "SELECT f.turn_id FROM feedback f JOIN turns t ON t.id = f.turn_id "
            "JOIN sessions s ON s.id = t.session_id WHERE s.owner = COALESCE(?, s.owner)"
        )
        with self._sql.read() as tx:
            turns = _load_turns(tx, ids_sql, [owner])
            rows = [
                row
                for row in tx.rows("SELECT * FROM feedback ORDER BY id")
                if row["turn_id"] in turns
            ]
        return [(FeedbackRecord(**row), turns[row["turn_id"]]) for row in rows]


_SESSIONS_SQL = """
SELECT s.id, s.title, s.created_at, s.updated_at, COUNT(t.id) AS turns, s.owner
FROM sessions s LEFT JOIN turns t ON t.session_id = s.id {where}
GROUP BY s.id
"""


def _exists(tx: Tx, session_id: str) -> bool:
    return tx.one("SELECT 1 FROM sessions WHERE id = ?", [session_id]) is not None


def _shown(session_id: object) -> str:
    shown = ascii(session_id)  # escaped: the id may hold anything a client sent
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _no_session(session_id: object) -> str:
    return (
        f"no dialogue session with id {_shown(session_id)}; it may have been deleted. "
        "List sessions with DialogueStore.sessions() or start one with create_session()"
    )


def _insert(tx: Tx, table: str, row: dict[str, Any], returning: str = "") -> Any:
    """INSERT `row` (its keys are our own column names); the `returning` column's value."""
    sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
    if not returning:
        return tx.run(sql, list(row.values()))
    found = tx.one(f"{sql} RETURNING {returning}", list(row.values()))
    assert found is not None  # RETURNING always yields the inserted row
    return found[0]


def _load_turns(tx: Tx, ids_sql: str, params: Sequence[Any]) -> dict[int, TurnRecord]:
    """The turns whose ids `ids_sql` selects, with their evidence, keyed by turn id."""
    evidence: dict[int, list[EvidenceRecord]] = {}
    for ev in tx.rows(
        f"SELECT * FROM evidence WHERE turn_id IN ({ids_sql}) ORDER BY turn_id, rank", params
    ):
        turn_id = ev.pop("turn_id")
        del ev["rank"]  # the position in the list, ordered by the query
        evidence.setdefault(turn_id, []).append(EvidenceRecord(**ev))
    return {
        r["id"]: turn_of(r, tuple(evidence.get(r["id"], ())))
        for r in tx.rows(f"SELECT * FROM turns WHERE id IN ({ids_sql})", params)
    }
