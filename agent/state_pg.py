"""Conversations on PostgreSQL (`database_url = "postgresql://..."`): the dialogue store's tables
on one server that several citewise processes, on several machines, share. psycopg 3.

The schema mirrors dialogue.db's (agent/migrations.py) and is migrated the same way: named
migrations, applied once, recorded in `_migrations`. Every process starting at once takes an
advisory lock first, so each migration runs exactly once. One connection per store, guarded by a
lock (as the SQLite store); a connection the server dropped is opened again at the next call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from agent.state_sql import DialogueStoreError, Tx
from retrieval import postgres
from retrieval.postgres import pg

if TYPE_CHECKING:
    import psycopg

# A released migration is never edited: a schema change is a new entry at the end.
MIGRATIONS: postgres.PgMigrations = [
    (
        "m001_dialogue",
        (
            # seq orders sessions updated in the same microsecond, as SQLite's rowid does.
            """CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                seq BIGINT GENERATED ALWAYS AS IDENTITY,
                title TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                owner TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX idx_sessions_owner ON sessions (owner)",
            # Identity ids are never handed out twice: a stale tab rating a deleted turn fails.
            """CREATE TABLE turns (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
                created_at TEXT NOT NULL,
                UNIQUE (session_id, idx)
            )""",
            """CREATE TABLE evidence (
                turn_id BIGINT NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
                rank INTEGER NOT NULL,
                kb TEXT NOT NULL,
                doc_id TEXT NOT NULL,
                chunk_id BIGINT NOT NULL,
                score DOUBLE PRECISION NOT NULL,
                title TEXT NOT NULL DEFAULT '',
                text TEXT NOT NULL,
                PRIMARY KEY (turn_id, rank)
            )""",
            """CREATE TABLE feedback (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                turn_id BIGINT NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
                rating INTEGER NOT NULL CHECK (rating IN (1, -1)),
                comment TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX idx_feedback_turn_id ON feedback (turn_id)",
        ),
    ),
]


class _PgTx:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(pg(sql), params)
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.conn.execute(pg(sql), params).fetchone()
        return None if row is None else tuple(row)

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.conn.execute(pg(sql), params).rowcount)


class PostgresBackend:
    """The dialogue store's tables on a PostgreSQL server (agent/state_sql.SQLBackend)."""

    newest_first = "ORDER BY s.updated_at DESC, s.seq DESC"
    keep_ids = "OVERRIDING SYSTEM VALUE"
    renumber = (
        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) "
        "FROM {table}"
    )

    def __init__(self, url: str) -> None:
        postgres.require_psycopg(DialogueStoreError)
        self.where = postgres.shown_url(url, DialogueStoreError)
        self._url = url
        self._lock = threading.RLock()
        self._conn = self._connect()
        with self._lock, self._errors():
            postgres.migrate(self._conn, MIGRATIONS)

    def _connect(self) -> psycopg.Connection[Any]:
        return postgres.connect(self._url, DialogueStoreError)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError as e:
            raise DialogueStoreError(
                f"PostgreSQL at {self.where} did not answer ({postgres.first_line(e)}); nothing "
                "of this request was saved: check the server and try again"
            ) from None

    def _ready(self) -> psycopg.Connection[Any]:
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def read(self) -> AbstractContextManager[Tx]:
        return self._transaction(read_only=True)

    def write(self) -> AbstractContextManager[Tx]:
        # READ COMMITTED: append_turn's upsert locks the session row until commit, so two
        # processes appending to one session take turns and number them contiguously.
        return self._transaction(read_only=False)

    @contextmanager
    def _transaction(self, read_only: bool) -> Iterator[Tx]:
        import psycopg
        from psycopg import IsolationLevel

        with self._lock, self._errors(), ExitStack() as stack:
            for retry in (False, True):
                conn = self._ready()
                # Applied by the BEGIN that transaction() sends: reads see one snapshot.
                conn.isolation_level = IsolationLevel.REPEATABLE_READ if read_only else None
                conn.read_only = read_only or None
                try:
                    stack.enter_context(conn.transaction())
                    break
                except psycopg.OperationalError:
                    # The server dropped the connection since the last call (a restart, an idle
                    # timeout): BEGIN is the first to notice, and nothing was sent; once more.
                    if retry or not conn.broken:
                        raise
            yield _PgTx(conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
