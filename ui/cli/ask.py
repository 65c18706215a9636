"""`citewise ask | chat | router`: the agent from the command line."""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from agent.types import Done, Reply, Retrieved, Rewritten, Routed, Token


def register(sub: Any) -> None:
    for name, help_text in (
        ("ask", "answer one message, with citations"),
        ("chat", "terminal chat"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--kb", action="append", help="knowledge base (repeatable; default: router decides)"
        )
        p.add_argument("--session", help="continue this session id")
        p.add_argument("--config", help="agent config file (.toml or .json)")
        p.add_argument(
            "--lm", help="LM spec: bundled:smollm2, a local folder, a .gguf, or an http URL"
        )
        if name == "ask":
            p.add_argument("--json", action="store_true", help="print the Reply as JSON")
            p.add_argument("message")
            p.set_defaults(func=cmd_ask)
        else:
            p.set_defaults(func=cmd_chat)

    r = sub.add_parser("router", help="train or evaluate the intent/domain router")
    r_sub = r.add_subparsers(dest="router_command", required=True, metavar="ACTION")
    t = r_sub.add_parser("train", help="fine-tune the router on a labelled JSONL")
    t.add_argument("--data", help="labelled queries (default: the shipped starting set)")
    t.add_argument("--out", help="folder to save to (default: <data-dir>/router)")
    t.add_argument("--epochs", type=int, help="default: chosen by the model kind")
    t.set_defaults(func=cmd_router_train)
    e = r_sub.add_parser("eval", help="accuracy and macro-F1 on the held-aside split")
    e.add_argument("--data", help="labelled queries (default: the shipped starting set)")
    e.add_argument(
        "--router", help="trained router folder (default: <data-dir>/router, else prototypes)"
    )
    e.set_defaults(func=cmd_router_eval)


def _config(args: argparse.Namespace) -> Any:
    """The agent's configuration: read without loading any model."""
    from agent.config import AgentConfig

    return AgentConfig.load(
        args.config,
        data_dir=args.data_dir,
        lm=args.lm,
        kbs=args.kb,
        store=args.store,
        database_url=args.database_url,
    )


def _check_session(config: Any, session: str | None) -> None:
    """SessionNotFoundError for an unknown --session, before any model is loaded (as the HTTP
    API answers 404): continuing a session never creates one by that name."""
    if session is None:
        return
    from agent.state import DialogueStore

    with DialogueStore(config.dialogue_location()) as store:
        store.session(session)


def _agent(config: Any) -> Any:
    from agent import Agent

    return Agent(config)


def _squash(text: str) -> str:
    """`text` without its [n] markers and spaces, to compare a quote with the answer."""
    return "".join(re.sub(r"\[\d+\]", "", text).split())


def _print_reply(reply: Reply) -> None:
    for c in reply.citations:
        mark = "" if c.verified else "  (unverified)"
        print(f"  [{c.n}] {c.kb}/{c.doc_id} {c.title}{mark}")
        if c.supporting_text and _squash(c.supporting_text) not in _squash(reply.answer):
            # A short answer ("1773 [1].") is checked against the sentence it was read from.
            print(f"      \u201c{textwrap.shorten(c.supporting_text, 240, placeholder=' …')}\u201d")
    for n in reply.notices:
        print(f"  ! {n.text}")


def cmd_ask(args: argparse.Namespace) -> int:
    from agent.limits import check_message

    config = _config(args)
    check_message(args.message, config.max_message_chars)  # before minutes of model loading
    _check_session(config, args.session)
    agent = _agent(config)
    try:
        if args.json:
            reply = agent.ask(args.message, args.session)
            print(json.dumps(reply.to_json(), ensure_ascii=False, indent=2))
        else:
            _stream_turn(agent, args.message, args.session)
    finally:
        agent.close()
    return 0


def _stream_turn(agent: Any, message: str, session: str | None) -> None:
    """Print one streamed turn: progress on stderr, the answer as it comes, then the checked
    answer when verification changed it, its citations and notices. Ctrl-C stops the answer
    (the turn is kept, marked interrupted) and not the program."""
    events = agent.stream(message, session)
    streamed = ""
    try:
        for event in events:
            if isinstance(event, Rewritten) and event.query != message:
                print(f"  (searching for: {event.query})", file=sys.stderr)
            elif isinstance(event, Routed):
                route = event.route
                kbs = ", ".join(route.kbs) or "-"
                print(f"  (route: {route.intent}/{route.domain} -> {kbs})", file=sys.stderr)
            elif isinstance(event, Retrieved):
                print(f"  ({len(event.hits)} passages)", file=sys.stderr)
            elif isinstance(event, Token):
                streamed += event.text
                print(event.text, end="", flush=True)
            elif isinstance(event, Done):
                print()
                if event.reply.answer != streamed.strip():
                    print(f"\nchecked answer: {event.reply.answer}")
                _print_reply(event.reply)
    except KeyboardInterrupt:
        events.close()
        print("\n  (stopped)", file=sys.stderr)


def cmd_chat(args: argparse.Namespace) -> int:
    from agent.limits import check_message

    config = _config(args)
    _check_session(config, args.session)
    agent = _agent(config)
    session = args.session or agent.new_session("chat")
    print(f"session {session}; empty line or Ctrl-D to quit", file=sys.stderr)
    try:
        while True:
            try:
                message = input("\nyou> ").strip()
            except EOFError:
                return 0
            if not message:
                return 0
            try:
                check_message(message, config.max_message_chars)
            except ValueError as e:
                print(f"  ({e})", file=sys.stderr)
                continue
            _stream_turn(agent, message, session)
    finally:
        agent.close()


def _data_file(args: argparse.Namespace) -> Path:
    from agent.router import DEFAULT_DATA

    return Path(args.data) if args.data else DEFAULT_DATA


def cmd_router_train(args: argparse.Namespace) -> int:
    from agent.router_train import format_metrics, train_router
    from retrieval.paths import data_dir

    out = Path(args.out) if args.out else data_dir(args.data_dir) / "router"
    metrics = train_router(_data_file(args), out, epochs=args.epochs)
    print(format_metrics(metrics))
    print(f"saved to {out}", file=sys.stderr)
    return 0


def cmd_router_eval(args: argparse.Namespace) -> int:
    from agent.router import load_router
    from agent.router_train import evaluate_router, format_metrics
    from retrieval.embedders import load_embedder
    from retrieval.paths import data_dir

    folder = Path(args.router) if args.router else data_dir(args.data_dir) / "router"
    router = load_router(folder, load_embedder("bundled:e5"))
    print(format_metrics(evaluate_router(router, _data_file(args))))
    return 0
