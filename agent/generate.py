"""Stream the model's answer into a turn: what the user sees, when the model started, and a stop
as soon as the output starts reproducing the prompt's rules (agent/sanitize.py `copies`)."""

from __future__ import annotations

from collections.abc import Iterator

from agent.config import TurnConfig
from agent.prompt_budget import fit_prompt
from agent.protocols import LM, CancelToken, GenerationStats
from agent.sanitize import copies, shingles
from agent.turn_state import TurnState, elapsed_ms, shown
from agent.types import Event


def stream_answer(
    lm: LM,
    config: TurnConfig,
    state: TurnState,
    messages: list[dict[str, str]],
    secret: str,
    cancel: CancelToken | None,
    timings: dict[str, float],
    t0: float,
) -> Iterator[Event]:
    """Stream the LM's answer to `messages`; stop early when it starts reproducing `secret`."""
    stats: list[GenerationStats] = []
    secret_shingles = shingles(secret)
    pieces = lm.stream(
        fit_prompt(messages, lm, config.max_new_tokens),  # never past the window
        max_new_tokens=config.max_new_tokens,
        time_limit_s=config.time_limit_s,
        cancel=cancel,
        stats=stats,
    )
    try:
        for piece in pieces:
            if not state.streamed:
                timings["ttft_ms"] = elapsed_ms(t0)
            yield shown(state, piece)
            if copies(state.streamed[-400:], secret_shingles):
                break
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # stops a generation the caller abandoned, instead of at garbage collection
        if stats:
            timings["new_tokens"] = stats[0].new_tokens
            timings["lm_ttft_ms"] = round(stats[0].ttft_s * 1000, 1)  # the model's prefill
            state.truncated = stats[0].stopped in ("max_tokens", "time_limit")
        state.interrupted = cancel is not None and cancel.cancelled
