"""Choose the evidence-gate threshold by measurement: refusal cases against answerable ones.

    python -m evals.gate_calibration --data-dir DIR [--per-set 40] [--uncovered 20] [--no-build]

Each case is searched the way the agent searches (hybrid, top 5, the case's group as a filter) in
the set's evaluation knowledge base (evals/retrieval.py `build_eval_kb`, built once per data dir),
and the gate's strength (agent/gate.py) is taken over the hits. Refusal cases are rgb-zh's
`refuse` cases (their group holds only passages that do not answer); answerable cases are an even
spread of `--per-set` cases with gold documents from every set, rgb-zh's span cases included.
Uncovered cases are `--uncovered` questions of each set asked of another set's knowledge base in
the same language and another field (OTHER_KB), which cannot answer them.
`--no-build` uses the knowledge bases as they are in the data dir (an interrupted build keeps
whole batches) and keeps only cases whose group, or else gold documents, are all ingested.
Prints the strength distributions and, per threshold, refusal recall, the share of answerable
cases that pass and balanced accuracy; agent/gate.py's DEFAULT_THRESHOLD records the choice.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agent.citations import SupportScorer
from agent.gate import gate
from evals.retrieval import build_eval_kb, eval_kb_name
from evals.sets import Case, EvalSet, load_set
from retrieval.embedders import load_embedder
from retrieval.kb import Library
from retrieval.paths import data_dir
from retrieval.search import HybridSearcher
from retrieval.types import Filters

SETS = ("rgb-zh", "xquad-en", "xquad-zh", "pubmedqa", "cmb-clin", "stard", "policyqa")
THRESHOLDS = np.round(np.arange(0.20, 0.80, 0.025), 3)
# Asked of the other set's knowledge base, a set's questions have no answer there.
OTHER_KB = {
    "xquad-en": "policyqa",
    "policyqa": "pubmedqa",
    "pubmedqa": "xquad-en",
    "xquad-zh": "stard",
    "stard": "cmb-clin",
    "cmb-clin": "stard",
}


def spread(cases: Sequence[Case], n: int) -> list[Case]:
    """`n` cases taken evenly through `cases` (all of them when there are fewer)."""
    if len(cases) <= n:
        return list(cases)
    return [cases[i * len(cases) // n] for i in range(n)]


def ingested_only(library: Library, kb: str, evalset: EvalSet, cases: list[Case]) -> list[Case]:
    """The cases whose group (or, without one, gold documents) the knowledge base holds whole."""
    stored = {d.doc_id for d in library.documents(kb)}
    want: Counter[str] = Counter()
    have: Counter[str] = Counter()
    with evalset.corpus.open(encoding="utf-8") as f:
        for doc in map(json.loads, f):
            want[doc["group"]] += 1
            have[doc["group"]] += doc["id"] in stored
    return [
        c
        for c in cases
        if (c.group and have[c.group] == want[c.group])
        or (not c.group and all(g in stored for g in c.gold_doc_ids))
    ]


@dataclass
class Strengths:
    """Gate strength per kind of case: rgb-zh refusals, uncovered questions, answerable by set."""

    refuse: list[float] = field(default_factory=list)
    uncovered: list[float] = field(default_factory=list)
    answerable: dict[str, list[float]] = field(default_factory=dict)


def strengths(args: argparse.Namespace) -> Strengths:
    library = Library(data_dir(args.data_dir))
    searcher = HybridSearcher(library)
    scorer = SupportScorer(load_embedder("bundled:e5"))
    out = Strengths()
    sets = {name: load_set(Path(args.evalsets) / name) for name in args.sets}
    kbs = {
        name: eval_kb_name(s, None) if args.no_build else build_eval_kb(library, s)
        for name, s in sets.items()
    }

    def strength(question: str, kb: str, group: str) -> float:
        hits = searcher.search(question, [kb], k=5, filters=Filters(group=group or None))
        return gate(question, hits, scorer).strength

    for name, evalset in sets.items():
        cases = [c for c in evalset.cases if c.answer_type == "refuse"]
        cases += spread([c for c in evalset.cases if c.gold_doc_ids], args.per_set)
        if args.no_build:
            cases = ingested_only(library, kbs[name], evalset, cases)
        for case in tqdm(cases, desc=name, unit="q"):
            value = strength(case.question, kbs[name], case.group)
            if case.answer_type == "refuse":
                out.refuse.append(value)
            else:
                out.answerable.setdefault(name, []).append(value)
        other = OTHER_KB.get(name)
        if other in kbs and args.uncovered:
            asked = spread([c for c in evalset.cases if c.gold_doc_ids], args.uncovered)
            for case in tqdm(asked, desc=f"{name} in {other}", unit="q"):
                out.uncovered.append(strength(case.question, kbs[other], ""))
    return out


def _pct(values: np.ndarray) -> str:
    return str(np.percentile(values, (10, 50, 90)).round(3)) if len(values) else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--evalsets",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "evalsets"),
    )
    ap.add_argument("--per-set", type=int, default=40, help="answerable cases per set")
    ap.add_argument("--uncovered", type=int, default=20, help="questions per set in another kb")
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--dump", help="also write the strengths to this JSON file")
    ap.add_argument("--data-dir")
    ap.add_argument("--no-build", action="store_true", help="use the kbs as they are")
    args = ap.parse_args()

    found = strengths(args)
    if args.dump:
        Path(args.dump).write_text(json.dumps(asdict(found)) + "\n", encoding="utf-8")
    r, u = np.array(found.refuse), np.array(found.uncovered)
    by_set = {k: np.array(v) for k, v in found.answerable.items()}
    if not len(u) or not by_set:
        raise SystemExit("no uncovered or no answerable cases were measured; see --help")
    a = np.concatenate(list(by_set.values()))
    print(f"refuse (rgb-zh) {len(r)}: strength p10/p50/p90 {_pct(r)}")
    print(f"uncovered (other set's kb) {len(u)}: p10/p50/p90 {_pct(u)}")
    for name, s in by_set.items():
        print(f"answerable {name} {len(s)}: p10/p50/p90 {_pct(s)}")
    print(f"answerable, all {len(a)}: p10/p50/p90 {_pct(a)}")
    print(
        "\n| threshold | rgb-zh refused | uncovered refused | answerable passed | balanced acc. |"
    )
    print("|---|---|---|---|---|")
    rows = []
    for t in THRESHOLDS:
        rec = float((r < t).mean()) if len(r) else float("nan")
        unc, ans = float((u < t).mean()), float((a >= t).mean())
        rows.append((t, unc, ans))
        print(f"| {t:.3f} | {rec:.3f} | {unc:.3f} | {ans:.3f} | {(unc + ans) / 2:.3f} |")
    t, unc, ans = max(rows, key=lambda row: row[1] + row[2])
    print(
        f"\nbest balanced accuracy (uncovered against answerable) {(unc + ans) / 2:.3f} at {t:.3f}"
    )
    passed = (f"{name} {float((s >= t).mean()):.2f}" for name, s in by_set.items())
    print("answerable passed per set there: " + ", ".join(passed))


if __name__ == "__main__":
    main()
