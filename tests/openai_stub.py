"""A small OpenAI-style server in this process, on 127.0.0.1 only, for the HTTP LM's tests.

It echoes the question word by word (`"slow"`: up to SLOW_PIECES ticks, 20 ms apart), streams
like vLLM, and model "broken" answers HTTP 500: a stand-in to force the client's cases, not a model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_PIECES = 200  # the "slow" reply: at most 200 pieces, 20 ms apart (4 s if nobody stops it)


class FakeServer(ThreadingHTTPServer):
    """Serves /v1/models and /v1/chat/completions like vLLM; records what it was sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.pieces_sent = 0
        self.client_left = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "fake-model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        question = body["messages"][-1]["content"]
        if body["model"] == "broken":
            self._json(500, {"error": {"message": "the model exploded"}})
            return
        if question == "slow":
            words, delay = ["tick "] * SLOW_PIECES, 0.02
        else:
            words, delay = [f"{w} " for w in f"echo: {question}".split()], 0.0
        finish = "length" if len(words) > body["max_tokens"] else "stop"
        words = words[: body["max_tokens"]]
        if not body["stream"]:
            self._json(
                200,
                {
                    "choices": [
                        {"message": {"role": "assistant", "content": "".join(words)}, "index": 0}
                    ]
                },
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events: list[dict[str, object]] = [
            {"choices": [{"index": 0, "delta": {"content": w}}]} for w in words
        ]
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        events.append(
            {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": len(words)}}
        )
        try:
            for event in events:
                self._chunk(f"data: {json.dumps(event)}\n\n".encode())
                self.server.pieces_sent += 1
                time.sleep(delay)
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.server.client_left.set()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serving() -> Iterator[FakeServer]:
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
