"""While `citewise ui` loads its models and indexes, its port already answers: the chat address
serves a page that says so and reloads itself, everything else (the HTTP API, /openapi.json) a
503 with Retry-After. Standard library only, so it is up a fraction of a second after the
command starts; the real server takes the port over when the agent is ready."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>citewise is starting</title></head>
<body style="font-family: sans-serif; margin: 4em auto; max-width: 36em; color: #333">
<h1>citewise is starting</h1>
<p>Loading the models and knowledge bases; this page reloads itself and the chat opens when they
are ready.</p>
<p lang="zh">正在加载模型和知识库，准备好后本页会自动打开对话。</p>
</body></html>
""".encode()
RETRY_AFTER_S = 2
# The shape of the HTTP API's own errors (ui/http/app.py), so a client reads it the same way.
BUSY = json.dumps(
    {
        "error": {
            "message": "citewise is loading its models; retry in a few seconds",
            "type": "loading",
            "code": 503,
        }
    }
).encode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "citewise"

    def do_GET(self) -> None:  # http.server's naming
        if self.path.split("?", 1)[0] in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", PAGE)
        else:
            self._send(503, "application/json", BUSY)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self._send(503, "application/json", BUSY)

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status == 503:
            self.send_header("Retry-After", str(RETRY_AFTER_S))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a user waiting for the chat is not news


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


@contextlib.contextmanager
def loading_page(host: str, port: int) -> Iterator[None]:
    """Answer on host:port until the block ends (the real server binds right after)."""
    try:
        server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
    except OSError as e:
        raise ValueError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); is another server using that "
            "port? Pick another with --port"
        ) from None
    thread = threading.Thread(target=server.serve_forever, name="citewise-loading", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
