"""The seam under the dialogue store: a transaction that runs SQL, on SQLite (here) or PostgreSQL
(agent/state_pg.py). agent/state.py writes its SQL once, with `?` placeholders, for both.

SQLite: one connection guarded by a lock. SQLite runs one writer at a time anyway, reads take
milliseconds, and a single connection has nothing per thread to leak or close. Other processes
(the CLI beside the UI) are handled by WAL, `BEGIN IMMEDIATE` and the busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlite_utils import Database

from agent.migrations import connect
from retrieval.sqlite import immediate

BUSY_TIMEOUT_S = 10.0


class DialogueStoreError(Exception):
    """The dialogue store cannot be opened or used as asked."""


class Tx(Protocol):
    """One transaction: SQL with `?` placeholders."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""
        ...


class SQLBackend(Protocol):
    """Where the dialogue store keeps its tables; safe to share across threads."""

    where: str  # the file or server, as error messages name it
    # Most recently active first; ties (same timestamp) newest session first.
    newest_first: str
    # Copying whole tables (agent/state_copy.py): what lets an INSERT give the ids, and the SQL
    # that moves a table's id counter past them ("{table}" filled in; "" when none is needed).
    keep_ids: str
    renumber: str

    def read(self) -> AbstractContextManager[Tx]:
        """One read-only snapshot: turns and their evidence agree while others write."""
        ...

    def write(self) -> AbstractContextManager[Tx]:
        """One write transaction: all of it commits, or none of it."""
        ...

    def close(self) -> None: ...


class _SQLiteTx:
    def __init__(self, db: Database) -> None:
        self.db = db

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.db.execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.db.execute(sql, params).rowcount)


class SQLiteBackend:
    """dialogue.db: WAL with synchronous=FULL (retrieval/sqlite.py). A chat turn takes seconds,
    so one fsync per turn costs nothing noticeable and a turn reported as saved survives a power
    cut, where NORMAL would only survive a crash of the process."""

    newest_first = "ORDER BY s.updated_at DESC, s.rowid DESC"
    keep_ids = ""
    renumber = ""  # AUTOINCREMENT follows the largest id inserted

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self.db = connect(self.path, BUSY_TIMEOUT_S)
        except sqlite3.DatabaseError as e:
            raise DialogueStoreError(_open_error(self.path, e)) from e

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._lock:
            self.db.execute("BEGIN")
            try:
                yield _SQLiteTx(self.db)
            finally:
                self.db.rollback()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._lock, immediate(self.db) as db:
            yield _SQLiteTx(db)

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _open_error(path: Path, e: sqlite3.DatabaseError) -> str:
    if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
        return (
            f"dialogue store {path} is locked by another process (waited {BUSY_TIMEOUT_S:.0f} s); "
            "close other citewise processes using this data directory and try again"
        )
    return (
        f"dialogue store {path} cannot be opened ({e}); if the file is damaged, move it aside "
        "and citewise will start a new, empty one"
    )
