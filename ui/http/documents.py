"""Document routes of the HTTP API: list knowledge bases and documents, upload, delete."""

from __future__ import annotations

import functools
from dataclasses import asdict
from typing import Any, BinaryIO, cast

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive

from agent import Agent
from agent.uploads import (
    UploadRejected,
    check_count,
    check_kb_name,
    check_upload,
)
from retrieval.errors import KnowledgeBaseNotFoundError, RetrievalError
from ui.auth import Access
from ui.http.guard import principal
from ui.settings import ServerSettings

_MB = 1024 * 1024
_CLOSE = {"Connection": "close"}
# Room for the multipart framing around the files themselves.
_FRAMING_BYTES = 64 * 1024

_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                        "domain": {
                            "type": "string",
                            "enum": ["legal", "medical", "education", "general"],
                        },
                    },
                }
            }
        },
    }
}


def document_routes(
    agent: Agent, settings: ServerSettings, access: Access | None = None
) -> APIRouter:
    router = APIRouter(prefix="/knowledge_bases")
    access = access or Access(settings)

    def readable(request: Request, kb: str) -> None:
        """404 for a knowledge base the user may not read: the same answer as for one that does
        not exist, so names do not leak."""
        if not access.readable(principal(request), [kb]):
            raise HTTPException(404, f"no knowledge base named {_shown(kb)}")

    def manageable(request: Request, kb: str) -> None:
        readable(request, kb)
        if not principal(request).admin:
            raise HTTPException(403, "only administrators add or delete documents")

    @router.get("", summary="Knowledge bases with their document and chunk counts")
    def knowledge_bases(request: Request) -> dict[str, Any]:
        kbs = agent.knowledge_bases()
        shown = set(access.readable(principal(request), [kb.name for kb in kbs]))
        return {
            "data": [
                {k: getattr(kb, k) for k in ("name", "domain", "lang", "documents", "chunks")}
                for kb in kbs
                if kb.name in shown
            ]
        }

    @router.get("/{kb}/documents", summary="Documents of a knowledge base, with chunk counts")
    def documents(kb: str, request: Request) -> dict[str, Any]:
        readable(request, kb)
        try:
            docs = agent.documents(kb)
        except KnowledgeBaseNotFoundError as e:
            raise HTTPException(404, str(e)) from e
        return {"kb": kb, "data": [asdict(doc) for doc in docs]}

    @router.post(
        "/{kb}/documents",
        status_code=201,
        summary="Upload files; answered once they are stored and searchable",
        openapi_extra=_UPLOAD_SCHEMA,
    )
    async def upload(kb: str, request: Request) -> dict[str, Any]:
        try:
            check_kb_name(kb)  # before reading the body, let alone storing any of it
        except UploadRejected as e:
            raise HTTPException(e.status, str(e)) from e
        manageable(request, kb)
        # Refuse an oversized body from its header, before reading any of it; a body without
        # one (chunked) is counted as it arrives and cut off at the same limit.
        most = int(settings.max_upload_files * settings.max_upload_mb * _MB + _FRAMING_BYTES)
        too_large = (
            f"over the limit of {settings.max_upload_files} files of {settings.max_upload_mb:g} MB"
        )
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            raise HTTPException(400, "the Content-Length header is not a number") from None
        # Connection: close, so the server stops receiving the rest instead of draining it.
        if declared > most:
            raise HTTPException(
                413, f"upload of {declared / _MB:.1f} MB is {too_large}", headers=_CLOSE
            )
        bounded = Request(request.scope, _bounded_receive(request, most))
        try:
            form = await bounded.form(max_files=settings.max_upload_files, max_fields=16)
        except _BodyTooLarge:
            raise HTTPException(
                413, f"upload body is {too_large}; it was not read past the limit", headers=_CLOSE
            ) from None
        except (
            StarletteHTTPException
        ) as e:  # Starlette stops parsing at the first file past the limit
            status = 413 if "Too many files" in str(e.detail) else e.status_code
            raise HTTPException(
                status, f"{e.detail} (at most {settings.max_upload_files} files per upload)"
            ) from e
        try:
            files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
            domain = form.get("domain")
            try:
                check_count(len(files), settings.upload_limits)
                for f in files:
                    check_upload(f.filename or "", f.size, settings.upload_limits)
                result = await run_in_threadpool(
                    functools.partial(
                        agent.add_files,
                        limits=settings.upload_limits,
                        domain=domain if isinstance(domain, str) and domain else None,
                    ),
                    kb,
                    [(f.filename or "", cast(BinaryIO, f.file)) for f in files],
                )
            except UploadRejected as e:
                raise HTTPException(e.status, str(e)) from e
            except (ValueError, RetrievalError) as e:
                raise HTTPException(400, str(e)) from e
        finally:
            await form.close()
        return asdict(result)

    @router.delete(
        "/{kb}/documents/{doc_id:path}", summary="Delete a document; it leaves answers at once"
    )
    def delete(kb: str, doc_id: str, request: Request) -> dict[str, Any]:
        manageable(request, kb)
        try:
            deleted = agent.delete_document(kb, doc_id)
        except KnowledgeBaseNotFoundError as e:
            raise HTTPException(404, str(e)) from e
        if not deleted:
            raise HTTPException(404, f"no document {_shown(doc_id)} in knowledge base {_shown(kb)}")
        return {"kb": kb, "doc_id": doc_id, "deleted": True}

    return router


def _shown(value: str) -> str:
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _BodyTooLarge(Exception):
    """The request body went past its limit while it was being read."""


def _bounded_receive(request: Request, limit: int) -> Receive:
    """`request`'s ASGI receive, raising _BodyTooLarge once more than `limit` body bytes came."""
    received = 0
    receive = request.receive

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge
        return message

    return bounded
