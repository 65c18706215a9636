"""Measure follow-up rewriting on the cases whose `reference` holds the standalone question.

    python -m evals.rewrite_eval [--set evals/newcomer] [--set evals/newcomer-holdout] [--lm SPEC]

For each follow-up (a case with history), the agent's rewrite step runs with the real LM: how
often the LM's rewrite passes its checks (agent/rewrite.py `plausible`) instead of falling back to
"previous question + message", and token F1 of the rewrite against the question a person wrote.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from agent.rewrite import last_user_question, rewrite
from evals.answer_metrics import token_f1
from evals.sets import load_set


def measure(lm: object, folders: Sequence[Path]) -> dict[str, float]:
    accepted = n = 0
    f1_lm: list[float] = []
    f1_fallback: list[float] = []
    for folder in folders:
        for case in load_set(folder).cases:
            if not (case.history and case.reference):
                continue
            n += 1
            query, _ = rewrite(lm, case.question, case.history)  # type: ignore[arg-type]
            joiner = "" if case.lang == "zh" else " "
            fallback = f"{last_user_question(case.history)}{joiner}{case.question}".strip()
            accepted += query != fallback
            f1_lm.append(token_f1(query, [case.reference], case.lang))
            f1_fallback.append(token_f1(fallback, [case.reference], case.lang))
            print(f"{case.id}: {query!r}{'' if query != fallback else '  (fallback)'}")
    return {
        "follow_ups": n,
        "lm_rewrite_accepted": round(accepted / max(n, 1), 3),
        "f1_vs_reference": round(sum(f1_lm) / max(n, 1), 3),
        "f1_of_concatenation": round(sum(f1_fallback) / max(n, 1), 3),
    }


def main(argv: Sequence[str] | None = None) -> None:
    from agent.lm import load_lm
    from retrieval.embedders import default_cache_dir

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    here = Path(__file__).parent
    ap.add_argument("--set", action="append", type=Path, dest="sets")
    ap.add_argument("--lm", default="bundled:smollm2")
    args = ap.parse_args(argv)
    sets = args.sets or [here / "newcomer", here / "newcomer-holdout"]
    lm = load_lm(args.lm, device="cpu", cache_dir=default_cache_dir() / "models")
    print(measure(lm, sets))


if __name__ == "__main__":
    main()
