"""Uploaded files into a knowledge base: checked against limits, kept under
`<data_dir>/uploads/<kb>/` (outside what the web UI serves), and ingested before they are
acknowledged.

A domain operation, reached through `Agent.add_files` / `Agent.delete_document`; the checks are
plain functions so a front-end can refuse a request before reading its body, and the HTTP API
and the chat UI's upload tab enforce the same limits the same way.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from retrieval.kb import _NAME as KB_NAME
from retrieval.kb import Library
from retrieval.loaders import Skipped, load_paths
from retrieval.types import DOMAINS, Document

_MB = 1024 * 1024
# A stored file name in bytes: well under the 255 of common file systems, with room to spare.
MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/]")


# Types the knowledge-base loaders read (retrieval/loaders.py); anything else is refused at upload.
ALLOWED_UPLOAD_TYPES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl")


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may hold (the server's settings carry the configured values)."""

    max_upload_mb: float = 20.0  # per file
    max_upload_files: int = 20  # per request
    max_upload_chars: int = 1_000_000  # text extracted from one uploaded file
    allowed_types: tuple[str, ...] = ALLOWED_UPLOAD_TYPES


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


def upload_dir(data_dir: Path, kb: str) -> Path:
    """`<data_dir>/uploads/<kb>`, for a knowledge-base name that passed `check_kb_name`."""
    return data_dir / "uploads" / check_kb_name(kb)


def check_kb_name(kb: str) -> str:
    """`kb` if it is a knowledge-base name the library accepts (so also a safe folder name);
    else UploadRejected(400). Checked before anything touches the disk."""
    if not isinstance(kb, str) or not KB_NAME.fullmatch(kb):
        raise UploadRejected(
            400,
            f"knowledge base name {_shown(kb)} is not allowed: use letters, digits, '_' and '-', "
            "starting with a letter or digit, at most 128 characters",
        )
    return kb


def check_upload(name: str, size: int | None, limits: UploadLimits) -> str:
    """The file's safe base name, or UploadRejected (415 wrong type, 413 too large, 400 a name
    that cannot be stored: none, hidden, control characters, not UTF-8, over 200 bytes)."""
    base = Path((name or "").replace("\\", "/")).name
    if not base or base.startswith(".") or base.strip() != base:
        raise UploadRejected(400, f"upload {_shown(name)} has no usable file name")
    if _UNSAFE.search(base):
        raise UploadRejected(400, f"upload {_shown(name)}: control characters in the file name")
    try:
        encoded = base.encode("utf-8")
    except UnicodeEncodeError:
        raise UploadRejected(
            400, f"upload {_shown(name)}: the file name is not valid UTF-8"
        ) from None
    if len(encoded) > MAX_NAME_BYTES:
        raise UploadRejected(
            400,
            f"upload file name of {len(encoded)} bytes is too long; the limit is "
            f"{MAX_NAME_BYTES}: rename the file",
        )
    ext = Path(base).suffix.lower()
    if ext not in limits.allowed_types:
        raise UploadRejected(
            415,
            f"{base}: type {ext or '(none)'} is not accepted; upload one of "
            f"{' '.join(limits.allowed_types)}",
        )
    if size is not None and size > limits.max_upload_mb * _MB:
        raise UploadRejected(
            413, f"{base} is {size / _MB:.1f} MB; the limit is {limits.max_upload_mb:g} MB a file"
        )
    return base


def check_count(count: int, limits: UploadLimits) -> None:
    if count < 1:
        raise UploadRejected(400, "no files in the upload: send them as the form field 'files'")
    if count > limits.max_upload_files:
        raise UploadRejected(
            413,
            f"{count} files in one upload; the limit is {limits.max_upload_files}: "
            "send them in several uploads",
        )


