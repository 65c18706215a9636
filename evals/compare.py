"""`citewise eval compare`: metric deltas between two runs with paired bootstrap intervals, and
the gates CI uses (`--fail-below`, `--fail-regression`).

The runs are paired by case id (cases both ran). Each bootstrap sample draws the paired cases
with replacement (seeded) and scores both runs on the same draw with evals/scoring.py
`aggregate`, so every metric, ratios and percentiles included, gets an interval the same way.
Latency metrics are lower-is-better: for them a regression is an increase.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.answer_metrics import percentile
from evals.runstore import CaseRecord, RunStore, load_summary
from evals.scoring import aggregate, rescored


@dataclass(frozen=True)
class Delta:
    metric: str
    a: float | None
    b: float | None
    low: float | None  # 95% bootstrap interval of b - a
    high: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class GateFailure:
    metric: str
    message: str


def lower_is_better(metric: str) -> bool:
    return metric.startswith("latency.")


def parse_gates(specs: Sequence[str]) -> dict[str, float]:
    """["answer.f1=0.3", ...] -> {"answer.f1": 0.3}; a malformed spec is an error naming it."""
    gates = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            gates[name.strip()] = float(value)
        except ValueError as e:
            raise ValueError(f"gate {spec!r}: write METRIC=NUMBER, e.g. answer.f1=0.3") from e
    return gates


def paired(a: Sequence[CaseRecord], b: Sequence[CaseRecord]) -> tuple[list, list]:
    """The records of the cases both runs hold, in the same order."""
    by_id = {r.id: r for r in b}
    both = [r for r in a if r.id in by_id]
    return both, [by_id[r.id] for r in both]


def bootstrap_deltas(
    a: Sequence[CaseRecord], b: Sequence[CaseRecord], samples: int = 1000, seed: int = 0
) -> list[Delta]:
    """Per metric: values on the paired cases and a 95% percentile interval of the difference."""
    a, b = paired(a, b)
    if not a:
        raise ValueError("the two runs share no case ids: compare runs of the same set")
    point_a, point_b = aggregate(a), aggregate(b)
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(samples):
        idx = [rng.randrange(len(a)) for _ in a]
        ma, mb = aggregate([a[i] for i in idx]), aggregate([b[i] for i in idx])
        for key in ma.keys() & mb.keys():
            draws.setdefault(key, []).append(mb[key] - ma[key])
    out = []
    for key in sorted(point_a.keys() | point_b.keys()):
        d = draws.get(key)
        low, high = (percentile(d, 2.5), percentile(d, 97.5)) if d else (None, None)
        out.append(Delta(key, point_a.get(key), point_b.get(key), low, high))
    return out


def check_gates(
    metrics: Mapping[str, float],
    deltas: Sequence[Delta],
    below: Mapping[str, float],
    regression: Mapping[str, float],
) -> list[GateFailure]:
    """Failures of `metric < value` (on the new run) and of a drop larger than `delta`."""
    failures = []
    for name, floor in below.items():
        if name not in metrics:
            failures.append(GateFailure(name, f"{name}: not in the run ({sorted(metrics)})"))
        elif metrics[name] < floor:
            failures.append(GateFailure(name, f"{name} = {metrics[name]:.4f} < {floor}"))
    by_name = {d.metric: d for d in deltas}
    for name, allowed in regression.items():
        d = by_name.get(name)
        if d is None or d.delta is None:
            failures.append(GateFailure(name, f"{name}: not in both runs"))
            continue
        worse = d.delta if lower_is_better(name) else -d.delta
        if worse > allowed:
            failures.append(
                GateFailure(name, f"{name} regressed by {worse:.4f} (allowed {allowed})")
            )
    return failures


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def format_deltas(name_a: str, name_b: str, deltas: Sequence[Delta]) -> str:
    lines = [
        f"| metric | A: {name_a} | B: {name_b} | B − A | 95% CI |",
        "|---|---|---|---|---|",
    ]
    for d in deltas:
        ci = "–" if d.low is None else f"[{d.low:+.4f}, {d.high:+.4f}]"
        delta = "–" if d.delta is None else f"{d.delta:+.4f}"
        lines.append(f"| {d.metric} | {_fmt(d.a)} | {_fmt(d.b)} | {delta} | {ci} |")
    return "\n".join(lines)


def compare_runs(
    run_a: str | Path,
    run_b: str | Path | None,
    *,
    below: Mapping[str, float],
    regression: Mapping[str, float],
    samples: int = 1000,
    seed: int = 0,
) -> tuple[str, list[GateFailure]]:
    """The Markdown comparison (or, with one run, its metrics) and the gates that failed."""
    summary_a = load_summary(run_a)
    if run_b is None:
        if regression:
            raise ValueError("--fail-regression needs two runs: compare BASE NEW")
        metrics = summary_a["metrics"]
        table = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
        return f"| metric | {Path(run_a).name} |\n|---|---|\n{table}", check_gates(
            metrics, [], below, {}
        )
    summary_b = load_summary(run_b)
    deltas = bootstrap_deltas(
        rescored(RunStore(run_a).records()), rescored(RunStore(run_b).records()), samples, seed
    )
    text = format_deltas(Path(run_a).name, Path(run_b).name, deltas)
    return text, check_gates(summary_b["metrics"], deltas, below, regression)
