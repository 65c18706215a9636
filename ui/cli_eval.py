"""`citewise eval ...`: offline evaluation from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    ev = sub.add_parser("eval", help="offline evaluation")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    r = ev_sub.add_parser("retrieval", help="recall@1/5/10, MRR, nDCG@10 per retrieval mode")
    r.add_argument("--set", action="append", required=True, help="folder with corpus/cases.jsonl")
    r.add_argument("--limit", type=int, help="first N cases only")
    r.add_argument("--embedder", help="embedder spec (default: by the set's language)")
    r.add_argument("--modes", default="dense,lexical,hybrid")
    r.add_argument("--json", action="store_true", help="JSON lines instead of a Markdown table")
    r.add_argument("--tune", action="store_true", help="also score a grid of fusion weights")
    r.set_defaults(func=cmd_eval_retrieval)


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from evals.retrieval import build_eval_kb, run_retrieval
    from evals.sets import load_set
    from retrieval.kb import Library
    from retrieval.paths import data_dir
    from retrieval.search import HybridSearcher

    library = Library(data_dir(args.data_dir))
    searcher = HybridSearcher(library)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results = []
    for folder in args.set:
        evalset = load_set(folder, limit=args.limit)
        kb = build_eval_kb(library, evalset, args.embedder)
        results.extend(run_retrieval(searcher, evalset, kb, modes, tune=args.tune))
    if args.json:
        for r in results:
            print(json.dumps({"set": r.set_name, "mode": r.mode, "cases": r.cases, **r.metrics}))
        return 0
    print("| set | mode | cases | recall@1 | recall@5 | recall@10 | MRR | nDCG@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        m = r.metrics
        print(
            f"| {r.set_name} | {r.mode} | {r.cases} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | "
            f"{m['recall@10']:.3f} | {m['mrr']:.3f} | {m['ndcg@10']:.3f} |"
        )
    return 0