def ingest_uploads(
    library: Library,
    data_dir: Path,
    kb: str,
    files: Sequence[tuple[str, BinaryIO]],
    limits: UploadLimits,
    domain: str | None = None,
) -> UploadResult:
    """Check, store and ingest (name, file) pairs; returns once they are searchable.

    Everything that can be checked without the files' content (the knowledge-base name, the
    count, the domain, each name and type) is checked before anything touches the disk. The
    files are written to a fresh temporary folder inside the knowledge base's upload folder,
    ingested from there, and only the ones that were ingested are moved into place (replacing
    an earlier upload of the same name); the temporary folder is always removed, so a request
    never deletes or overwrites a file it did not create, and a re-upload that cannot be read
    keeps the old stored copy. Files the loaders cannot read are listed in `skipped`; when
    nothing could be read the whole upload is rejected (422).
    """
    check_kb_name(kb)
    check_count(len(files), limits)
    if domain is not None and domain not in DOMAINS:
        raise UploadRejected(400, f"unknown domain {domain!r}; use one of {', '.join(DOMAINS)}")
    names = [check_upload(name, None, limits) for name, _ in files]
    if len(set(names)) != len(names):
        raise UploadRejected(400, "two uploaded files have the same name; rename one")
    if domain is None and kb in {info.name for info in library.list()}:
        domain = library.info(kb).domain
    folder = upload_dir(data_dir, kb)
    created = _make_dirs(folder)
    limit = int(limits.max_upload_mb * _MB)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
    moved: list[Path] = []
    try:
        staged = [
            _store(staging, name, src, limit) for name, (_, src) in zip(names, files, strict=True)
        ]
        docs: list[Document] = []
        skipped: list[dict[str, str]] = []
        for item in load_paths(
            staged, domain=domain, max_bytes=limit, max_chars=limits.max_upload_chars
        ):
            if isinstance(item, Skipped):
                skipped.append({"file": Path(item.path).name, "reason": item.reason})
            else:
                docs.append(_final_source(item, staging, folder))
        bad = {s["file"] for s in skipped}
        if not docs:
            reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped)
            raise UploadRejected(422, f"no file could be read: {reasons}")
        report = library.ingest_documents(kb, docs, progress=False)
        skipped += [{"file": Path(s.path).name, "reason": s.reason} for s in report.skipped]
        bad |= {Path(s.path).name for s in report.skipped}
        for path in staged:
            if path.name not in bad:
                os.replace(path, folder / path.name)
                moved.append(folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not moved:
            _remove_empty(created)
    stored = {doc.doc_id: doc for doc in library.documents(kb)}
    result_docs = [
        StoredDoc(p.name, stored[p.name].title, stored[p.name].n_chunks)
        for p in moved
        if p.name in stored
    ]
    return UploadResult(
        kb,
        report.added,
        report.replaced,
        report.unchanged,
        report.chunks_added,
        result_docs,
        skipped,
    )


def delete_upload(library: Library, data_dir: Path, kb: str, doc_id: str) -> bool:
    """Remove a document from the knowledge base (at once from answers) and its stored upload."""
    deleted = library.delete_doc(kb, doc_id)
    if deleted and KB_NAME.fullmatch(kb):
        name = Path(doc_id).name
        if name == doc_id and not name.startswith("."):
            (upload_dir(data_dir, kb) / name).unlink(missing_ok=True)
    return deleted


def _store(folder: Path, name: str, src: BinaryIO, limit: int) -> Path:
    """Copy to `folder/name` (a fresh staging folder), refusing more than `limit` bytes."""
    dest = folder / name
    with dest.open("xb") as out:
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
    return dest


def _final_source(doc: Document, staging: Path, folder: Path) -> Document:
    """The document as if read from where its file will be kept, not from the staging folder."""
    if doc.source.startswith(str(staging) + os.sep):
        return dataclasses.replace(doc, source=str(folder / Path(doc.source).name))
    return doc


def _make_dirs(folder: Path) -> list[Path]:
    """mkdir -p `folder`; the folders this call created, deepest first."""
    missing = []
    path = folder
    while not path.exists():
        missing.append(path)
        path = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: Sequence[Path]) -> None:
    for path in folders:
        try:
            path.rmdir()
        except OSError:
            return


def _shown(value: object) -> str:
    """A user-supplied value for an error message: quoted, escaped, cut to 80 characters."""
    text = ascii(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
