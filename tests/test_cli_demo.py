"""`citewise demo --search`: the demo knowledge bases answer the sample searches, zh and en."""

from __future__ import annotations

import shutil

import pytest
from cli_run import run_cli


@pytest.mark.slow
def test_demo_search_answers_sample_queries(demo_library, tmp_path):
    # A copy of the already built demo data: the demo's own ingest is then a no-op per file.
    data = tmp_path / "data"
    shutil.copytree(demo_library.data_dir, data)
    result = run_cli("--data-dir", str(data), "demo", "--search", stdin="")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "legal> 谁可以成为个体工商户？" in out
    assert "education> When did Carl Wilhelm Scheele discover oxygen?" in out
    # Every sample search finds something; Scheele's question ranks its own paragraph first.
    assert "(nothing found)" not in out
    scheele = out.split("education> When did Carl Wilhelm Scheele discover oxygen?")[1]
    assert scheele.lstrip().startswith("1. [education/xq-en-12-"), scheele[:300]
