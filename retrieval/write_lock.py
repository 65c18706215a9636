"""The right to change the knowledge bases: threads through a lock; processes through a file lock
(filelock) beside the indexes, or, when the knowledge bases live on PostgreSQL and so are shared
by several machines, through a PostgreSQL advisory lock. Re-entrant within a thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KB_WRITE_LOCK = 0x6B62777269  # "kbwri": the advisory lock knowledge-base writers take


class WriteLock:
    """Held from before a store transaction until the index files (or collection) reflect it."""

    def __init__(self, path: Path | None = None, *, database_url: str = "") -> None:
        """A file lock at `path`, or with `database_url` an advisory lock on that server."""
        self.path = path
        self.database_url = database_url
        self._lock = threading.RLock()
        self._depth = 0
        self._held: Any = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._held = self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    held, self._held = self._held, None
                    self._release(held)

    def _acquire(self) -> Any:
        if self.database_url:
            from retrieval import postgres
            from retrieval.errors import RetrievalError

            # A session-level lock on a connection of its own: it outlives the store's
            # transactions, and the server lets it go if this process dies holding it.
            conn = postgres.connect(self.database_url, RetrievalError)
            conn.execute("SELECT pg_advisory_lock(%s)", [KB_WRITE_LOCK])
            return conn
        from filelock import FileLock  # flock on POSIX, msvcrt locking on Windows

        assert self.path is not None
        lock = FileLock(self.path)
        lock.acquire()
        return lock

    def _release(self, held: Any) -> None:
        if self.database_url:
            held.close()  # closing the session releases its advisory lock
        else:
            held.release()
