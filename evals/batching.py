"""Batched generation for evaluation runs on a GPU: many turns in flight, one `generate_batch`.

Evaluation workers each run turns through their own Agent (the same path the UI runs); their
`stream` calls land here, wait up to `max_wait_s` for others, and go to the model as one padded
batch (agent/lm_local.py `generate_batch`). Each caller then receives its whole answer as one
piece, so time to first token equals total generation time under batching: evals/run.py marks
such runs `batched` and their latency figures are not comparable with streamed ones.
A batch holds requests of one `max_new_tokens` only, so no answer runs past its own budget; a
caller cancelled or out of time before its answer came gets none (the batch still finishes).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from agent.protocols import LM, CancelToken, GenerationStats, Messages


@dataclass
class _Request:
    messages: Messages
    max_new_tokens: int
    result: Future[str]


class BatchingLM:
    """An LM whose concurrent `stream` calls are answered by batched greedy generation."""

    def __init__(self, lm: LM, batch_size: int = 8, max_wait_s: float = 0.05) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.lm = lm
        self.name = lm.name
        self.batch_size = batch_size
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[_Request] = queue.Queue()
        threading.Thread(target=self._serve, name="lm-batcher", daemon=True).start()

    def _serve(self) -> None:
        held: list[_Request] = []  # requests of another budget than the batch being filled
        while True:
            batch = [held.pop(0) if held else self._queue.get()]
            batch += [r for r in held if r.max_new_tokens == batch[0].max_new_tokens]
            held = [r for r in held if r.max_new_tokens != batch[0].max_new_tokens]
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.batch_size:
                try:
                    request = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                same = request.max_new_tokens == batch[0].max_new_tokens
                (batch if same else held).append(request)
            try:
                budget = batch[0].max_new_tokens
                texts = self.lm.generate_batch([r.messages for r in batch], max_new_tokens=budget)
                for request, text in zip(batch, texts, strict=True):
                    request.result.set_result(text)
            except Exception as e:  # every waiting caller sees the failure
                for request in batch:
                    request.result.set_exception(e)

    def stream(
        self,
        messages: Messages,
        *,
        max_new_tokens: int = 512,
        time_limit_s: float | None = None,
        cancel: CancelToken | None = None,
        stats: list[GenerationStats] | None = None,
    ) -> Iterator[str]:
        started = time.monotonic()
        request = _Request(messages, max_new_tokens, Future())
        self._queue.put(request)
        text, stopped = self._wait(request, started, time_limit_s, cancel)
        if stats is not None:
            elapsed = time.monotonic() - started
            new = self.lm.count_tokens(text)
            if stopped == "eos" and new >= max_new_tokens:
                stopped = "max_tokens"
            prompt = sum(self.lm.count_tokens(m["content"]) for m in messages)
            stats.append(GenerationStats(prompt, new, elapsed, elapsed, stopped))
        if text:
            yield text

    @staticmethod
    def _wait(
        request: _Request, started: float, time_limit_s: float | None, cancel: CancelToken | None
    ) -> tuple[str, str]:
        """(answer, stop reason): '' when the caller was cancelled or ran out of time first."""
        deadline = None if time_limit_s is None else started + time_limit_s
        while True:
            if cancel is not None and cancel.cancelled:
                return "", "cancelled"
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return "", "time_limit"
            try:  # polled, so a cancel is seen within 50 ms
                return request.result.result(timeout=min(0.05, left or 0.05)), "eos"
            except TimeoutError:
                continue

    def generate_batch(
        self, conversations: Sequence[Messages], *, max_new_tokens: int = 512
    ) -> list[str]:
        return self.lm.generate_batch(conversations, max_new_tokens=max_new_tokens)

    def count_tokens(self, text: str) -> int:
        return self.lm.count_tokens(text)
