"""Extract the text and title of one file of each supported single-document type.

Each reader takes a path and returns (text, title), or raises UnsupportedInputError with the
one-line reason a person sees. Folder walking, size limits and corpus .jsonl files are in loaders.
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


def _read_txt(path: Path) -> tuple[str, str]:
    return _decode(path.read_bytes(), ".txt"), ""


def _read_md(path: Path) -> tuple[str, str]:
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


def _read_html(path: Path) -> tuple[str, str]:
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


def _read_pdf(path: Path) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnsupportedInputError("PDF is password-protected (save an unprotected copy)")
    pages = [normalize(page.extract_text() or "") for page in reader.pages]
    text = "\n\n".join(p for p in pages if p)
    if not text:
        raise UnsupportedInputError("PDF has no extractable text (scanned? run OCR on it first)")
    title = reader.metadata.title if reader.metadata and reader.metadata.title else ""
    return text, str(title)


def _read_docx(path: Path) -> tuple[str, str]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError) as e:
        raise UnsupportedInputError(
            "not a valid .docx file (an old .doc, or damaged? save it again as .docx)"
        ) from e
    blocks = []
    for item in document.iter_inner_content():
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
    return "\n\n".join(b for b in blocks if b), document.core_properties.title or ""


# Each returns (text, title); an empty title means "use the file name".
READERS: dict[str, Callable[[Path], tuple[str, str]]] = {
    ".txt": _read_txt,
    ".md": _read_md,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
}
