"""Document routes of the HTTP API: list knowledge bases and documents, upload, delete."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, BinaryIO, cast

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import Agent
from retrieval.errors import KnowledgeBaseNotFoundError, RetrievalError
from ui.api_uploads import UploadRejected, check_count, check_upload, delete_upload, ingest_uploads
from ui.settings import ServerSettings

_MB = 1024 * 1024
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


def document_routes(agent: Agent, settings: ServerSettings) -> APIRouter:
    router = APIRouter(prefix="/knowledge_bases")

    @router.get("", summary="Knowledge bases with their document and chunk counts")
    def knowledge_bases() -> dict[str, Any]:
        return {
            "data": [
                {k: getattr(kb, k) for k in ("name", "domain", "lang", "documents", "chunks")}
                for kb in agent.library.list()
            ]
        }

    @router.get("/{kb}/documents", summary="Documents of a knowledge base, with chunk counts")
    def documents(kb: str) -> dict[str, Any]:
        try:
            docs = agent.library.documents(kb)
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
        # Refuse an oversized body from its header, before reading any of it.
        declared = int(request.headers.get("content-length") or 0)
        most = settings.max_upload_files * settings.max_upload_mb * _MB + _FRAMING_BYTES
        if declared > most:
            raise HTTPException(
                413,
                f"upload of {declared / _MB:.1f} MB is over the limit of "
                f"{settings.max_upload_files} files of {settings.max_upload_mb:g} MB",
            )
        try:
            form = await request.form(max_files=settings.max_upload_files, max_fields=16)
        except (
            StarletteHTTPException
        ) as e:  # Starlette stops parsing at the first file past the limit
            raise HTTPException(
                413, f"{e.detail} (at most {settings.max_upload_files} files per upload)"
            ) from e
        try:
            files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
            domain = form.get("domain")
            try:
                check_count(len(files), settings)
                for f in files:
                    check_upload(f.filename or "", f.size, settings)
                result = await run_in_threadpool(
                    ingest_uploads,
                    agent,
                    settings,
                    kb,
                    [(f.filename or "", cast(BinaryIO, f.file)) for f in files],
                    domain if isinstance(domain, str) and domain else None,
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
    def delete(kb: str, doc_id: str) -> dict[str, Any]:
        try:
            deleted = delete_upload(agent, kb, doc_id)
        except KnowledgeBaseNotFoundError as e:
            raise HTTPException(404, str(e)) from e
        if not deleted:
            raise HTTPException(404, f"no document {doc_id!r} in knowledge base {kb!r}")
        return {"kb": kb, "doc_id": doc_id, "deleted": True}

    return router
