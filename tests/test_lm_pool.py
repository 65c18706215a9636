"""The model pool (agent/lm_pool.py) over real model servers: `citewise serve-lm` processes with
SmolLM2 on loopback. The stand-in server (tests/openai_stub.py) only forces faults the real ones
cannot be made to show on cue: HTTP 500 and a server that never answers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from openai_stub import serving

from agent.lm_http import OpenAICompatibleLM
from agent.lm_pool import LMPool
from agent.protocols import LMError
from agent.types import Token

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LONG = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def lm_server() -> Iterator[tuple[subprocess.Popen, str]]:
    """A `citewise serve-lm` process serving SmolLM2 on a free loopback port."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ui.cli", "serve-lm", "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url + "/models", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve-lm on port {port} did not start") from None
                time.sleep(0.3)
        yield proc, url
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[str, str]]:
    with lm_server() as (_, a), lm_server() as (_, b):
        yield a, b


def test_concurrent_answers_go_to_the_least_busy_server(two_servers) -> None:
    pool = LMPool([OpenAICompatibleLM(u) for u in two_servers])
    first = pool.stream(LONG, max_new_tokens=100)
    next(first)
    second = pool.stream(LONG, max_new_tokens=100)
    next(second)
    assert [m.in_flight for m in pool.members] == [1, 1]  # one each, not two on one
    first.close()
    second.close()
    assert [m.in_flight for m in pool.members] == [0, 0]
    assert "".join(pool.stream(LONG, max_new_tokens=5))  # a closed stream leaves both free


def test_a_server_killed_mid_answer_ends_that_turn_and_the_next_goes_to_the_other(
    two_servers, education_data_dir, tmp_path
) -> None:
    from agent import Agent

    data = tmp_path / "data"
    shutil.copytree(education_data_dir, data)
    with lm_server() as (doomed, doomed_url):
        agent = Agent.from_config(
            {
                "data_dir": str(data),
                "device": "cpu",
                "lm": [doomed_url, two_servers[0]],
                "max_new_tokens": 48,
            }
        )
        pool = agent.lm
        assert isinstance(pool, LMPool)
        pool.members.sort(key=lambda m: m.lm.base_url != doomed_url.removesuffix("/v1"))
        sid = agent.new_session("pool")
        events = agent.stream("When did Scheele discover oxygen?", sid)
        with pytest.raises(LMError, match="server still running"):
            for event in events:
                if isinstance(event, Token) and pool.members[0].in_flight:
                    doomed.kill()  # the server writing this answer dies mid-answer
        turn = agent.history(sid)[-1]
        assert turn.interrupted and turn.user_text == "When did Scheele discover oxygen?"
        assert pool.members[0].down_until > time.monotonic()
        reply = agent.ask("When did Scheele discover oxygen?", sid)  # the other server answers
        assert reply.answer and not reply.interrupted
        assert len(agent.history(sid)) == 2
        agent.close()


def test_a_failing_server_is_skipped_before_the_answer_and_retried_later() -> None:
    with serving() as stub:
        broken = OpenAICompatibleLM(stub.url, model="broken")  # answers HTTP 500
        good = OpenAICompatibleLM(stub.url, model="fake-model")
        pool = LMPool([broken, good], retry_after_s=0.3)
        assert "".join(pool.stream([{"role": "user", "content": "hi"}])) == "echo: hi "
        assert pool.members[0].down_until > 0 and "HTTP 500" in pool.members[0].last_error
        before = len(stub.requests)
        pool.generate_batch([[{"role": "user", "content": "again"}]])
        assert [r["model"] for r in stub.requests[before:]] == ["fake-model"]  # skipped
        time.sleep(0.35)
        before = len(stub.requests)
        "".join(pool.stream([{"role": "user", "content": "later"}]))
        assert stub.requests[before]["model"] == "broken"  # tried again after retry_after_s


def test_a_server_that_never_answers_times_out_and_is_skipped() -> None:
    with socket.socket() as silent, serving() as stub:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        mute = OpenAICompatibleLM(f"http://127.0.0.1:{silent.getsockname()[1]}", "m", timeout=0.5)
        pool = LMPool([mute, OpenAICompatibleLM(stub.url, model="fake-model")])
        started = time.monotonic()
        assert "".join(pool.stream([{"role": "user", "content": "hi"}])) == "echo: hi "
        assert time.monotonic() - started < 5


def test_with_every_server_down_a_turn_fails_at_once_with_one_message() -> None:
    ports = [free_port(), free_port()]
    pool = LMPool([OpenAICompatibleLM(f"http://127.0.0.1:{p}/v1", "m") for p in ports])
    started = time.monotonic()
    with pytest.raises(LMError, match="every model server in the pool failed") as e:
        list(pool.stream([{"role": "user", "content": "hi"}]))
    assert all(str(p) in str(e.value) for p in ports) and time.monotonic() - started < 5
    with pytest.raises(LMError, match="every model server"):  # both down: still no wait
        pool.generate_batch([[{"role": "user", "content": "hi"}]])


def test_a_pool_is_configured_as_a_list_of_urls() -> None:
    from agent.config import AgentConfig
    from agent.lm import load_lm

    cfg = AgentConfig.load({"lm": ["http://a:8000/v1", "http://b:8000/v1"], "lm_model": "q"})
    pool = load_lm(cfg.lm, model=cfg.lm_model, cache_dir=None, device=None)
    assert isinstance(pool, LMPool) and len(pool.members) == 2
    with pytest.raises(ValueError, match="lm: a pool lists OpenAI-compatible server URLs"):
        load_lm("http://a:8000/v1,bundled:smollm2")
    with pytest.raises(ValueError, match=r"htp:// is not a server URL kind; write http://"):
        load_lm("htp://gpu-1:8000/v1", cache_dir=None)  # a typo, not a local folder named htp:
