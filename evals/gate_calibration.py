"""Choose the evidence-gate threshold by measurement: refusal cases against answerable ones.

    python -m evals.gate_calibration [--per-set 60]

Refusal cases are rgb-zh's `refuse` cases (their group holds only passages that do not answer);
answerable cases come from every set with gold documents. Prints the strength distribution and the
threshold with the best balanced accuracy; agent/gate.py's DEFAULT_THRESHOLD records the choice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agent.citations import SupportScorer
from agent.gate import gate
from evals.retrieval import build_eval_kb
from evals.sets import load_set
from retrieval.embedders import load_embedder
from retrieval.kb import Library
from retrieval.paths import data_dir
from retrieval.search import HybridSearcher
from retrieval.types import Filters

SETS = ("rgb-zh", "xquad-en", "xquad-zh", "pubmedqa", "cmb-clin", "stard", "policyqa")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--evalsets",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "evalsets"),
    )
    ap.add_argument("--per-set", type=int, default=60, help="answerable cases per set")
    ap.add_argument("--data-dir")
    args = ap.parse_args()

    library = Library(data_dir(args.data_dir))
    searcher = HybridSearcher(library)
    scorer = SupportScorer(load_embedder("bundled:e5"))
    refuse: list[float] = []
    answerable: list[float] = []
    for name in SETS:
        evalset = load_set(Path(args.evalsets) / name)
        kb = build_eval_kb(library, evalset)
        cases = [c for c in evalset.cases if c.answer_type == "refuse"]
        cases += [c for c in evalset.cases if c.gold_doc_ids][: args.per_set]
        for case in tqdm(cases, desc=name, unit="q"):
            hits = searcher.search(
                case.question, [kb], k=5, filters=Filters(group=case.group or None)
            )
            strength = gate(case.question, hits, scorer).strength
            (refuse if case.answer_type == "refuse" else answerable).append(strength)
    r, a = np.array(refuse), np.array(answerable)
    print(f"refuse cases {len(r)}: strength p10/p50/p90 {np.percentile(r, [10, 50, 90]).round(3)}")
    print(f"answerable {len(a)}: strength p10/p50/p90 {np.percentile(a, [10, 50, 90]).round(3)}")
    print("| threshold | refusal recall | answer rate (answerable) | balanced accuracy |")
    print("|---|---|---|---|")
    best = (0.0, 0.0)
    for t in np.arange(0.20, 0.80, 0.025):
        rec, ans = float((r < t).mean()), float((a >= t).mean())
        best = max(best, ((rec + ans) / 2, float(t)))
        print(f"| {t:.3f} | {rec:.3f} | {ans:.3f} | {(rec + ans) / 2:.3f} |")
    print(f"best balanced accuracy {best[0]:.3f} at threshold {best[1]:.3f}")


if __name__ == "__main__":
    main()
