"""Batched generation for evaluation runs on a GPU: many turns in flight, one `generate_batch`.

Evaluation workers each run turns through their own Agent (the same path the UI runs); their
`stream` calls land here, wait up to `max_wait_s` for others, and go to the model as one padded
batch (agent/lm_local.py `generate_batch`). Each caller then receives its whole answer as one
piece, so time to first token equals total generation time under batching: evals/run.py marks
such runs `batched` and their latency figures are not comparable with streamed ones.
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
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                budget = max(r.max_new_tokens for r in batch)
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
        text = request.result.result()
        if stats is not None:
            elapsed = time.monotonic() - started
            new = self.lm.count_tokens(text)
            stopped = "max_tokens" if new >= max_new_tokens else "eos"
            prompt = sum(self.lm.count_tokens(m["content"]) for m in messages)
            stats.append(GenerationStats(prompt, new, elapsed, elapsed, stopped))
        yield text

    def generate_batch(
        self, conversations: Sequence[Messages], *, max_new_tokens: int = 512
    ) -> list[str]:
        return self.lm.generate_batch(conversations, max_new_tokens=max_new_tokens)

    def count_tokens(self, text: str) -> int:
        return self.lm.count_tokens(text)
