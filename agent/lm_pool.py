"""A pool of OpenAI-compatible model servers behind the one LM seam (vLLM, TGI, llama.cpp, Ollama).

Each call goes to the least-busy healthy server (fewest calls in flight; ties in turn). A server
that fails before the first piece of an answer (refused connection, HTTP error, no reply within
its timeout) is marked down for `retry_after_s` and the call moves on to the next one, so a user
sees nothing of it. A server that fails mid-answer cannot be retried without showing the user a
second, different answer, so that call fails with LMError (the dialogue manager stores the turn as
interrupted, with what was shown) and the server is marked down; the next calls go elsewhere.
When every server is down the call fails at once with one message naming them all: a turn never
waits on a pool with nobody in it. Down servers are tried again after `retry_after_s`, and when
all are down the oldest failure is tried first.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from agent.lm_http import OpenAICompatibleLM
from agent.protocols import CancelToken, GenerationStats, LMError, Messages


@dataclass
class _Member:
    lm: OpenAICompatibleLM
    in_flight: int = 0
    down_until: float = 0.0  # monotonic time before which it is not tried
    last_error: str = ""


class LMPool:
    """Several OpenAI-compatible endpoints as one LM (module docstring)."""

    def __init__(self, endpoints: Sequence[OpenAICompatibleLM], retry_after_s: float = 30.0):
        if len(endpoints) < 1:
            raise ValueError("a model pool needs at least one endpoint")
        if retry_after_s < 0:
            raise ValueError(f"retry_after_s must be 0 or more, not {retry_after_s}")
        self.members = [_Member(lm) for lm in endpoints]
        self.retry_after_s = retry_after_s
        self.name = "pool:" + ",".join(m.lm.name for m in self.members)
        self._lock = threading.Lock()
        self._turn = itertools.count()

    def count_tokens(self, text: str) -> int:
        return self.members[0].lm.count_tokens(text)

    def _order(self) -> list[_Member]:
        """Healthy members, least busy first (ties in turn); else the oldest failure."""
        now, turn = time.monotonic(), next(self._turn)
        n = len(self.members)
        with self._lock:
            ranked = sorted(range(n), key=lambda i: (self.members[i].in_flight, (i - turn) % n))
            healthy = [self.members[i] for i in ranked if self.members[i].down_until <= now]
            down = sorted(
                (m for m in self.members if m.down_until > now), key=lambda m: m.down_until
            )
        return healthy or down[:1]

    def _failed(self, member: _Member, error: Exception) -> None:
        with self._lock:
            member.down_until = time.monotonic() + self.retry_after_s
            member.last_error = str(error)

    def _all_failed(self, errors: list[str]) -> LMError:
        tried = "; ".join(errors) or "no endpoint could be tried"
        return LMError(
            f"every model server in the pool failed ({tried}); check that they are running"
        )

    def stream(
        self,
        messages: Messages,
        *,
        max_new_tokens: int = 512,
        time_limit_s: float | None = None,
        cancel: CancelToken | None = None,
        stats: list[GenerationStats] | None = None,
    ) -> Iterator[str]:
        errors: list[str] = []
        recorded = len(stats) if stats is not None else 0
        for member in self._order():
            with self._lock:
                member.in_flight += 1
            shown = False
            pieces = None
            try:
                pieces = member.lm.stream(
                    messages,
                    max_new_tokens=max_new_tokens,
                    time_limit_s=time_limit_s,
                    cancel=cancel,
                    stats=stats,
                )
                for piece in pieces:
                    shown = True
                    yield piece
                with self._lock:
                    member.down_until = 0.0  # it answered: healthy again
                return
            except LMError as e:
                self._failed(member, e)
                if shown:
                    raise  # a second answer after part of the first would mislead
                if stats is not None:
                    del stats[recorded:]  # that server's record; the next one's replaces it
                errors.append(str(e))
            finally:
                if pieces is not None:
                    pieces.close()  # also when our caller stopped reading
                with self._lock:
                    member.in_flight -= 1
        raise self._all_failed(errors)

    def generate_batch(
        self, conversations: Sequence[Messages], *, max_new_tokens: int = 512
    ) -> list[str]:
        def one(messages: Messages) -> str:
            errors: list[str] = []
            for member in self._order():
                with self._lock:
                    member.in_flight += 1
                try:
                    return member.lm.generate_batch([messages], max_new_tokens=max_new_tokens)[0]
                except LMError as e:
                    self._failed(member, e)
                    errors.append(str(e))
                finally:
                    with self._lock:
                        member.in_flight -= 1
            raise self._all_failed(errors)

        workers = sum(m.lm.max_workers for m in self.members)
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, conversations))
