"""The HTTP API's request bodies and the JSON it answers with (OpenAI chat-completions shapes)."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.types import Reply


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatRequest(BaseModel):
    """OpenAI's chat-completions request. Sampling parameters are accepted and ignored: answers
    are greedy and grounded, and their length is the server's `max_new_tokens`."""

    model_config = ConfigDict(extra="allow")

    model: str = Field("auto", description='a knowledge base name, or "auto" (the router picks)')
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    session_id: str | None = Field(
        None,
        description="continue this stored session (then only the last user message is read); "
        "without it the earlier messages seed a new session",
    )


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def reply_fields(reply: Reply) -> dict[str, Any]:
    """What a citewise answer adds to an OpenAI response: its session, checks and evidence."""
    data = reply.to_json()
    return {
        "session_id": reply.session_id,
        "turn_id": reply.turn_id,
        "answer": reply.answer,
        "citations": data["citations"],
        "route": data["route"],
        "rewritten_query": reply.rewritten_query,
        "refused": reply.refused,
        "interrupted": reply.interrupted,
        "notices": data["notices"],
        "sources": data["sources"],
    }


def _finish_reason(reply: Reply) -> str:
    return "length" if reply.interrupted else "stop"


def _usage(reply: Reply) -> dict[str, int]:
    tokens = int(reply.timings.get("new_tokens", 0))
    return {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}


def completion(reply: Reply, model: str) -> dict[str, Any]:
    """A whole `chat.completion` object for a finished turn."""
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.answer},
                "finish_reason": _finish_reason(reply),
            }
        ],
        "usage": _usage(reply),
        **reply_fields(reply),
    }


def chunk(
    cid: str, model: str, delta: dict[str, str], finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One `chat.completion.chunk` of a stream."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def final_chunk(cid: str, model: str, reply: Reply) -> dict[str, Any]:
    """The stream's last chunk: the finish reason and everything `reply_fields` adds. Its `answer`
    is the checked answer the citations number; the streamed text was the model's draft."""
    return chunk(cid, model, {}, _finish_reason(reply), usage=_usage(reply), **reply_fields(reply))


def error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, which its clients turn into exceptions with this message."""
    return {"error": {"message": message, "type": kind, "code": code}}
