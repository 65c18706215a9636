"""Uploaded files into a knowledge base: checked against the server's limits, kept under
`<data_dir>/uploads/<kb>/` (outside what Gradio serves), and ingested before they are acknowledged.

Plain functions over file objects, so the HTTP API and the chat UI's upload tab enforce the same
limits the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from agent import Agent
from retrieval.types import DOMAINS
from ui.settings import ServerSettings

_MB = 1024 * 1024


class UploadRejected(ValueError):
    """An upload the server refuses; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StoredDoc:
    doc_id: str
    title: str
    chunks: int


@dataclass(frozen=True)
class UploadResult:
    kb: str
    added: int
    replaced: int
    unchanged: int
    chunks_added: int
    documents: list[StoredDoc]
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}


def upload_dir(agent: Agent, kb: str) -> Path:
    return agent.data_dir / "uploads" / kb


def check_upload(name: str, size: int | None, settings: ServerSettings) -> str:
    """The file's safe base name, or UploadRejected (415 wrong type, 413 too large, 400 no name)."""
    base = Path(name.replace("\\", "/")).name
    if not base or base.startswith("."):
        raise UploadRejected(400, f"upload {name!r} has no usable file name")
    ext = Path(base).suffix.lower()
    if ext not in settings.allowed_types:
        raise UploadRejected(
            415,
            f"{base}: type {ext or '(none)'} is not accepted; upload one of "
            f"{' '.join(settings.allowed_types)}",
        )
    if size is not None and size > settings.max_upload_mb * _MB:
        raise UploadRejected(
            413, f"{base} is {size / _MB:.1f} MB; the limit is {settings.max_upload_mb:g} MB a file"
        )
    return base


def check_count(count: int, settings: ServerSettings) -> None:
    if count < 1:
        raise UploadRejected(400, "no files in the upload: send them as the form field 'files'")
    if count > settings.max_upload_files:
        raise UploadRejected(
            413,
            f"{count} files in one upload; the limit is {settings.max_upload_files}: "
            "send them in several uploads",
        )


def ingest_uploads(
    agent: Agent,
    settings: ServerSettings,
    kb: str,
    files: Sequence[tuple[str, BinaryIO]],
    domain: str | None = None,
) -> UploadResult:
    """Check, store and ingest (name, file) pairs; returns once they are searchable.

    Files the loaders cannot read are removed again and listed in `skipped`; when nothing could
    be read the whole upload is rejected (422).
    """
    check_count(len(files), settings)
    if domain is not None and domain not in DOMAINS:
        raise UploadRejected(400, f"unknown domain {domain!r}; use one of {', '.join(DOMAINS)}")
    names = [check_upload(name, None, settings) for name, _ in files]
    if len(set(names)) != len(names):
        raise UploadRejected(400, "two uploaded files have the same name; rename one")
    folder = upload_dir(agent, kb)
    folder.mkdir(parents=True, exist_ok=True)
    limit = int(settings.max_upload_mb * _MB)
    paths: list[Path] = []
    try:
        for name, (_, src) in zip(names, files, strict=True):
            paths.append(_store(folder, name, src, limit))
    except Exception:
        _remove(paths)
        raise
    if domain is None and kb in {info.name for info in agent.library.list()}:
        domain = agent.library.info(kb).domain
    try:
        report = agent.library.ingest_paths(
            kb, paths, domain=domain, max_bytes=limit, progress=False
        )
    except Exception:
        _remove(paths)
        raise
    skipped = [{"file": Path(s.path).name, "reason": s.reason} for s in report.skipped]
    _remove([p for p in paths if p.name in {s["file"] for s in skipped}])
    if len(skipped) == len(paths):
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped)
        raise UploadRejected(422, f"no file could be read: {reasons}")
    agent.refresh_knowledge_bases()
    stored = {doc.doc_id: doc for doc in agent.library.documents(kb)}
    docs = [
        StoredDoc(p.name, stored[p.name].title, stored[p.name].n_chunks)
        for p in paths
        if p.name in stored
    ]
    return UploadResult(
        kb, report.added, report.replaced, report.unchanged, report.chunks_added, docs, skipped
    )


def delete_upload(agent: Agent, kb: str, doc_id: str) -> bool:
    """Remove a document from the knowledge base (at once from answers) and its stored upload."""
    deleted = agent.library.delete_doc(kb, doc_id)
    if deleted:
        stored = upload_dir(agent, kb) / Path(doc_id).name
        if Path(doc_id).name == doc_id:
            stored.unlink(missing_ok=True)
    return deleted


def _store(folder: Path, name: str, src: BinaryIO, limit: int) -> Path:
    """Copy to `folder/name` through a temporary file, refusing more than `limit` bytes."""
    dest = folder / name
    tmp = folder / f".{name}.part"
    try:
        with tmp.open("wb") as out:
            copied = 0
            while block := src.read(1024 * 1024):
                copied += len(block)
                if copied > limit:
                    raise UploadRejected(
                        413, f"{name} is larger than the limit of {limit / _MB:g} MB a file"
                    )
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
