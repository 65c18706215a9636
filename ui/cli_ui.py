"""`citewise ui`: the chat UI and the HTTP API on one local web server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ui.settings import ServerSettings


def register(sub: Any) -> None:
    p = sub.add_parser("ui", help="web chat and HTTP API (OpenAI-compatible) on one server")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow binding beyond loopback without --password and --api-token",
    )
    p.add_argument("--username", help="login for the web UI (with --password)")
    p.add_argument("--password", help="password for the web UI (with --username)")
    p.add_argument("--api-token", help="bearer token required on /v1/*")
    p.add_argument("--config", help="agent config file (.toml or .json)")
    p.add_argument("--lm", help="LM spec: bundled:smollm2, a local folder, a .gguf, or an http URL")
    p.set_defaults(func=cmd_ui)


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """ServerSettings from the command line; ValueError when the binding would be unsafe."""
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        insecure=args.insecure,
        username=args.username,
        password=args.password,
        api_token=args.api_token,
    )
    if settings.exposed_without_auth:
        print(
            f"citewise: WARNING: --insecure: the {' and the '.join(settings.open_parts)} on "
            f"{settings.host}:{settings.port} can be used by anyone who can reach this machine",
            file=sys.stderr,
        )
    return settings


def cmd_ui(args: argparse.Namespace) -> int:
    from agent.config import AgentConfig
    from ui.server import serve

    settings = settings_from_args(args)
    serve(settings, AgentConfig.load(args.config, data_dir=args.data_dir, lm=args.lm))
    return 0
