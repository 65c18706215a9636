"""Turn the files and folders a user names into Documents; anything unusable becomes a Skipped.

One bad file never stops a batch: each reader raises UnsupportedInputError with a one-line reason,
and `load_paths` turns it into a `Skipped` so the caller can show the reason and carry on.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import UnsupportedInputError
from retrieval.lang import detect_lang
from retrieval.readers import READERS, normalize
from retrieval.types import DOMAINS, LANGS, Document

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Extracted text per file (per corpus line for .jsonl). A compressed format expands: an 86 KB
# .docx can hold 14 million characters, minutes of CPU embedding. 2 million is a long book.
DEFAULT_MAX_CHARS = 2_000_000
SUPPORTED = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl")
_MB = 1024 * 1024


@dataclass(frozen=True)
class Skipped:
    """A file (or corpus line) that was not loaded, and why, in words a person can act on."""

    path: str
    reason: str


def load_paths(
    paths: Sequence[str | os.PathLike[str]],
    *,
    domain: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Iterator[Document | Skipped]:
    """Yield a Document per readable file (per line for .jsonl corpora) and a Skipped per failure.

    `max_bytes` bounds a file's size on disk, `max_chars` the text extracted from it (a file
    whose text is longer is skipped with a reason naming the limit).

    Folders are walked in sorted order, hidden entries left out. A file's id is its path relative
    to the folder named (its name when the file itself was named), so re-ingesting a changed file
    replaces the old version. `domain` applies to every file and to corpus lines that name none.
    """
    if isinstance(paths, str | os.PathLike):
        raise TypeError(f"paths must be a list of paths, not one path: pass [{str(paths)!r}]")
    if domain is not None and domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}: use one of {', '.join(DOMAINS)}")
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    return _load_all([Path(p).expanduser() for p in paths], domain, max_bytes, max_chars)


def _load_all(
    roots: list[Path], domain: str | None, max_bytes: int, max_chars: int
) -> Iterator[Document | Skipped]:
    for root in roots:
        if root.is_dir():
            for item in _walk(root):
                if isinstance(item, Skipped):
                    yield item
                else:
                    yield from _load_file(
                        item, item.relative_to(root).as_posix(), domain, max_bytes, max_chars
                    )
        elif root.exists():
            yield from _load_file(root, root.name, domain, max_bytes, max_chars)
        else:
            yield Skipped(str(root), "no such file or folder (check the path)")


def _walk(folder: Path) -> Iterator[Path | Skipped]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        yield Skipped(str(folder), _os_reason(e))
        return
    for entry in entries:
        # Dot files are tool state (.git, .DS_Store); "~$" files are Office lock files.
        if entry.name.startswith((".", "~$")):
            continue
        path = Path(entry.path)
        if entry.is_symlink() and entry.is_dir():
            # Following folder links can loop forever; the user can name the target instead.
            yield Skipped(str(path), "link to a folder is not followed (name the folder itself)")
        elif entry.is_dir():
            yield from _walk(path)
        else:
            yield path


def _load_file(
    path: Path, doc_id: str, domain: str | None, max_bytes: int, max_chars: int
) -> Iterator[Document | Skipped]:
    ext = path.suffix.lower()
    if ext not in SUPPORTED:
        kind = ext or "(no extension)"
        yield Skipped(str(path), f"unsupported type {kind} (supported: {' '.join(SUPPORTED)})")
        return
    try:
        _check_size(path, max_bytes)
        if ext == ".jsonl":
            items: list[Document | Skipped] = _read_jsonl(path, domain, max_chars)
        else:
            text, title = READERS[ext](path, max_chars)
            check_chars(len(text), max_chars)
            text = normalize(text)
            if not text:
                raise UnsupportedInputError("empty file (only whitespace)")
            doc = Document(
                id=doc_id,
                text=text,
                title=title.strip() or path.stem,
                domain=domain or "general",
                lang=detect_lang(text),
                source=str(path),
            )
            items = [doc]
    except UnsupportedInputError as e:
        items = [Skipped(str(path), str(e))]
    except OSError as e:
        items = [Skipped(str(path), _os_reason(e))]
    except Exception as e:
        # PDF and Word parsers raise many exception types on damaged files; one file must not
        # end the batch, so any of them becomes a reason.
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        items = [Skipped(str(path), f"cannot parse this {ext} file (damaged?): {detail}")]
    yield from items


def _check_size(path: Path, max_bytes: int) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise UnsupportedInputError(
            f"{size / _MB:.1f} MB is over the {max_bytes / _MB:g} MB limit (raise --max-mb)"
        )
    if size == 0:
        raise UnsupportedInputError("empty file")


def check_chars(n_chars: int, max_chars: int) -> None:
    """UnsupportedInputError when `n_chars` of extracted text is over `max_chars`."""
    if n_chars > max_chars:
        raise UnsupportedInputError(
            f"its text is over {max_chars:,} characters, the limit for one file "
            "(split the document, or raise max_chars)"
        )


def _os_reason(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "cannot read: permission denied"
    if isinstance(e, FileNotFoundError):
        return "cannot read: file not found (moved, or a broken link?)"
    return f"cannot read: {(e.strerror or str(e)).lower()}"


def _read_jsonl(path: Path, domain: str | None, max_chars: int) -> list[Document | Skipped]:
    """One Document per corpus line (format: shared/evalsets/README.md); bad lines are Skipped."""
    items: list[Document | Skipped] = []
    first_line: dict[str, int] = {}
    lines = path.read_bytes().removeprefix(codecs.BOM_UTF8).split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            doc = _corpus_line(raw, path, domain)
            check_chars(len(doc.text), max_chars)
            if doc.id in first_line:
                raise UnsupportedInputError(
                    f"duplicate id {doc.id!r} (first on line {first_line[doc.id]})"
                )
            first_line[doc.id] = number
            items.append(doc)
        except UnsupportedInputError as e:
            items.append(Skipped(str(path), f"corpus line {number}: {e}"))
    if not items:
        raise UnsupportedInputError("empty file (no corpus lines)")
    return items


def _corpus_line(raw: bytes, path: Path, domain: str | None) -> Document:
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError as e:
        raise UnsupportedInputError("not UTF-8 (save the file as UTF-8)") from e
    except json.JSONDecodeError as e:
        raise UnsupportedInputError(f"not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(obj, dict):
        raise UnsupportedInputError("expected a JSON object with 'id' and 'text'")
    for name in ("id", "text"):
        if name not in obj:
            raise UnsupportedInputError(f"missing field {name!r}")
    doc_id = obj["id"]
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or str(doc_id) == "":
        raise UnsupportedInputError("field 'id' must be a non-empty string")
    fields = {}
    for name in ("text", "title", "domain", "lang", "group", "source"):
        value = obj.get(name, "")
        if not isinstance(value, str):
            raise UnsupportedInputError(f"field {name!r} must be a string")
        fields[name] = value
    if not fields["text"].strip():
        raise UnsupportedInputError("field 'text' is empty")
    line_domain = fields["domain"] or domain or "general"
    if line_domain not in DOMAINS:
        raise UnsupportedInputError(f"domain {line_domain!r} is not one of {', '.join(DOMAINS)}")
    if fields["lang"] and fields["lang"] not in LANGS:
        raise UnsupportedInputError(f"lang {fields['lang']!r} is not one of {', '.join(LANGS)}")
    # Corpus text is kept byte for byte: answer spans and citations point into it.
    return Document(
        id=str(doc_id),
        text=fields["text"],
        title=fields["title"],
        domain=line_domain,
        lang=fields["lang"] or detect_lang(fields["text"]),
        group=fields["group"],
        source=fields["source"] or str(path),
    )
