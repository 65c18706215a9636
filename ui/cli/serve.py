"""`citewise ui`: the chat UI and the HTTP API on one local web server."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
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
    p.add_argument(
        "--username", help="login for the web UI (with a password; or $CITEWISE_USERNAME)"
    )
    p.add_argument(
        "--password",
        help="password for the web UI (visible to `ps`: prefer --password-file or "
        "$CITEWISE_PASSWORD)",
    )
    p.add_argument("--password-file", help="read the UI password from this file's first line")
    p.add_argument(
        "--api-token",
        help="bearer token required on /v1/* and as the UI password (visible to `ps`: prefer "
        "--api-token-file or $CITEWISE_API_TOKEN)",
    )
    p.add_argument("--api-token-file", help="read the API token from this file's first line")
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="reverse proxy (address or network) whose X-Forwarded-For is believed; repeatable",
    )
    p.add_argument("--config", help="agent config file (.toml or .json)")
    p.add_argument("--lm", help="LM spec: bundled:smollm2, a local folder, a .gguf, or an http URL")
    p.set_defaults(func=cmd_ui)


def secret(flag: str | None, file: str | None, env: str) -> str | None:
    """A password or token from its flag, else the first line of its file, else `$env`."""
    if flag:
        return flag
    if file:
        path = Path(file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"secret file {path} not found")
        value = (
            path.read_text(encoding="utf-8").splitlines()[0].strip() if path.stat().st_size else ""
        )
        if not value:
            raise ValueError(f"secret file {path} is empty")
        return value
    return os.environ.get(env) or None


def settings_from_args(args: argparse.Namespace, accounts: bool = False) -> ServerSettings:
    """ServerSettings from the command line; ValueError when the binding would be unsafe.
    `accounts`: user accounts exist in the data directory (`citewise users`)."""
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        insecure=args.insecure,
        username=args.username or os.environ.get("CITEWISE_USERNAME") or None,
        password=secret(args.password, args.password_file, "CITEWISE_PASSWORD"),
        api_token=secret(args.api_token, args.api_token_file, "CITEWISE_API_TOKEN"),
        trusted_proxies=tuple(args.trusted_proxy),
        accounts=accounts,
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
    from retrieval.paths import data_dir, database_setting
    from ui.server import serve
    from ui.users import UserStore

    config = AgentConfig.load(
        args.config,
        data_dir=args.data_dir,
        lm=args.lm,
        store=args.store,
        database_url=args.database_url,
    )
    accounts = UserStore.for_data_dir(
        data_dir(config.data_dir), database_setting(config.database_url)
    ).has_users()
    settings = settings_from_args(args, accounts)
    serve(settings, config)
    return 0


def register_lm_server(sub: Any) -> None:
    p = sub.add_parser(
        "serve-lm", help="one local model as an OpenAI-compatible server (for a model pool)"
    )
    p.add_argument("--lm", default="bundled:smollm2", help="bundled:NAME, a local folder or .gguf")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    p.add_argument(
        "--lm-backend",
        choices=("auto", "llama.cpp", "transformers"),
        default="auto",
        help="how a GGUF runs (README, 'llama.cpp backend')",
    )
    p.add_argument(
        "--insecure", action="store_true", help="allow binding beyond loopback (it has no auth)"
    )
    p.set_defaults(func=cmd_serve_lm)


def cmd_serve_lm(args: argparse.Namespace) -> int:
    import uvicorn

    from agent.lm import load_lm
    from retrieval.embedders import default_cache_dir
    from ui.http.lm_server import lm_app

    if args.lm.startswith(("http://", "https://", "openai:")) or "," in args.lm:
        raise ValueError("serve-lm serves a local model: give --lm bundled:NAME, a folder or .gguf")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.insecure:
        raise ValueError(
            f"--host {args.host}: the model server has no authentication; keep it on loopback "
            "behind your own proxy, or pass --insecure on a network you trust"
        )
    lm = load_lm(
        args.lm,
        cache_dir=default_cache_dir() / "models",
        device=args.device,
        backend=args.lm_backend,
    )
    print(f"citewise: serving {lm.name} at http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(lm_app(lm, lm.name), host=args.host, port=args.port, log_level="warning")
    return 0
