"""The page `citewise ui` serves while it loads (ui/loading.py): the chat address says so and
reloads, the API and /openapi.json answer 503 with Retry-After, a taken port is one clear line,
and the port is free for the real server once the block ends."""

from __future__ import annotations

import socket

import httpx
import pytest

from ui.loading import loading_page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_port_answers_while_loading_and_is_handed_over() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with loading_page("127.0.0.1", port):
        page = httpx.get(url + "/")
        assert page.status_code == 200 and "citewise is starting" in page.text
        assert '<meta http-equiv="refresh"' in page.text and "正在加载" in page.text
        for method, path in (("GET", "/openapi.json"), ("POST", "/v1/chat/completions")):
            busy = httpx.request(method, url + path)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
            assert busy.json()["error"]["type"] == "loading"
    with socket.socket() as s:  # the real server can bind the port now
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_one_line_naming_the_option() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match="--port") as err, loading_page("127.0.0.1", port):
            pass
    assert "\n" not in str(err.value)
