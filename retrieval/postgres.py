"""The one PostgreSQL layer of every citewise store (psycopg 3), as retrieval/sqlite.py is for
SQLite: the URL check, connections that fail with one line naming the setting, named migrations
applied once under an advisory lock, and the `?` placeholders both stores' SQL is written with.

Used by the knowledge-base store (retrieval/store_pg.py), the conversation store
(agent/state_pg.py) and the accounts (ui/users.py) when `database_url` is a PostgreSQL URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retrieval.sqlite import utc_now

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK = 0x636974657769  # "citewi": the advisory lock every migration run takes

# A released migration is never edited: a schema change is a new entry at the end.
PgMigrations = Sequence[tuple[str, Sequence[str]]]


def is_database_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def require_psycopg(error: type[Exception]) -> None:
    """Raise `error` with the install line when the optional dependency is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise error(
            "database_url is a PostgreSQL URL but psycopg is not installed: "
            "pip install 'citewise[postgres]'"
        ) from None


def shown_url(url: str, error: type[Exception]) -> str:
    """`url` without its password, for messages and logs."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception as e:  # psycopg.ProgrammingError: not a connection string at all
        raise error(
            f"database_url is not a PostgreSQL URL ({first_line(e)}); write it as "
            "postgresql://user:password@host:5432/database"
        ) from None
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def connect(url: str, error: type[Exception]) -> psycopg.Connection[Any]:
    """An autocommit connection, or `error` naming database_url and what to check."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    # libpq waits forever for an unreachable host unless told otherwise; the URL's own wins.
    full = url
    if "connect_timeout" not in conninfo_to_dict(url):
        full = make_conninfo(url, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        return psycopg.connect(full, autocommit=True)
    except psycopg.Error as e:
        raise error(
            f"database_url {shown_url(url, error)}: cannot connect ({first_line(e)}); check that "
            "the server is running and reachable, and the user name, password and database name"
        ) from None


def migrate(conn: psycopg.Connection[Any], migrations: PgMigrations) -> list[str]:
    """Apply the migrations not yet recorded, in one transaction; the names applied now.

    The stores share one `_migrations` table (their migration names differ by prefix), and every
    process starting at once waits for the advisory lock, so each migration runs exactly once."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations "
            "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        for name, statements in migrations:
            if name in done:
                continue
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO _migrations VALUES (%s, %s)", [name, utc_now()])
            applied.append(name)
    return applied


class QmarkConnection:
    """A psycopg connection that runs SQL written for sqlite3 (`?` placeholders), so a store
    keeps one copy of its SQL for both engines."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(pg(sql), list(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(pg(sql), rows)


def pg(sql: str) -> str:
    """SQL written with sqlite3's `?` placeholders (and no literal `?` or `%`) for psycopg."""
    return sql.replace("?", "%s")


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
