"""OpenAICompatibleLM against a small OpenAI-style server in this process, on 127.0.0.1 only."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from openai_stub import SLOW_PIECES, FakeServer, serving

from agent.lm import load_lm
from agent.lm_http import OpenAICompatibleLM
from agent.protocols import CancelToken, GenerationStats, LMError


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with serving() as srv:
        yield srv


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_streaming_yields_pieces_and_reports_usage(server: FakeServer) -> None:
    lm = OpenAICompatibleLM(server.url + "/v1/", model="fake-model")
    stats: list[GenerationStats] = []
    pieces = list(lm.stream(ask("hello there"), max_new_tokens=50, stats=stats))
    assert pieces == ["echo: ", "hello ", "there "]
    assert stats == [GenerationStats(11, 3, stats[0].ttft_s, stats[0].total_s, "eos")]
    sent = server.requests[0]
    assert sent["stream"] is True and sent["temperature"] == 0 and sent["max_tokens"] == 50
    assert sent["messages"] == ask("hello there") and sent["model"] == "fake-model"


def test_length_finish_is_reported_as_max_tokens(server: FakeServer) -> None:
    lm = OpenAICompatibleLM(server.url, model="fake-model")
    stats: list[GenerationStats] = []
    assert "".join(lm.stream(ask("a b c d e"), max_new_tokens=2, stats=stats)) == "echo: a "
    assert stats[0].stopped == "max_tokens"


def test_model_is_asked_of_the_server_when_not_given(server: FakeServer) -> None:
    lm = load_lm("openai:" + server.url + "/v1", model="", cache_dir=None, device=None)
    assert isinstance(lm, OpenAICompatibleLM)
    assert lm.generate_batch([ask("hi")]) == ["echo: hi "]
    assert server.requests[0]["model"] == "fake-model"
    assert lm.name == f"{server.url}/v1#fake-model"


def test_batch_runs_concurrently_and_keeps_order(server: FakeServer) -> None:
    lm = OpenAICompatibleLM(server.url, model="fake-model", max_workers=3)
    questions = [f"question {i}" for i in range(7)]
    answers = lm.generate_batch([ask(q) for q in questions], max_new_tokens=20)
    assert answers == [f"echo: {q} " for q in questions]
    assert all(r["stream"] is False for r in server.requests)


def test_cancel_mid_stream_closes_the_connection(server: FakeServer) -> None:
    lm = OpenAICompatibleLM(server.url, model="fake-model")
    cancel, stats = CancelToken(), list[GenerationStats]()
    pieces = []
    for piece in lm.stream(ask("slow"), max_new_tokens=500, cancel=cancel, stats=stats):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.cancel()
    assert len(pieces) == 3 and stats[0].stopped == "cancelled"
    assert server.client_left.wait(timeout=5)  # the server's next write found the client gone
    assert server.pieces_sent < SLOW_PIECES


def test_time_limit_closes_the_stream(server: FakeServer) -> None:
    lm = OpenAICompatibleLM(server.url, model="fake-model")
    stats: list[GenerationStats] = []
    pieces = list(lm.stream(ask("slow"), max_new_tokens=500, time_limit_s=0.2, stats=stats))
    assert stats[0].stopped == "time_limit" and 0 < len(pieces) < SLOW_PIECES
    assert stats[0].total_s < 2


def test_closing_the_generator_closes_the_connection(server: FakeServer) -> None:
    lm = OpenAICompatibleLM(server.url, model="fake-model")
    stats: list[GenerationStats] = []
    stream = lm.stream(ask("slow"), max_new_tokens=500, stats=stats)
    assert next(stream) == "tick "
    stream.close()
    assert stats[0].stopped == "cancelled"
    assert server.client_left.wait(timeout=5)


def test_server_error_names_status_and_body(server: FakeServer) -> None:
    lm = OpenAICompatibleLM(server.url, model="broken")
    with pytest.raises(LMError, match=r"HTTP 500: .*the model exploded"):
        list(lm.stream(ask("hi")))
    with pytest.raises(LMError, match="HTTP 500"):
        lm.generate_batch([ask("hi")])


def test_refused_connection_says_which_url_and_what_to_check() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lm = OpenAICompatibleLM(f"http://127.0.0.1:{port}/v1", model="m", timeout=5)
    with pytest.raises(
        LMError, match=rf"127.0.0.1:{port}/v1/chat/completions.*is the server running"
    ):
        list(lm.stream(ask("hi")))


def test_bad_arguments_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="http://host"):
        OpenAICompatibleLM("localhost:8000")
    with pytest.raises(ValueError, match="server's URL"):
        load_lm("openai:localhost:8000")
    with pytest.raises(ValueError, match="OpenAI-compatible server"):
        load_lm("bundled:smollm2", model="qwen")
    lm = OpenAICompatibleLM("http://127.0.0.1:9/v1", model="m")
    assert lm.count_tokens("") == 0 and lm.count_tokens("依法成立的合同") == 6
