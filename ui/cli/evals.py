"""`citewise eval ...`: offline evaluation from the command line."""

from __future__ import annotations

import argparse
import json
import sys
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
    r.add_argument(
        "--rerank", choices=["evidence"], help="also score hybrid reordered by this reranker"
    )
    r.add_argument("--rerank-weight", type=float, default=0.35, help="the reranker's share")
    r.set_defaults(func=cmd_eval_retrieval)
    run = ev_sub.add_parser("run", help="every case through the agent: answers, citations, timings")
    run.add_argument("--set", required=True, help="folder with corpus.jsonl and cases.jsonl")
    run.add_argument("--config", help="agent config .toml/.json (default: the defaults)")
    run.add_argument("--limit", type=int, help="N cases evenly spaced through the set")
    run.add_argument("--out", help="run folder (default: eval-runs/<set>-<config hash>-<limit>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_eval_run)
    rep = ev_sub.add_parser("report", help="Markdown + self-contained HTML report of runs")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    rep.add_argument("--out", help="report folder (default: the run folder when there is one)")
    rep.set_defaults(func=cmd_eval_report)
    cmp = ev_sub.add_parser(
        "compare", help="metric deltas with bootstrap intervals; gates exit non-zero"
    )
    cmp.add_argument("base", metavar="RUN_A")
    cmp.add_argument("new", metavar="RUN_B", nargs="?", help="omit to gate one run")
    cmp.add_argument(
        "--fail-below", action="append", default=[], metavar="METRIC=VALUE",
        help="fail when RUN_B's (or the one run's) metric is below VALUE (repeatable)",
    )  # fmt: skip
    cmp.add_argument(
        "--fail-regression", action="append", default=[], metavar="METRIC=DELTA",
        help="fail when the metric got worse by more than DELTA (repeatable)",
    )  # fmt: skip
    cmp.add_argument("--samples", type=int, default=1000, help="bootstrap samples")
    cmp.add_argument("--seed", type=int, default=0)
    cmp.set_defaults(func=cmd_eval_compare)
    rt = ev_sub.add_parser("router", help="router accuracy, macro-F1, confusion as a report")
    rt.add_argument("--data", help="labelled queries (default: the shipped starting set)")
    rt.add_argument("--router", help="trained router folder (default: <data-dir>/router)")
    rt.add_argument("--split", default="test")
    rt.add_argument("--out", default="eval-runs/router", help="report folder")
    rt.set_defaults(func=cmd_eval_router)


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from evals.retrieval import build_eval_kb, evidence_reranker, run_retrieval
    from evals.sets import load_set
    from retrieval.kb import Library
    from retrieval.paths import data_dir, database_setting, store_setting
    from retrieval.search import HybridSearcher

    library = Library(
        data_dir(args.data_dir),
        store=store_setting(args.store),
        database_url=database_setting(args.database_url),
    )
    searcher = HybridSearcher(library)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    reranker = None
    if args.rerank == "evidence":
        reranker = evidence_reranker(library, args.rerank_weight)
    results = []
    for folder in args.set:
        evalset = load_set(folder, limit=args.limit)
        kb = build_eval_kb(library, evalset, args.embedder)
        results.extend(
            run_retrieval(searcher, evalset, kb, modes, tune=args.tune, reranker=reranker)
        )
    if args.json:
        for r in results:
            print(json.dumps({"set": r.set_name, "mode": r.mode, "cases": r.cases, **r.metrics}))
        return 0
    print("| set | mode | cases | recall@1 | recall@5 | recall@10 | hit@5 | MRR | nDCG@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m = r.metrics
        print(
            f"| {r.set_name} | {r.mode} | {r.cases} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | "
            f"{m['recall@10']:.3f} | {m['hit@5']:.3f} | {m['mrr']:.3f} | {m['ndcg@10']:.3f} |"
        )
    return 0


def cmd_eval_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agent.config import AgentConfig
    from evals.run import default_run_dir, run_eval

    config = AgentConfig.load(
        args.config, data_dir=args.data_dir, store=args.store, database_url=args.database_url
    )
    out = Path(args.out) if args.out else default_run_dir(args.set, config, args.limit)
    summary = run_eval(args.set, config, out, limit=args.limit, progress=not args.quiet)
    print(f"{out}: {summary['n']} cases")
    for name, value in summary["metrics"].items():
        print(f"  {name:28s} {value:.4f}")
    return 0


def cmd_eval_report(args: argparse.Namespace) -> int:
    from evals.report import build_report

    if not args.out and len(args.runs) > 1:
        raise ValueError("several runs make one report: pass --out FOLDER")
    md, page = build_report(args.runs, args.out or args.runs[0])
    print(f"{md}\n{page}")
    return 0


def cmd_eval_compare(args: argparse.Namespace) -> int:
    from evals.compare import compare_runs, parse_gates

    text, failures = compare_runs(
        args.base,
        args.new,
        below=parse_gates(args.fail_below),
        regression=parse_gates(args.fail_regression),
        samples=args.samples,
        seed=args.seed,
    )
    print(text)
    for failure in failures:
        print(f"GATE FAILED: {failure.message}", file=sys.stderr)
    return 1 if failures else 0


def cmd_eval_router(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agent.router import DEFAULT_DATA, load_router
    from evals.router_report import router_report
    from retrieval.embedders import load_embedder
    from retrieval.paths import data_dir

    folder = Path(args.router) if args.router else data_dir(args.data_dir) / "router"
    router = load_router(folder, load_embedder("bundled:e5"))
    data = Path(args.data) if args.data else DEFAULT_DATA
    summary = router_report(router, data, Path(args.out), args.split)
    for name, value in summary["metrics"].items():
        print(f"  {name:36s} {value:.4f}")
    print(f"{args.out}/report.html")
    return 0
