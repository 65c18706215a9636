"""The right to change the knowledge bases of one data directory: threads through a lock, processes
through a file lock (filelock) beside the indexes; re-entrant within a thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class WriteLock:
    """Held from before a SQLite transaction until the index files (or collection) reflect it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._file: Any = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                from filelock import FileLock  # flock on POSIX, msvcrt locking on Windows

                self._file = FileLock(self.path)
                self._file.acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._file.release()
                    self._file = None
