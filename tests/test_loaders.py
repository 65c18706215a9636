"""load_paths: every supported type from real files, every Skipped reason, folders and ids."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from retrieval.loaders import SUPPORTED, Skipped, load_paths
from retrieval.readers import READERS
from retrieval.types import Document


def load(*paths: Path, **kwargs) -> list[Document | Skipped]:
    return list(load_paths(list(paths), **kwargs))


def load_one(path: Path, **kwargs) -> Document:
    [item] = load(path, **kwargs)
    assert isinstance(item, Document), item
    return item


def skip_reason(path: Path, **kwargs) -> str:
    [item] = load(path, **kwargs)
    assert isinstance(item, Skipped), item
    assert item.path == str(path)
    return item.reason


def make_pdf(pages: list[list[str]], *, title: str = "", password: str = "") -> bytes:
    """A real PDF with one text line per string, in the standard Helvetica font."""
    from pypdf import PdfWriter
    from pypdf.generic import ContentStream, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        shown = "".join(f"({line}) Tj T* " for line in lines)
        content = ContentStream(None, None)
        content.set_data(f"BT /F1 12 Tf 14 TL 72 720 Td {shown}ET".encode("latin-1"))
        page.replace_contents(content)
    if title:
        writer.add_metadata({"/Title": title})
    if password:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- plain text and markdown ------------------------------------------------------------------


def test_txt_is_read_with_its_name_as_id_and_stem_as_title(tmp_path):
    path = tmp_path / "合同须知.txt"
    path.write_text(
        "依法成立的合同，受法律保护。  \r\n\r\n\r\n\r\n当事人应当履行。\n", encoding="utf-8"
    )
    doc = load_one(path)
    assert doc.id == "合同须知.txt"
    assert doc.title == "合同须知"
    assert doc.text == "依法成立的合同，受法律保护。\n\n当事人应当履行。"
    assert (doc.lang, doc.domain, doc.group, doc.source) == ("zh", "general", "", str(path))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "utf-16"])  # utf-16 writes a BOM
def test_byte_order_marks_and_legacy_chinese_encodings_are_decoded(tmp_path, encoding):
    text = "第一条　为了保护民事主体的合法权益，制定本法。"
    path = tmp_path / "law.txt"
    path.write_bytes(text.encode(encoding))
    doc = load_one(path, domain="legal")
    assert (doc.text, doc.domain, doc.lang) == (text, "legal", "zh")


def test_markdown_title_is_its_first_heading_and_breaks_are_kept(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("Intro line\n\n## Oxygen facts ##\n\nScheele found it.\n\n\n\nIn 1773.\n")
    doc = load_one(path)
    assert doc.title == "Oxygen facts"
    assert doc.text == "Intro line\n\n## Oxygen facts ##\n\nScheele found it.\n\nIn 1773."
    assert doc.lang == "en"


# --- HTML ------------------------------------------------------------------------------------

PAGE = """<!doctype html><html><head><title> Privacy   Policy </title>
<style>body { color: red }</style><script>var tracking = "SECRET_SCRIPT";</script></head>
<body><nav><a href="/">Home</a> <a href="/about">NAV_LINK</a></nav>
<h1>Your privacy</h1>
<p>We collect <b>only</b> what we
   need.</p><p>You can opt out.<br>Email us.</p>
