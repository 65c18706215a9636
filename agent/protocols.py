"""The LM seam: what a language-model backend gives the dialogue manager, and what it reports."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# [{"role": "system" | "user" | "assistant", "content": "..."}, ...]
Messages = Sequence[Mapping[str, str]]

STOP_REASONS = ("eos", "max_tokens", "time_limit", "cancelled")


class LMError(RuntimeError):
    """A backend could not produce an answer; the message says what failed and what to check."""


class CancelToken:
    """A flag one thread raises and a generating thread polls between decoding steps.

    >>> token = CancelToken(); token.cancel(); token.cancelled
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class GenerationStats:
    """How one `stream` call went; appended once at its end, also when it stopped early."""

    prompt_tokens: int
    new_tokens: int
    ttft_s: float  # call start to the first new token (prefill and any wait for the model included)
    total_s: float  # call start to the end of generation
    stopped: str  # one of STOP_REASONS


class LM(Protocol):
    """A chat model: streams an answer to a list of messages."""

    name: str  # stable identity for logs and evaluation reports, e.g. "bundled:smollm2"

    def stream(
        self,
        messages: Messages,
        *,
        max_new_tokens: int = 512,
        time_limit_s: float | None = None,
        cancel: CancelToken | None = None,
        stats: list[GenerationStats] | None = None,
    ) -> Iterator[str]:
        """Yield the answer as text pieces, greedily decoded.

        Stops at the end of the model's turn, after `max_new_tokens`, when `time_limit_s` has passed
        since the call, when `cancel` is raised, or when the caller stops iterating (closing the
        generator stops the generation too). When `stats` is given, one GenerationStats is appended.
        """
        ...

    def generate_batch(
        self, conversations: Sequence[Messages], *, max_new_tokens: int = 512
    ) -> list[str]:
        """Greedy answers to many conversations, in order; for evaluation runs."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's context (prompt budgets use this)."""
        ...
