"""Router evaluation in the evaluation-report style: summary.json with flat metrics, Markdown and
a self-contained HTML page with the confusion matrices as heatmaps.

The scores themselves come from agent/router_train.py (`evaluate_router`: accuracy, macro-F1 and
confusion per task and language); this module only lays them out like `citewise eval report`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.router import Router
from agent.router_train import RouterMetrics, TaskScores, evaluate_router
from evals.report import Figure, Section, metric_rows, png_bytes, render, table
from retrieval.atomic import atomic_write_text


def flat_metrics(m: RouterMetrics) -> dict[str, dict[str, float]]:
    """{"all" | "en" | "zh": {"router.intent.accuracy": ..., "router.domain.macro_f1": ...}}."""
    out: dict[str, dict[str, float]] = {}
    for task, by_lang in (("intent", m.intent), ("domain", m.domain)):
        for group, s in by_lang.items():
            row = out.setdefault(group, {"n": float(s.n)})
            row[f"router.{task}.accuracy"] = s.accuracy
            row[f"router.{task}.macro_f1"] = s.macro_f1
    for task, value in m.majority.items():
        out["all"][f"router.{task}.majority_baseline"] = value
    return out


def confusion_figure(task: str, s: TaskScores) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(s.confusion, cmap="Blues")
    ax.set_xticks(range(len(s.labels)), s.labels, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(s.labels)), s.labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    top = max(max(row) for row in s.confusion) or 1
    for i, row in enumerate(s.confusion):
        for j, count in enumerate(row):
            color = "white" if count > top / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color=color)
    ax.set_title(f"{task} confusion (n={s.n})")
    return Figure(f"confusion_{task}", f"{task} confusion", png_bytes(fig))


def router_report(router: Router, data: Path, out: Path, split: str = "test") -> dict[str, Any]:
    """Score `router` on `split` of `data`; write summary.json, report.md, report.html to `out`."""
    m = evaluate_router(router, data, split)
    groups = flat_metrics(m)
    summary = {"set": f"router:{data.name}:{split}", "method": m.method, "n": m.intent["all"].n}
    metrics = {k: v for k, v in groups["all"].items() if k != "n"}
    summary.update(metrics=metrics, by_lang={k: v for k, v in groups.items() if k != "all"})
    figures = [
        confusion_figure("intent", m.intent["all"]),
        confusion_figure("domain", m.domain["all"]),
    ]
    sections = [
        Section("Router", f"`{m.method}` on `{data}`, split `{split}`", f"<p>{m.method}</p>"),
        table(*metric_rows(groups), title="Scores per language"),
    ]
    md, page = render("citewise router evaluation", sections, figures)
    out.mkdir(parents=True, exist_ok=True)
    for f in figures:
        (out / f"{f.name}.png").write_bytes(f.png)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "report.html", page)
    return summary
