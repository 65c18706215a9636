"""`citewise eval report`: a run (or several) as Markdown and one self-contained HTML page.

The page carries its plots as base64 PNG (matplotlib, Agg backend): quality metrics per set, per
domain and per language, a latency histogram, and the worst cases with the passages they were
answered from, gold passages marked. The Markdown holds the same tables and links the PNGs,
written beside it.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.runstore import CaseRecord, RunStore, load_summary
from evals.scoring import aggregate, breakdown, rescored

# Worst-first order: the first of these a case has is the score it is ranked by.
PRIMARY = (
    "answer.f1",
    "answer.yesno_accuracy",
    "answer.rouge_l",
    "faithfulness",
    "retrieval.ndcg@10",
)
# Bars show scores in [0, 1]; latency and throughput have their own plot and table.
BAR_METRICS = (
    "retrieval.recall@5",
    "retrieval.ndcg@10",
    "answer.f1",
    "answer.contains",
    "answer.yesno_accuracy",
    "answer.rouge_l",
    "answer.bleu",
    "refusal.recall",
    "answer_rate",
    "faithfulness",
    "citation.precision",
    "citation.recall",
)


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    png: bytes


@dataclass(frozen=True)
class Section:
    title: str
    markdown: str  # a table or a list
    html: str


def png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def bar_figure(name: str, title: str, groups: Mapping[str, Mapping[str, float]]) -> Figure:
    """Grouped bars: one cluster per metric, one bar per group (set, domain or language)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in BAR_METRICS if any(m in g for g in groups.values())]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(metrics) + 2), 3.6))
    width = 0.8 / max(1, len(groups))
    for i, (label, values) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(metrics))]
        ax.bar(xs, [values.get(m, 0.0) for m in metrics], width, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))])
    ax.set_xticklabels(metrics, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=7, ncols=min(4, len(groups)))
    return Figure(name, title, png_bytes(fig))


def latency_figure(records: Sequence[CaseRecord]) -> Figure | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    total = [r.timings["total_ms"] / 1000 for r in records if "total_ms" in r.timings]
    ttft = [r.timings["ttft_ms"] / 1000 for r in records if "ttft_ms" in r.timings]
    if not total:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.hist(total, bins=20, alpha=0.6, label="total")
    if ttft:
        ax.hist(ttft, bins=20, alpha=0.6, label="time to first token")
    ax.set_xlabel("seconds per case")
    ax.set_ylabel("cases")
    ax.set_title("Latency")
    ax.legend()
    return Figure("latency", "Latency", png_bytes(fig))


def metric_rows(groups: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[list[str]]]:
    names = sorted({k for g in groups.values() for k in g if k != "n"})
    header = ["metric", *groups]
    rows = [
        [name, *(f"{g[name]:.4f}" if name in g else "–" for g in groups.values())] for name in names
    ]
    if all("n" in g for g in groups.values()):
        rows.insert(0, ["cases", *(f"{int(g['n'])}" for g in groups.values())])
    return header, rows