<ul><li>Cookies</li><li>Web beacons</li></ul>
<table><tr><td>Data</td><td>Kept</td></tr></table>
<script>alert("SECRET_SCRIPT_2")</script></body></html>"""


def test_html_text_drops_scripts_styles_and_navigation(tmp_path):
    path = tmp_path / "policy.html"
    path.write_text(PAGE, encoding="utf-8")
    doc = load_one(path)
    assert doc.title == "Privacy Policy"
    for hidden in ("SECRET", "color: red", "NAV_LINK", "Home"):
        assert hidden not in doc.text
    assert doc.text == (
        "Your privacy\n\nWe collect only what we need.\n\nYou can opt out.\nEmail us."
        "\n\nCookies\nWeb beacons\n\nData Kept"
    )


def test_html_without_closing_head_keeps_its_body(tmp_path):
    path = tmp_path / "sloppy.html"
    path.write_text("<html><head><title>Old page</title><p>Body text.</p><p>More.</p>")
    doc = load_one(path)
    assert (doc.title, doc.text) == ("Old page", "Body text.\n\nMore.")


def test_html_in_a_declared_legacy_charset(tmp_path):
    path = tmp_path / "page.htm"
    html = '<html><head><meta charset="gbk"><title>法规</title></head><body><p>合同受法律保护。</p>'
    path.write_bytes(html.encode("gbk"))
    doc = load_one(path)
    assert (doc.title, doc.text, doc.lang) == ("法规", "合同受法律保护。", "zh")


# --- PDF -------------------------------------------------------------------------------------


def test_pdf_pages_become_paragraphs_and_metadata_gives_the_title(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(
        make_pdf(
            [["Page one says hello.", "Still page one."], ["Page two."]], title="Annual Report"
        )
    )
    doc = load_one(path)
    assert doc.title == "Annual Report"
    assert doc.text == "Page one says hello.\nStill page one.\n\nPage two."


def test_pdf_without_a_title_uses_the_file_stem(tmp_path):
    path = tmp_path / "scan-2024.pdf"
    path.write_bytes(make_pdf([["Some text."]]))
    assert load_one(path).title == "scan-2024"


def test_pdf_without_text_is_skipped_as_scanned(tmp_path):
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[], []]))
    assert skip_reason(path) == "PDF has no extractable text (scanned? run OCR on it first)"


def test_password_protected_pdf_is_skipped(tmp_path):
    path = tmp_path / "locked.pdf"
    path.write_bytes(make_pdf([["secret"]], password="pw"))
    assert "password-protected" in skip_reason(path)


def test_damaged_pdf_is_skipped_not_raised(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\nthis is not really a pdf\n%%EOF\n")
    assert skip_reason(path).startswith("cannot parse this .pdf file (damaged?)")


# --- Word ------------------------------------------------------------------------------------


def test_docx_paragraphs_headings_and_tables_in_document_order(tmp_path):
    import docx

    document = docx.Document()
    document.core_properties.title = "Clinic handbook"
    document.add_heading("Opening hours", level=1)
    document.add_paragraph("We open at nine.")
    document.add_paragraph("")
    table = document.add_table(rows=2, cols=2)
    for (r, c), value in {(0, 0): "Day", (0, 1): "Hours", (1, 0): "Mon", (1, 1): "9-5"}.items():
        table.cell(r, c).text = value
    document.add_paragraph("Closed on holidays.")
    path = tmp_path / "handbook.docx"
    document.save(str(path))
    doc = load_one(path)
    assert doc.title == "Clinic handbook"
    assert doc.text == (
        "Opening hours\n\nWe open at nine.\n\nDay | Hours\nMon | 9-5\n\nClosed on holidays."
    )


def test_old_word_file_renamed_docx_is_skipped(tmp_path):
    path = tmp_path / "old.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    assert "not a valid .docx file" in skip_reason(path)


# --- corpus .jsonl ---------------------------------------------------------------------------


def test_jsonl_good_lines_load_and_each_bad_line_is_named(tmp_path):
    good = {
        "id": "pq-1",
        "text": "We do not sell your data.",
        "title": "example.com",
        "domain": "legal",
        "lang": "en",
        "group": "example.com",
        "source": "policyqa",
    }
    lines = [
        json.dumps(good),
        "",
        json.dumps({"id": 7, "text": "依法成立的合同，受法律保护。"}),
        "{not json",
        json.dumps({"id": "x", "title": "no text"}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "pq-1", "text": "again"}),
        json.dumps({"id": "y", "text": "x", "lang": "fr"}),
        json.dumps({"id": "z", "text": "   "}),
        json.dumps({"id": "w", "text": "ok", "domain": "sports"}),
        json.dumps({"id": "last", "text": "Still loaded after bad lines."}),
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = load(path, domain="medical")
    docs = [i for i in items if isinstance(i, Document)]
    assert docs[0] == Document(**good)
    assert (docs[1].id, docs[1].lang, docs[1].domain, docs[1].source) == (
        "7",
        "zh",
        "medical",
        str(path),
    )
    assert docs[2].id == "last"
    reasons = [i.reason for i in items if isinstance(i, Skipped)]
    assert reasons[0].startswith("corpus line 4: not valid JSON")
    assert reasons[1:] == [
        "corpus line 5: missing field 'text'",
        "corpus line 6: expected a JSON object with 'id' and 'text'",
        "corpus line 7: duplicate id 'pq-1' (first on line 1)",
        "corpus line 8: lang 'fr' is not one of en, zh",
        "corpus line 9: field 'text' is empty",
        "corpus line 10: domain 'sports' is not one of legal, medical, education, general",
    ]


# --- reasons for skipping --------------------------------------------------------------------


def test_missing_path(tmp_path):
    assert skip_reason(tmp_path / "nope.txt") == "no such file or folder (check the path)"


def test_empty_and_whitespace_only_files(tmp_path):
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.txt").write_text(" \n\n\t\n")
    assert skip_reason(tmp_path / "empty.md") == "empty file"
    assert skip_reason(tmp_path / "blank.txt") == "empty file (only whitespace)"


def test_binary_renamed_txt(tmp_path):
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert skip_reason(path) == "binary data in a .txt file (is it really text?)"


def test_control_characters_without_nul_are_binary_too(tmp_path):
    path = tmp_path / "data.md"
    path.write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 65]) * 100)
    assert skip_reason(path) == "binary data in a .md file (is it really text?)"


def test_over_the_size_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("a" * (3 * 1024 * 1024 + 200_000))
    assert skip_reason(path, max_bytes=2 * 1024 * 1024) == (
        "3.2 MB is over the 2 MB limit (raise --max-mb)"
    )


def test_unsupported_type_lists_what_is_supported(tmp_path):
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04")
    reason = skip_reason(path)
    assert reason == f"unsupported type .xlsx (supported: {' '.join(SUPPORTED)})"


def test_every_supported_type_has_a_reader():
    assert set(SUPPORTED) == {*READERS, ".jsonl"}


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("top secret")
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        # Tests run as root here, where chmod 000 does not stop reading.
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert skip_reason(path) == "cannot read: permission denied"


def test_bad_arguments_fail_at_the_call_not_later(tmp_path):
    with pytest.raises(ValueError, match="unknown domain 'sports'"):
        load_paths([tmp_path], domain="sports")
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        load_paths([tmp_path], max_bytes=0)
    with pytest.raises(TypeError, match="not one path"):
        load_paths(str(tmp_path))  # a str is a Sequence too: the classic mistake


# --- folders ---------------------------------------------------------------------------------


def test_folders_recurse_in_order_with_relative_ids_and_skip_hidden(tmp_path):
    root = tmp_path / "kb"
    (root / "b-dir" / "deep").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config.txt").write_text("hidden folder")
    (root / ".notes.md").write_text("hidden file")
    (root / "~$draft.docx").write_bytes(b"lock file")
    (root / "a.txt").write_text("Alpha.")
    (root / "b-dir" / "deep" / "c.md").write_text("# Gamma\n\nGamma text.")
    (root / "b-dir" / "image.png").write_bytes(b"\x89PNG")
    (root / "z.html").write_text("<p>Zeta.</p>")
    (root / "dangling.txt").symlink_to(root / "gone.txt")
    (root / "loop").symlink_to(root, target_is_directory=True)
    items = load(root)
    docs = [i for i in items if isinstance(i, Document)]
    assert [d.id for d in docs] == ["a.txt", "b-dir/deep/c.md", "z.html"]
    assert [d.title for d in docs] == ["a", "Gamma", "z"]
    skipped = {Path(i.path).name: i.reason for i in items if isinstance(i, Skipped)}
    assert skipped == {
        "image.png": f"unsupported type .png (supported: {' '.join(SUPPORTED)})",
        "dangling.txt": "cannot read: file not found (moved, or a broken link?)",
        "loop": "link to a folder is not followed (name the folder itself)",
    }
    # The same folder named again gives the same ids, so a re-ingest replaces documents.
    assert [d.id for d in load(root) if isinstance(d, Document)] == [d.id for d in docs]


def test_one_bad_file_does_not_stop_the_batch(tmp_path):
    (tmp_path / "bad.pdf").write_bytes(b"garbage")
    (tmp_path / "good.txt").write_text("Fine.")
    items = load(tmp_path / "bad.pdf", tmp_path / "missing.md", tmp_path / "good.txt")
    assert [type(i).__name__ for i in items] == ["Skipped", "Skipped", "Document"]
