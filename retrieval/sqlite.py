"""The one SQLite layer of every citewise store: connections, write transactions, migrations.

Both stores (retrieval/store.py: knowledge bases; agent/state.py: conversations) open files the
same way: WAL, with its switch retried while another process opens the file; synchronous=FULL;
foreign keys on. Their schemas are ordered migrations (as simonw/llm): a migration is a function
of the database, registered with `Migrations.register` and never edited once released; a schema
change is a new function at the end. Each runs in its own `BEGIN IMMEDIATE` transaction together
with its row in `_migrations`, so a crash mid-migration leaves it wholly unapplied and two
processes opening a fresh store at once cannot both apply it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

Migration = Callable[["Database"], None]


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with microseconds; such strings sort in time order (and tell
    apart a knowledge base dropped and made again under its name)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Migrations(list[Migration]):
    """One store's schema: its migrations in the order they were registered."""

    def register(self, fn: Migration) -> Migration:
        """Register `fn` as the next migration; its function name is its permanent identity."""
        if any(m.__name__ == fn.__name__ for m in self):
            raise ValueError(f"a migration named {fn.__name__!r} exists already; pick a new name")
        self.append(fn)
        return fn


def connect(path: Path, busy_timeout_s: float) -> Database:
    """Open `path` in WAL mode with synchronous=FULL and foreign keys on.

    The connection may be used from any thread; the caller serializes access to it.
    """
    # Imported here: sqlite_utils pulls in pandas when installed (most of a second).
    from sqlite_utils import Database

    conn = sqlite3.connect(path, timeout=busy_timeout_s, check_same_thread=False)
    try:
        enable_wal(conn, busy_timeout_s)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")  # per connection; ON DELETE CASCADE needs it
    except BaseException:
        conn.close()
        raise
    return Database(conn)


def enable_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
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


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes the write lock up front, committed or rolled back whole.

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


def migrate(db: Database, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations not yet recorded, in order; return the names applied now."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    columns = [row[1] for row in db.execute("PRAGMA table_info(_migrations)").fetchall()]
    if "at" in columns:  # knowledge-base stores made before this layer named the column `at`
        with immediate(db):
            if "at" in [r[1] for r in db.execute("PRAGMA table_info(_migrations)").fetchall()]:
                db.execute("ALTER TABLE _migrations RENAME COLUMN at TO applied_at")
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