def table(header: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> Section:
    md = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return Section(title, "\n".join(md), f"<table><tr>{cells}</tr>{body}</table>")


def primary_score(record: CaseRecord) -> float:
    if record.answer_type == "refuse":
        return 1.0 if record.refused else 0.0
    for key in PRIMARY:
        if key in record.scores:
            return record.scores[key]
    return 1.0


def worst_cases(records: Sequence[CaseRecord], n: int = 5) -> Section:
    """The `n` lowest-scoring cases with their answer, citations and evidence."""
    worst = sorted(records, key=primary_score)[:n]
    md, out = [], []
    for r in worst:
        gold = set(r.gold_doc_ids)
        expected = "; ".join(r.answers) or r.reference[:300] or "(decline)"
        cites = ", ".join(
            f"[{c['n']}] {c['doc_id']} {c['support']:.2f}{'' if c['verified'] else ' ✗'}"
            for c in r.citations
        )
        md += [
            f"- **{r.id}** ({r.answer_type}, {r.lang}, score {primary_score(r):.2f}, "
            f"route {r.intent}/{r.route_domain}{', refused' if r.refused else ''})",
            f"  - question: {r.question}",
            f"  - expected: {expected}",
            f"  - answer: {r.answer[:500]}",
            f"  - citations: {cites or '–'}; gold: {', '.join(r.gold_doc_ids) or '–'}",
        ]
        passages = "".join(
            f"<li class='{'gold' if e['doc_id'] in gold else ''}'><b>{html.escape(e['doc_id'])}"
            f"</b> {html.escape(e['text'][:400])}</li>"
            for e in r.evidence
        )
        out.append(
            f"<div class='case'><h4>{html.escape(r.id)} · {r.answer_type} · {r.lang} · score "
            f"{primary_score(r):.2f}{' · refused' if r.refused else ''}</h4>"
            f"<p><b>Question</b> {html.escape(r.question)}</p>"
            f"<p><b>Expected</b> {html.escape(expected)}</p>"
            f"<p><b>Answer</b> {html.escape(r.answer)}</p>"
            f"<p><b>Citations</b> {html.escape(cites or '–')}</p>"
            f"<p><b>Evidence</b> (gold in green)</p><ol>{passages}</ol></div>"
        )
    return Section("Worst cases", "\n".join(md), "".join(out))


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;
padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.case{border:1px solid #ddd;padding:.5em 1em;margin:1em 0;font-size:14px}li.gold{background:#e6f6e6}
img{max-width:100%}"""


def render(title: str, sections: Sequence[Section], figures: Sequence[Figure]) -> tuple[str, str]:
    """(markdown, html) of a report."""
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        if s.title:
            md += [f"## {s.title}", ""]
            body.append(f"<h2>{html.escape(s.title)}</h2>")
        md += [s.markdown, ""]
        body.append(s.html)
    for f in figures:
        md += [f"![{f.title}]({f.name}.png)", ""]
        data = base64.b64encode(f.png).decode()
        body.append(f"<h3>{html.escape(f.title)}</h3><img src='data:image/png;base64,{data}'>")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
    return "\n".join(md), page


def build_report(run_dirs: Sequence[str | Path], out: str | Path) -> tuple[Path, Path]:
    """Write report.md, report.html and the PNGs to `out`; return the two report paths."""
    runs = [(Path(d), load_summary(d), rescored(RunStore(d).records())) for d in run_dirs]
    records = [r for _, _, rs in runs for r in rs]
    labels = [s["set"] for _, s, _ in runs]
    if len(set(labels)) < len(labels):  # runs of one set under two configs: name the folders
        labels = [f"{s['set']} ({p.name})" for p, s, _ in runs]
    by_set = {
        label: {"n": float(len(rs)), **aggregate(rs)}
        for label, (_, _, rs) in zip(labels, runs, strict=True)
    }
    by_domain = breakdown(records, lambda r: r.domain)
    by_lang = breakdown(records, lambda r: r.lang)
    first = runs[0][1]
    config = ", ".join(f"{k}={v}" for k, v in first["config"].items() if v not in (None, {}, []))
    sections = [
        Section(
            "Run",
            f"model `{first['model']}`; config {config}; batched: {first['batched']}",
            f"<p>model <code>{html.escape(first['model'])}</code>; config "
            f"{html.escape(config)}; batched: {first['batched']}</p>",
        ),
        table(*metric_rows(by_set), title="Metrics per set"),
        table(*metric_rows(by_domain), title="Per domain (cases pooled over the sets)"),
        table(*metric_rows(by_lang), title="Per language"),
    ]
    for path, summary, rs in runs:
        worst = worst_cases(rs)
        sections.append(
            Section(f"Worst cases: {summary['set']} ({path})", worst.markdown, worst.html)
        )
    figures = [
        bar_figure("by_set", "Quality per set", by_set),
        bar_figure("by_domain", "Quality per domain", by_domain),
        bar_figure("by_lang", "Quality per language", by_lang),
    ]
    latency = latency_figure(records)
    if latency:
        figures.append(latency)
    title = "citewise evaluation: " + ", ".join(by_set)
    md, page = render(title, sections, figures)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for f in figures:
        (folder / f"{f.name}.png").write_bytes(f.png)
    (folder / "report.md").write_text(md, encoding="utf-8")
    (folder / "report.html").write_text(page, encoding="utf-8")
    return folder / "report.md", folder / "report.html"
