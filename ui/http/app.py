"""The HTTP API under /v1: OpenAI-compatible chat completions, models, and the document routes.

Turns run on worker threads, so the event loop keeps serving other clients while the shared
model generates (agent/lm_local.py lets one generation use it at a time; the rest wait there).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import Agent
from agent.limits import MessageTooLongError, check_text
from agent.protocols import CancelToken, LMError
from agent.state import DialogueStoreError, SessionNotFoundError
from agent.types import Done, Event, Reply, Token
from retrieval.errors import RetrievalError
from ui.auth import Access
from ui.http.documents import document_routes
from ui.http.guard import api_guard, principal
from ui.http.schemas import ChatRequest, chunk, completion, completion_id, error_body, final_chunk
from ui.settings import ServerSettings

AUTO = "auto"
T = TypeVar("T")
_END = object()


def api_router(agent: Agent, settings: ServerSettings, access: Access | None = None) -> APIRouter:
    """Every /v1 route, behind the rate limit and (when set) the bearer token."""
    access = access or Access(settings)
    router = APIRouter(prefix="/v1", dependencies=[Depends(api_guard(access))])
    turns = _Turns(settings.concurrency_limit, settings.max_queue)

    @router.get("/models", summary="Knowledge bases to ask, and auto")
    def models(request: Request) -> dict[str, Any]:
        data = [{"id": AUTO, "object": "model", "created": 0, "owned_by": "citewise"}]
        readable = set(
            access.readable(principal(request), [kb.name for kb in agent.knowledge_bases()])
        )
        for kb in agent.knowledge_bases():
            if kb.name not in readable:
                continue
            data.append(
                {
                    "id": kb.name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "citewise",
                    "domain": kb.domain,
                    "lang": kb.lang,
                    "documents": kb.documents,
                    "chunks": kb.chunks,
                }
            )
        return {"object": "list", "data": data}

    @router.post(
        "/chat/completions",
        summary="Answer the last user message, with citations",
        response_model=None,
    )
    async def chat_completions(
        body: ChatRequest,
        request: Request,
        x_session_id: str | None = Header(None, description="same as the body's session_id"),
    ) -> dict[str, Any] | StreamingResponse:
        user = principal(request)
        all_kbs = [kb.name for kb in agent.knowledge_bases()]
        readable = access.readable(user, all_kbs)
        message, kbs = _check(readable, settings, body)
        restricted = None if len(readable) == len(all_kbs) else readable
        session_id = body.session_id or x_session_id
        history = [{"role": m.role, "content": m.text} for m in body.messages[:-1]]
        history = [m for m in history if m["role"] in ("user", "assistant")]
        cancel = CancelToken()

        def start() -> tuple[str, Iterator[Event]]:
            if session_id:
                # An unknown id, or another user's, is a 404, not a new session.
                agent.session(session_id, user.owner)
                sid = session_id
            else:
                sid = agent.new_session(
                    message.strip()[:60], history=history, owner=user.name or ""
                )
            events = agent.stream(
                message, sid, kbs=kbs, cancel=cancel, owner=user.owner, readable=restricted
            )
            return sid, events

        await turns.enter()
        streaming = False  # once streaming, the stream releases its place when it ends
        try:
            sid, events = await turns.run(start)
            if body.stream:
                streaming = True
                return StreamingResponse(
                    _sse(turns, events, cancel, body.model, sid),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Session-Id": sid},
                )
            reply = await turns.run(_finish, events)
        except SessionNotFoundError as e:
            raise HTTPException(404, str(e)) from e
        except MessageTooLongError as e:
            raise HTTPException(413, str(e)) from e
        except ValueError as e:  # what the agent checks before it stores or generates anything
            raise HTTPException(400, str(e)) from e
        except (RetrievalError, DialogueStoreError, LMError) as e:
            # A store or model server that stopped answering (Milvus, PostgreSQL, the LM): the
            # message names it; 503 says to try again, not that the request was wrong.
            raise HTTPException(503, str(e)) from e
        finally:
            if not streaming:
                turns.leave()
        return completion(reply, body.model)

    router.include_router(document_routes(agent, settings, access))
    return router


def _check(names: list[str], settings: ServerSettings, body: ChatRequest) -> tuple[str, list[str]]:
    """(the message to answer, the knowledge bases to search) or a 4xx naming what is wrong."""
    last = body.messages[-1]
    if last.role != "user" or not last.text.strip():
        raise HTTPException(400, "the last message must be a non-empty user message")
    try:
        for m in body.messages:
            check_text(m.text, "a message")
        for value in (body.session_id, body.model):
            if value is not None:
                check_text(value, "session_id and model")
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    if len(body.messages) > settings.max_history_messages:
        raise HTTPException(
            413,
            f"{len(body.messages)} messages; the limit is {settings.max_history_messages}: "
            "send the recent ones, or continue a stored session with session_id",
        )
    for m in body.messages:
        if len(m.text) > settings.max_message_chars:
            raise HTTPException(
                413,
                f"a message has {len(m.text)} characters; the limit is "
                f"{settings.max_message_chars}: shorten it or split the question",
            )
    if body.model == AUTO:
        return last.text, []
    if body.model not in names:
        raise HTTPException(
            404,
            f"no knowledge base named {_shown(body.model)}; use one of {[AUTO, *names]} "
            "(GET /v1/models lists them)",
        )
    return last.text, [body.model]


def _shown(value: str) -> str:
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _finish(events: Iterator[Event]) -> Reply:
    for event in events:
        if isinstance(event, Done):
            return event.reply
    raise RuntimeError("the turn ended without a reply")  # DialogueManager.turn always ends Done


class _Turns:
    """Answers in progress: `slots` run at once, the rest wait in arrival order, past `limit` in
    progress a request gets 503. The model's own lock (agent/fair_lock.py) serves callers in
    arrival order too; the wait is also kept here so a request past `limit` is refused before it
    takes a thread. Turns run on threads of their own, so a crowd of them cannot take the
    threads the rest of the API runs on."""

    def __init__(self, slots: int, limit: int) -> None:
        self.limit = limit
        self.running = 0  # changed only on the event loop's thread
        self._semaphore = anyio.Semaphore(slots)
        self._limiter = anyio.CapacityLimiter(limit)

    async def enter(self) -> None:
        if self.running >= self.limit:
            raise HTTPException(
                503,
                f"{self.running} answers are in progress, the most this server queues; "
                "retry shortly",
                headers={"Retry-After": "5"},
            )
        self.running += 1
        try:
            await self._semaphore.acquire()
        except BaseException:  # the client left while waiting
            self.running -= 1
            raise

    def leave(self) -> None:
        self._semaphore.release()
        self.running -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)


async def _sse(
    turns: _Turns, events: Iterator[Event], cancel: CancelToken, model: str, session_id: str
) -> AsyncIterator[str]:
    """Server-sent events: a role chunk, one chunk per token, the final chunk, then [DONE]."""
    cid = completion_id()
    try:
        yield _data(chunk(cid, model, {"role": "assistant"}, session_id=session_id))
        while (event := await turns.run(next, events, _END)) is not _END:
            if isinstance(event, Token):
                yield _data(chunk(cid, model, {"content": event.text}))
            elif isinstance(event, Done):
                yield _data(final_chunk(cid, model, event.reply))
        yield "data: [DONE]\n\n"
    except Exception as e:  # the response has started: report the failure in the stream
        yield _data(error_body(f"the answer failed: {e}", "server_error"))
    finally:
        # The client may have gone: stop the model and store the turn as interrupted, shielded
        # because a disconnected response's task is being cancelled.
        cancel.cancel()
        with anyio.CancelScope(shield=True):
            await turns.run(_close, events)
        turns.leave()


def _close(events: Iterator[Event]) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()


def _data(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _safe(text: str, most: int = 2000) -> str:
    """An error message that can always be sent: lone surrogates escaped, cut to `most`."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= most else text[: most - 3] + "..."


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    kinds = {
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }
    return JSONResponse(
        error_body(_safe(str(exc.detail)), kinds.get(exc.status_code, "invalid_request_error")),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    where = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
    )
    return JSONResponse(
        error_body(_safe(f"invalid request: {where}"), "invalid_request_error"), 400
    )


# For FastAPI(exception_handlers=...): errors in OpenAI's shape, which its clients read.
ERROR_HANDLERS: dict[
    int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]
] = {
    StarletteHTTPException: _http_error,
    RequestValidationError: _validation_error,
}
