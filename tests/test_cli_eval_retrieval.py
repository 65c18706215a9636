"""`citewise eval retrieval`: the per-mode table over a real evaluation set (the smoke set)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_run import run_cli

SMOKE = Path(__file__).resolve().parents[1] / "evals" / "smoke"


@pytest.mark.slow
def test_retrieval_table_has_every_mode_and_metric(tmp_path):
    result = run_cli("--data-dir", str(tmp_path), "eval", "retrieval", "--set", str(SMOKE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| set |"))
    assert [c.strip() for c in header.strip("|").split("|")][3:] == [
        "recall@1",
        "recall@5",
        "recall@10",
        "hit@5",
        "MRR",
        "nDCG@10",
    ]
    rows = {line.split("|")[2].strip(): line for line in lines if line.startswith("| smoke")}
    assert set(rows) >= {"dense", "lexical", "hybrid"}, lines
    hybrid_recall5 = float(rows["hybrid"].split("|")[5])
    assert hybrid_recall5 >= 0.8, rows["hybrid"]
