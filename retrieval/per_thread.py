"""One database connection per thread, for the knowledge-base stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

C = TypeVar("C")


class PerThread(Generic[C]):
    """One connection per thread, opened on first use (and again once `usable` says it is not):
    WAL lets readers run beside the one writer, and a server's threads never share a cursor.
    Connections of threads that have finished are closed when the next one is opened."""

    def __init__(
        self,
        open_: Callable[[], C],
        close: Callable[[C], object],
        usable: Callable[[C], bool] = lambda _: True,
    ) -> None:
        self._open, self._close, self._usable = open_, close, usable
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, C]] = []
        self._lock = threading.Lock()

    def get(self) -> C:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._usable(conn):
            return cast(C, conn)
        conn = self._local.conn = self._open()
        with self._lock:
            for thread, old in self._all:
                if not thread.is_alive():
                    self._close(old)
            self._all = [(t, c) for t, c in self._all if t.is_alive()]
            self._all.append((threading.current_thread(), conn))
        return conn

    def __len__(self) -> int:
        """Connections held open now."""
        return len(self._all)

    def close(self) -> None:
        with self._lock:
            for _, conn in self._all:
                self._close(conn)
            self._all.clear()
        self._local = threading.local()
