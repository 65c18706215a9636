"""`citewise ingest | kb | search` as a user runs them: real subprocesses, isolated data dir."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_run import run_cli

pytestmark = pytest.mark.slow


def citewise(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with its data directory set the other way a user can: $CITEWISE_HOME."""
    return run_cli(*args, env={"CITEWISE_HOME": str(data)}, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "tea.md").write_text(
        "# Tea\n\nGreen tea is made from unoxidized leaves of Camellia sinensis.\n",
        encoding="utf-8",
    )
    (docs / "sub" / "law.txt").write_text(
        "第一条 为了保护劳动者的合法权益，制定本法。\n", encoding="utf-8"
    )
    (docs / "empty.txt").write_text("", encoding="utf-8")
    (docs / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (docs / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    out = citewise(root / "home", "ingest", "--kb", "notes", "--lang", "multi", str(docs))
    assert out.returncode == 0, out.stderr
    return root


def test_ingest_reports_each_bad_file_and_keeps_the_rest(data):
    out = citewise(data / "home", "kb", "show", "notes")
    assert out.returncode == 0, out.stderr
    assert "tea.md" in out.stdout and "sub/law.txt" in out.stdout
    assert "empty.txt" not in out.stdout and "photo.txt" not in out.stdout
    again = citewise(data / "home", "ingest", "--kb", "notes", str(data / "docs"))
    assert "0 added, 0 replaced, 2 unchanged, 3 skipped" in again.stdout
    reasons = again.stderr.lower()
    assert "empty" in reasons and "binary" in reasons and "unsupported" in reasons


def test_search_json_single_and_batch(data):
    out = citewise(
        data / "home", "search", "--kb", "notes", "--json", "What is green tea made from?"
    )
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["doc_id"] == "tea.md" and set(hits[0]) == {"doc_id", "chunk_id", "score", "text"}
    queries = data / "q.jsonl"
    queries.write_text(
        json.dumps({"id": "a", "question": "劳动者的合法权益"}, ensure_ascii=False)
        + "\n"
        + json.dumps({"id": "b", "question": "green tea leaves"})
        + "\n",
        encoding="utf-8",
    )
    out = citewise(data / "home", "search", "--kb", "notes", "--queries", str(queries), "--json")
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"]
    assert lines[0]["hits"][0]["doc_id"] == "sub/law.txt"
    assert lines[1]["hits"][0]["doc_id"] == "tea.md"


def test_errors_name_the_problem_and_the_fix(data):
    out = citewise(data / "home", "search", "--kb", "nope", "tea")
    assert out.returncode == 2 and "no knowledge base named 'nope'" in out.stderr
    assert "citewise ingest" in out.stderr
    out = citewise(
        data / "home", "search", "--kb", "notes", "--queries", str(data / "missing.jsonl")
    )
    assert out.returncode == 2 and "missing.jsonl" in out.stderr


def test_delete_doc_then_drop(data):
    home = data / "home"
    assert citewise(home, "kb", "delete-doc", "notes", "tea.md").returncode == 0
    out = citewise(home, "search", "--kb", "notes", "--json", "green tea Camellia sinensis")
    assert all(h["doc_id"] != "tea.md" for h in json.loads(out.stdout)["hits"])
    assert citewise(home, "kb", "delete-doc", "notes", "tea.md").returncode == 1
    assert citewise(home, "kb", "drop", "notes").returncode == 0
    assert "no knowledge bases yet" in citewise(home, "kb", "list").stdout
