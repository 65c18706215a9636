"""`citewise ask` as a user runs it: a real subprocess, a .toml config, a data dir on disk."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from cli_run import run_cli

from retrieval.lang import detect_lang


def citewise(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout)


@pytest.mark.slow  # the subprocess loads SmolLM2, e5 and the router
def test_ask_json_prints_the_reply_fields(tmp_path, education_data_dir):
    config = tmp_path / "citewise.toml"
    config.write_text('device = "cpu"\nmax_new_tokens = 32\n', encoding="utf-8")
    data = tmp_path / "data"  # `ask` stores a session: keep it out of the shared data dir
    shutil.copytree(education_data_dir, data)
    done = citewise(
        "--data-dir",
        str(data),
        "ask",
        "--json",
        "--config",
        str(config),
        "--kb",
        "education",
        "When did Carl Wilhelm Scheele discover oxygen?",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reply = json.loads(done.stdout)
    for field in ("answer", "citations", "rewritten_query", "route", "refused", "notices"):
        assert field in reply
    assert reply["rewritten_query"] == "When did Carl Wilhelm Scheele discover oxygen?"
    assert reply["route"]["kbs"] == ["education"] and reply["route"]["intent"] == "knowledge"
    assert reply["refused"] is False and detect_lang(reply["answer"]) == "en"
    assert any(c["verified"] and c["doc_id"] == "xq-en-12-0" for c in reply["citations"])
    assert {"retrieve_ms", "total_ms"} <= set(reply["timings"])
    assert reply["sources"][0]["doc_id"] and "text" in reply["sources"][0]


def test_ask_reports_a_missing_config_file(tmp_path):
    done = citewise("--data-dir", str(tmp_path), "ask", "--config", str(tmp_path / "no.toml"), "hi")
    assert done.returncode == 2
    assert "no.toml" in done.stderr and "not found" in done.stderr
