"""`eval compare` gates and `eval report` pages on runs written through the real run store.

The runs are made of hand-built case records (no model): the point here is the bootstrap, the
gates' exit codes through the real CLI, and the report's content.
"""

import base64
import json
import re

import pytest
from cli_run import run_cli

from evals.compare import bootstrap_deltas, check_gates, parse_gates
from evals.report import build_report
from evals.router_report import router_report
from evals.run import summarize
from evals.runstore import CaseRecord, RunStore
from evals.scoring import case_scores

RIGHT = {"en": "The Denver Broncos [1].", "zh": "丹佛野马队。[1]"}
WRONG = {"en": "The Carolina Panthers [1].", "zh": "卡罗来纳黑豹队。[1]"}


def record(i: int, right: bool, refused: bool = False) -> CaseRecord:
    lang = "en" if i % 2 else "zh"
    r = CaseRecord(
        id=f"c{i}",
        question=f"question {i}",
        lang=lang,
        domain="legal" if i % 3 else "medical",
        group="",
        answer_type="span",
        gold_doc_ids=[f"d{i}"],
        answers=["Denver Broncos" if lang == "en" else "丹佛野马队"],
        reference="",
        rewritten_query=f"question {i}",
        intent="knowledge",
        route_domain="legal",
        ranked_ids=[f"d{i}", "x"],
        retrieved_ids=[f"d{i}"],
        answer=(RIGHT if right else WRONG)[lang],
        citations=[{"n": 1, "doc_id": f"d{i}", "support": 0.8, "verified": True}],
        refused=refused,
        n_sentences=1,
        n_supported=1,
        timings={"ttft_ms": 100.0 + i, "total_ms": 500.0 + 10 * i, "gen_ms": 50.0, "new_tokens": 6},
        evidence=[{"doc_id": f"d{i}", "text": f"passage {i} about the Denver Broncos"}],
    )
    return CaseRecord(**{**r.__dict__, "scores": case_scores(r)})


def write_run(folder, records) -> str:
    store = RunStore(folder)
    meta = {"set": "synthetic", "config": {"k": 5}, "model": "none", "batched": False}
    store.check_meta(meta)
    for r in records:
        store.add(r)
    store.finish(summarize(list(store.records()), meta))
    return str(folder)


@pytest.fixture
def runs(tmp_path):
    good = [record(i, right=True) for i in range(20)]
    # Forced down: odd ids answered wrong, ids 0 and 1 refused.
    worse = [record(i, right=i % 2 == 0, refused=i < 2) for i in range(20)]
    return write_run(tmp_path / "a", good), write_run(tmp_path / "b", worse)


def test_bootstrap_interval_brackets_the_drop(runs):
    a, b = (list(RunStore(r).records()) for r in runs)
    deltas = {d.metric: d for d in bootstrap_deltas(a, b, samples=300, seed=1)}
    em = deltas["answer.em"]
    # good: 20/20 right; worse: odd ids wrong (10), ids 0 and 1 refused (0 right) -> 9/20
    assert em.a == 1.0 and em.b == pytest.approx(9 / 20)
    assert em.low <= em.delta <= em.high < 0
    # same seed, same interval
    again = {d.metric: d for d in bootstrap_deltas(a, b, samples=300, seed=1)}
    assert (again["answer.em"].low, again["answer.em"].high) == (em.low, em.high)


def test_gates_by_hand():
    metrics = {"answer.f1": 0.4, "latency.total_p50_ms": 900.0}
    assert [f.metric for f in check_gates(metrics, [], {"answer.f1": 0.5}, {})] == ["answer.f1"]
    assert check_gates(metrics, [], {"answer.f1": 0.3}, {}) == []
    assert "not in the run" in check_gates(metrics, [], {"nope": 1.0}, {})[0].message
    with pytest.raises(ValueError, match="METRIC=NUMBER"):
        parse_gates(["answer.f1"])


def test_compare_cli_fails_when_a_metric_is_forced_down(runs):
    a, b = runs
    same = run_cli("eval", "compare", a, a, "--fail-regression", "answer.em=0.05")
    assert same.returncode == 0, same.stderr
    worse = run_cli("eval", "compare", a, b, "--fail-regression", "answer.em=0.05")
    assert worse.returncode == 1
    assert "GATE FAILED: answer.em regressed by 0.5500" in worse.stderr
    assert re.search(r"\| answer\.em \| 1\.0000 \| 0\.4500 \| -0\.5500 \| \[", worse.stdout)
    below = run_cli("eval", "compare", b, "--fail-below", "answer_rate=0.95")
    assert below.returncode == 1 and "answer_rate = 0.9000 < 0.95" in below.stderr
    ok = run_cli("eval", "compare", b, "--fail-below", "answer_rate=0.85")
    assert ok.returncode == 0, ok.stderr


def test_report_is_self_contained_with_plots_and_worst_cases(runs, tmp_path):
    md, page = build_report(list(runs), tmp_path / "report")
    text = page.read_text(encoding="utf-8")
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert len(images) == 4  # per set, per domain, per language, latency
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "src='http" not in text and "<script" not in text
    # the worst case of run b is a wrong or refused one, shown with its gold passage
    worst = text.split("Worst cases: synthetic")[2]
    assert "Carolina Panthers" in worst or "卡罗来纳" in worst or "refused" in worst
    assert "<li class='gold'><b>d" in worst
    markdown = md.read_text(encoding="utf-8")
    assert "| answer.em | 1.0000 | 0.4500 |" in markdown  # one column per run: a and b
    assert "## Per language" in markdown and "| cases | 20 | 20 |" in markdown
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["by_lang"]["en"]["n"] == 10


class ConstantRouter:
    """Routes everything as a legal knowledge question: scores are then label shares."""

    method = "constant"

    def route(self, text):
        from agent.types import Route

        return Route("knowledge", "legal")


def test_router_report_same_style(tmp_path):
    data = tmp_path / "queries.jsonl"
    rows = [
        ("knowledge", "legal", "en", "train"),
        ("knowledge", "legal", "en", "test"),
        ("chitchat", "general", "en", "test"),
        ("knowledge", "medical", "zh", "test"),
        ("out_of_scope", "general", "zh", "test"),
    ]
    lines = [
        json.dumps({"text": f"q{i}", "intent": it, "domain": d, "lang": lg, "split": sp})
        for i, (it, d, lg, sp) in enumerate(rows)
    ]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = router_report(ConstantRouter(), data, tmp_path / "out")
    m = summary["metrics"]
    # 4 test lines: intent right on 2 (knowledge), domain right on 1 (legal)
    assert m["router.intent.accuracy"] == 0.5 and m["router.domain.accuracy"] == 0.25
    # intent macro-F1 over {knowledge, chitchat, out_of_scope}: F1 knowledge = 2*.5*1/1.5 = 2/3
    assert m["router.intent.macro_f1"] == pytest.approx((2 / 3) / 3)
    assert summary["by_lang"]["zh"]["router.intent.accuracy"] == 0.5
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2  # intent and domain confusion
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["metrics"] == m
