"""The web server: one FastAPI app with the HTTP API under /v1 and the Gradio chat at "/"."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI

from agent import Agent
from agent.config import AgentConfig
from retrieval.paths import database_setting
from ui.settings import ServerSettings
from ui.users import UserStore


def create_app(agent: Agent, settings: ServerSettings, users: UserStore | None = None) -> FastAPI:
    """Compose the app. The API routes are registered before Gradio is mounted at "/", so they
    win; Gradio serves only its own files, never the data directory (blocked explicitly).

    With `settings.accounts`, logins and tokens are checked against `users` (default: the data
    directory's users.db); see ui/auth.py for who may do what in each mode."""
    import gradio as gr

    from ui.auth import Access, LoginGuard
    from ui.http.app import ERROR_HANDLERS, api_router
    from ui.web.chat import build_chat

    if settings.accounts and users is None:
        users = UserStore.for_data_dir(agent.data_dir, database_setting(agent.config.database_url))
    access = Access(settings, users)

    app = FastAPI(
        title="citewise",
        summary="Question answering over your own documents, every claim cited",
        description="OpenAI-compatible chat completions with citations, and document routes.",
        exception_handlers=ERROR_HANDLERS,
    )
    app.include_router(api_router(agent, settings, access))
    # The chat sets its own queue and concurrency limits (ui/web/chat.py): the model is shared.
    blocks = build_chat(agent, settings, access)
    app.add_middleware(LoginGuard, settings=settings)
    return gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=access.gradio_auth(),
        server_name=settings.host,
        server_port=settings.port,
        allowed_paths=[],
        blocked_paths=[str(agent.data_dir.resolve())],
        max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        enable_monitoring=False,
        mcp_server=False,
        ssr_mode=False,
        run_history=False,
        footer_links=[],
    )


def serve(settings: ServerSettings, agent_config: AgentConfig) -> None:
    """Build the agent (loads the models), then serve until interrupted. The port answers from
    the start: a loading page, then the chat (ui/loading.py)."""
    import uvicorn

    from ui.loading import loading_page

    with loading_page(settings.host, settings.port):
        agent = Agent(agent_config)
        try:
            app = create_app(agent, settings)
        except BaseException:
            agent.close()
            raise
    try:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        print(f"citewise: serving on http://{host}:{settings.port}  (API docs at /docs)")
        sys.stdout.flush()
        # proxy_headers=False: uvicorn would trust X-Forwarded-For from loopback; ui/clients.py
        # trusts it only from settings.trusted_proxies.
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            proxy_headers=False,
        )
    finally:
        agent.close()


@contextlib.contextmanager
def background_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` from a thread for tests and benchmarks; yields its base URL, stops on exit."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="citewise-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
