"""Extract the text and title of one file of each supported single-document type.

Each reader takes a path and the most characters of text it may extract, and returns (text,
title), or raises UnsupportedInputError with the one-line reason a person sees. A reader may stop
early once it has extracted more than `max_chars` (the caller refuses such a text, naming the
limit); formats that expand (PDF, .docx) do, so a small file cannot cost minutes of work. Folder
walking, size limits and corpus .jsonl files are in loaders.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from pathlib import Path

from retrieval.errors import UnsupportedInputError

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _decode(data: bytes, ext: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 for legacy Chinese files."""
    binary = UnsupportedInputError(f"binary data in a {ext} file (is it really text?)")
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        elif b"\x00" in data:
            raise binary
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = data.decode("gb18030")
    except UnicodeDecodeError as e:
        raise UnsupportedInputError(
            f"this {ext} file is neither UTF-8 nor GB18030 text (save it as UTF-8)"
        ) from e
    sample = text[:8192]
    if sample and len(_CONTROL.findall(sample)) > 0.05 * len(sample):
        raise binary
    return text


def normalize(text: str) -> str:
    """Unify line ends, drop trailing spaces, keep paragraph breaks as exactly one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text = re.sub(r"[ \t\xa0\u3000]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


_MD_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _read_txt(path: Path, max_chars: int) -> tuple[str, str]:
    return _decode(path.read_bytes(), ".txt"), ""


def _read_md(path: Path, max_chars: int) -> tuple[str, str]:
    text = _decode(path.read_bytes(), ".md")
    heading = _MD_HEADING.search(text)
    return text, heading.group(1) if heading else ""


# Not "head": html.parser keeps a page's whole body inside an unclosed <head>.
_DROP_TAGS = ["script", "style", "nav", "noscript", "template", "title", "svg", "iframe"]
_PARAGRAPH_TAGS = [
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "ol", "p", "pre",
    "section", "table", "ul",
]  # fmt: skip
# Private-use markers survive the whitespace collapse below and then become real breaks.
_PARA, _LINE = "\ue000", "\ue001"


def _read_html(path: Path, max_chars: int) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnsupportedInputError(f"binary data in a {path.suffix.lower()} file (is it HTML?)")
    try:
        markup: str | bytes = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        markup = data  # BeautifulSoup reads the page's declared charset
    soup = BeautifulSoup(markup, "html.parser")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    for tag in soup(["br"]):
        tag.replace_with(_LINE)
    for tag in soup(["li", "tr"]):
        tag.insert_before(_LINE)
        tag.insert_after(_LINE)
    for tag in soup(["td", "th"]):
        tag.insert_after(" ")
    for tag in soup(_PARAGRAPH_TAGS):
        tag.insert_before(_PARA)
        tag.insert_after(_PARA)
    # Whitespace in HTML source is layout, not content: collapse it, then restore the breaks.
    text = re.sub(r"[ \t\n\r\f\v\xa0]+", " ", soup.get_text())
    text = re.sub(rf" *{_PARA}[{_PARA}{_LINE} ]*", "\n\n", text)
    text = re.sub(rf" *{_LINE}[{_LINE} ]*", "\n", text)
    return text, title


def _read_pdf(path: Path, max_chars: int) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnsupportedInputError("PDF is password-protected (save an unprotected copy)")
    pages, total = [], 0
    for page in reader.pages:
        pages.append(normalize(page.extract_text() or ""))
        total += len(pages[-1]) + 2
        if total > max_chars:
            break  # the caller refuses it; the rest of the pages need not be read
    text = "\n\n".join(p for p in pages if p)
    if not text:
        raise UnsupportedInputError("PDF has no extractable text (scanned? run OCR on it first)")
    title = reader.metadata.title if reader.metadata and reader.metadata.title else ""
    return text, str(title)


# XML bytes of a .docx body per character of text it may hold, before it is not even parsed.
_DOCX_XML_PER_CHAR = 40


def _read_docx(path: Path, max_chars: int) -> tuple[str, str]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        with zipfile.ZipFile(path) as archive:
            xml_bytes = sum(i.file_size for i in archive.infolist() if i.filename.endswith(".xml"))
    except (zipfile.BadZipFile, OSError) as e:
        raise UnsupportedInputError(
            "not a valid .docx file (an old .doc, or damaged? save it again as .docx)"
        ) from e
    if xml_bytes > max(16 * 1024 * 1024, _DOCX_XML_PER_CHAR * max_chars):
        raise UnsupportedInputError(
            f"it expands to {xml_bytes / (1024 * 1024):.0f} MB of XML, more than a text of "
            f"{max_chars:,} characters (the limit for one file) needs"
        )
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError) as e:
        raise UnsupportedInputError(
            "not a valid .docx file (an old .doc, or damaged? save it again as .docx)"
        ) from e
    blocks: list[str] = []
    total = 0
    for item in document.iter_inner_content():
        if total > max_chars:
            break  # the caller refuses it; the rest need not be read
        if isinstance(item, Table):
            rows = []
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    value = cell.text.strip()
                    # A merged cell is reported once per grid column it spans.
                    if value and (not cells or cells[-1] != value):
                        cells.append(value)
                rows.append(" | ".join(cells))
            blocks.append("\n".join(r for r in rows if r))
        else:
            blocks.append(item.text.strip())
        total += len(blocks[-1]) + 2
    return "\n\n".join(b for b in blocks if b), document.core_properties.title or ""


# Each returns (text, title); an empty title means "use the file name".
READERS: dict[str, Callable[[Path, int], tuple[str, str]]] = {
    ".txt": _read_txt,
    ".md": _read_md,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
}
