"""The per-call state of one streamed answer: its stop checks, timings and text pieces, and the
request checks every in-process LM makes the same way (agent/lm_local.py, agent/lm_gguf.py).

LocalLM shares one model between callers; everything here belongs to a single `stream` call and
is shared only by the reading thread and that call's worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from agent.protocols import CancelToken, GenerationStats, LMError, Messages


def check_messages(messages: Messages) -> None:
    """ValueError unless every message has a chat role and string content."""
    for m in messages:
        if not isinstance(m.get("content"), str) or m.get("role") not in (
            "system",
            "user",
            "assistant",
        ):
            raise ValueError(
                "each message needs a role (system, user or assistant) and string "
                f"content; got {m!r}"
            )


def token_budget(
    prompt_tokens: int, max_new_tokens: int, max_positions: int | None, name: str
) -> int:
    """New tokens a call may generate: `max_new_tokens`, less what the context window lacks."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if max_positions is None:
        return max_new_tokens
    if prompt_tokens >= max_positions:
        raise LMError(
            f"the prompt has {prompt_tokens} tokens but {name} reads at most "
            f"{max_positions}; send fewer or shorter passages, or a shorter history"
        )
    return min(max_new_tokens, max_positions - prompt_tokens)


class StreamRun:
    """The mutable record of one stream call, shared by the reading thread and its worker."""

    def __init__(self, started: float, time_limit_s: float | None, cancel: CancelToken | None):
        self.started = started
        self.deadline = None if time_limit_s is None else started + time_limit_s
        self.cancel = cancel
        self.abandoned = threading.Event()
        self.prompt_tokens = self.new_tokens = 0
        self.first_token: float | None = None
        self.finished: float | None = None
        self.stopped = "max_tokens"  # unless eos or one of the checks below says otherwise

    def check(self) -> bool:
        """True (and `stopped` set) when generation must stop now."""
        if self.abandoned.is_set() or (self.cancel is not None and self.cancel.cancelled):
            self.stopped = "cancelled"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped = "time_limit"
        else:
            return False
        return True

    def stats(self) -> GenerationStats:
        end = self.finished or time.monotonic()
        first = self.first_token or end
        return GenerationStats(
            self.prompt_tokens,
            self.new_tokens,
            first - self.started,
            end - self.started,
            self.stopped,
        )


class IncrementalText:
    """Token ids in, text pieces out, never splitting a multi-byte character across pieces.

    Each step decodes only a short window (the previous piece's tokens and the new ones), so the
    cost per token stays constant, and the window's context keeps leading spaces right.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = self.read = 0  # ids[prefix:read] were decoded into the last piece

    def add(self, ids: Sequence[int]) -> str:
        self.ids.extend(ids)
        before = self._decode(self.ids[self.prefix : self.read])
        after = self._decode(self.ids[self.prefix :])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""  # nothing new, or a character whose remaining bytes are still to come
        self.prefix, self.read = self.read, len(self.ids)
        return after[len(before) :]

    def flush(self) -> str:
        before = self._decode(self.ids[self.prefix : self.read])
        after = self._decode(self.ids[self.prefix :])
        self.prefix = self.read = len(self.ids)
        # A character cut by the token budget can never complete: drop its replacement mark.
        return after[len(before) :].rstrip("\ufffd")

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
