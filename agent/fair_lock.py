"""A lock handed to its waiters in the order they asked, which a waiter may leave while waiting.

The local model answers one turn at a time. With a plain `threading.Lock` a new request can take
the model before one that has waited for several answers, so under load some chat users wait far
longer than others. Here the model goes to the oldest waiter; a waiter whose user pressed Stop or
left gives up its place without ever running.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class FairLock:
    """First come, first served; `acquire` may give up when `give_up()` turns true."""

    def __init__(self, poll_s: float = 0.05) -> None:
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._held = False
        self._poll_s = poll_s

    def acquire(self, give_up: Callable[[], bool] | None = None) -> bool:
        """Wait for this caller's turn; False (and no longer queued) when `give_up()` says so."""
        me = object()
        with self._cond:
            self._waiting.append(me)
            while self._held or self._waiting[0] is not me:
                if give_up is not None and give_up():
                    self._waiting.remove(me)
                    self._cond.notify_all()  # the next in line may be at the head now
                    return False
                self._cond.wait(self._poll_s if give_up is not None else None)
            self._waiting.popleft()
            self._held = True
            return True

    def release(self) -> None:
        with self._cond:
            if not self._held:
                raise RuntimeError("release() of a FairLock that is not held")
            self._held = False
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        """How many callers wait for the lock now."""
        with self._cond:
            return len(self._waiting)

    @contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
