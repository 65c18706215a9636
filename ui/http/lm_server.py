"""`citewise serve-lm`: one local model as an OpenAI-compatible server, for a model pool.

A raw model endpoint (no retrieval, no citations: that is `citewise ui`'s /v1), speaking the
subset citewise's own client uses: GET /v1/models, POST /v1/chat/completions with `stream`
true (server-sent events ending in `data: [DONE]`) or false. Several citewise processes can then
share one model process, or spread over several (`lm = ["http://a:8100/v1", "http://b:8100/v1"]`);
a team with vLLM, TGI, llama.cpp or Ollama points the same setting at those instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from agent.protocols import LM, CancelToken, GenerationStats

_FINISH = {"eos": "stop", "max_tokens": "length", "time_limit": "length", "cancelled": "stop"}


class _Message(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str = Field(max_length=200_000)


class _Request(BaseModel):
    model: str = ""
    messages: list[_Message] = Field(min_length=1, max_length=200)
    max_tokens: int = Field(default=256, ge=1, le=8192)
    stream: bool = False


def lm_app(lm: LM, model_id: str, time_limit_s: float | None = 300.0) -> FastAPI:
    """The FastAPI app serving `lm` under the name `model_id`."""
    app = FastAPI(title="citewise model server", docs_url=None, redoc_url=None)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_id, "object": "model"}]}

    @app.post("/v1/chat/completions", response_model=None)
    def chat(body: _Request) -> dict[str, Any] | StreamingResponse:
        if body.model and body.model != model_id:
            raise HTTPException(404, f"this server serves {model_id!r}, not {body.model!r}")
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        if body.stream:
            return StreamingResponse(
                _events(lm, messages, body.max_tokens, model_id, time_limit_s),
                media_type="text/event-stream",
            )
        text = "".join(lm.stream(messages, max_new_tokens=body.max_tokens))
        return {
            "object": "chat.completion",
            "model": model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        }

    return app


def _events(
    lm: LM,
    messages: list[dict[str, str]],
    max_tokens: int,
    model_id: str,
    time_limit_s: float | None,
) -> Iterator[str]:
    """The answer as chat.completion.chunk events; a client that leaves stops the generation
    (the response closes this generator, which closes the model's stream)."""
    stats: list[GenerationStats] = []
    pieces = lm.stream(
        messages,
        max_new_tokens=max_tokens,
        time_limit_s=time_limit_s,
        cancel=CancelToken(),
        stats=stats,
    )
    created = int(time.time())

    def event(payload: dict[str, Any]) -> str:
        chunk = {"object": "chat.completion.chunk", "created": created, "model": model_id}
        return f"data: {json.dumps(chunk | payload, ensure_ascii=False)}\n\n"

    try:
        for piece in pieces:
            yield event({"choices": [{"index": 0, "delta": {"content": piece}}]})
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
    done = stats[0] if stats else None
    finish = _FINISH.get(done.stopped, "stop") if done else "stop"
    yield event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if done:
        usage = {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.new_tokens}
        yield event({"choices": [], "usage": usage})
    yield "data: [DONE]\n\n"
