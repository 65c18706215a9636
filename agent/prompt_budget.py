"""Prompts that fit the model's window, whatever the history holds.

A turn's prompt is the system prompt (instructions and passages, already fitted to
`context_tokens` by agent/context.py), the recent history and the message; the answer needs
`max_new_tokens` more. Messages are capped in characters (agent/limits.py), but characters are
not tokens: 4,000 rare Chinese characters are 12,000 SmolLM2 tokens. `fit_prompt` drops the oldest
history messages until the prompt fits; when even the system prompt and the message alone do
not, `PromptTooLongError` says so before the model reads anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent.limits import MessageTooLongError
from agent.protocols import LM, LMError

# Tokens the chat template adds around each message (role markers, separators), an upper bound.
PER_MESSAGE_TOKENS = 8


class PromptTooLongError(LMError, MessageTooLongError):
    """The system prompt and the message alone are longer than the model can read."""


def window_of(lm: LM) -> int | None:
    """The model's context window in tokens, when it is known (local models)."""
    window = getattr(lm, "max_positions", None)
    return window if isinstance(window, int) and window > 0 else None


def fit_prompt(
    messages: Sequence[Mapping[str, str]], lm: LM, max_new_tokens: int
) -> list[dict[str, str]]:
    """`messages` without their oldest history messages, so that the prompt and
    `max_new_tokens` of answer fit the window of `lm`. The first message (when it is the
    system prompt) and the last (the message to answer) are always kept; an unknown window
    (a remote server) leaves the messages as they are."""
    out = [dict(m) for m in messages]
    window = window_of(lm)
    if window is None or not out:
        return out
    budget = window - max(1, max_new_tokens)
    sizes = [lm.count_tokens(m.get("content", "")) + PER_MESSAGE_TOKENS for m in out]
    first = 1 if out[0].get("role") == "system" and len(out) > 1 else 0
    while sum(sizes) > budget and len(out) - first > 1:
        del out[first], sizes[first]  # the oldest history message
        while len(out) - first > 1 and out[first].get("role") == "assistant":
            del out[first], sizes[first]  # history starts with a user message
    if sum(sizes) > budget:
        raise PromptTooLongError(
            f"the message and the passages take {sum(sizes)} tokens, but the model reads "
            f"{window} and needs {max_new_tokens} for the answer: shorten the message"
        )
    return out
