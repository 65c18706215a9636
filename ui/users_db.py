"""Where the accounts live (ui/users.py): one SQLite file (`<data_dir>/users.db`, created only
when an account is first written), or the `database_url` PostgreSQL server, where every citewise
machine sees the same accounts. The SQL is ui/users.py's, written once with `?` placeholders; the
three tables are created if missing, on PostgreSQL as a named migration under the advisory lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from retrieval import postgres
from retrieval.postgres import is_database_url
from retrieval.sqlite import enable_wal

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY,
        "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        sha256 TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kb_readers (
        kb TEXT NOT NULL,
        "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        PRIMARY KEY (kb, "user")
    )""",
)


class UserError(ValueError):
    """A user-management request that cannot be done as asked (ui/users.py raises it too)."""


class AccountsDb:
    """One connection under one lock, to users.db or to the PostgreSQL server."""

    def __init__(self, location: Path | str) -> None:
        self.url = location if isinstance(location, str) and is_database_url(location) else ""
        self.path = Path() if self.url else Path(location)
        self._lock = threading.RLock()
        self._db: Any = None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def exists(self) -> bool:
        return bool(self.url) or self.path.exists()

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Any]:
        if self.url:
            with self._lock, self._pg() as db:
                yield db
            return
        with self._lock:
            if self._db is None:
                if not write and not self.path.exists():
                    # Reading a data directory without accounts creates nothing in it.
                    conn = sqlite3.connect(":memory:", check_same_thread=False)
                else:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
                    enable_wal(conn, 10)
                conn.execute("PRAGMA foreign_keys=ON")
                for sql in SCHEMA:
                    conn.execute(sql)
                conn.commit()
                if not write and not self.path.exists():
                    try:
                        yield conn
                    finally:
                        conn.close()
                    return
                self._db = conn
            if write:
                with self._db:  # one transaction, committed or rolled back
                    yield self._db
            else:
                yield self._db

    @contextmanager
    def _pg(self) -> Iterator[postgres.QmarkConnection]:
        """One transaction on the server; a connection it dropped is opened again first."""
        postgres.require_psycopg(UserError)
        import psycopg

        try:
            with ExitStack() as stack:
                for retry in (False, True):
                    if self._db is None or self._db.closed or self._db.broken:
                        self._db = postgres.connect(self.url, UserError)
                        postgres.migrate(self._db, [("users001_accounts", SCHEMA)])
                    try:
                        stack.enter_context(self._db.transaction())
                        break
                    except psycopg.OperationalError:
                        # Dropped since the last call (a restart, an idle timeout): BEGIN is
                        # the first to notice, and nothing was sent; once more.
                        if retry or not self._db.broken:
                            raise
                yield postgres.QmarkConnection(self._db)
        except psycopg.OperationalError as e:
            raise UserError(
                f"the accounts' PostgreSQL at {postgres.shown_url(self.url, UserError)} did not "
                f"answer ({postgres.first_line(e)}): check the server and try again"
            ) from None
