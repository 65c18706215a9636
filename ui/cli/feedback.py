"""`citewise feedback export`: rated answers as evaluation cases (evals/feedback.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.state import DialogueStore


def register(sub: Any) -> None:
    p = sub.add_parser("feedback", help="export rated answers")
    p_sub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    e = p_sub.add_parser("export", help="write rated turns as evaluation cases (JSON Lines)")
    e.add_argument("--out", help="cases.jsonl to write (default: standard output)")
    e.add_argument("--config", help="agent config file; its database_url, when set, is read")
    e.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from agent.config import AgentConfig
    from evals.feedback import feedback_cases

    location = AgentConfig.load(args.config, data_dir=args.data_dir).dialogue_location()
    if isinstance(location, Path) and not location.is_file():
        raise FileNotFoundError(
            f"no dialogue store at {location}: nothing has been rated yet (or pass --data-dir)"
        )
    with DialogueStore(location) as store:
        cases = feedback_cases(store)
    lines = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases)
    if args.out:
        Path(args.out).write_text(lines, encoding="utf-8")
        print(f"wrote {len(cases)} cases to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return 0
