"""One contract for every LM behind the seam (agent/protocols.py `LM`): the bundled SmolLM2 in
process, the same GGUF run by llama.cpp (where llama-cpp-python is installed), the
OpenAI-compatible client (against tests/openai_stub.py), a pool of two such
endpoints, the evaluation batcher over SmolLM2, and the tests' ScriptedLM. What the dialogue
manager relies on holds for each of them: text pieces, one stats record a call, the token
budget, cancel, time limit, closing early, batch order and token counts."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from openai_stub import serving

from agent.protocols import LM, STOP_REASONS, CancelToken, GenerationStats

pytestmark = pytest.mark.slow

KINDS = ("local", "gguf", "http", "pool", "batching", "scripted")
LONG_REPLY = " ".join(f"word{i}" for i in range(300))


def long_prompt(kind: str) -> list[dict[str, str]]:
    """A request each LM answers at length (the stub echoes "slow" as 200 ticks)."""
    text = "slow" if kind in ("http", "pool") else "Write a long story about a dragon and a knight."
    return [{"role": "user", "content": text}]


@pytest.fixture(params=KINDS)
def lm(request, smollm2, scripted_lm) -> Iterator[tuple[str, LM]]:
    kind = request.param
    if kind == "local":
        yield kind, smollm2
    elif kind == "gguf":
        yield kind, request.getfixturevalue("smollm2_gguf")
    elif kind == "http":
        from agent.lm_http import OpenAICompatibleLM

        with serving() as server:
            yield kind, OpenAICompatibleLM(server.url + "/v1", model="fake-model")
    elif kind == "pool":
        from agent.lm_http import OpenAICompatibleLM
        from agent.lm_pool import LMPool

        with serving() as one, serving() as two:
            urls = (one.url, two.url)
            yield kind, LMPool([OpenAICompatibleLM(u, model="fake-model") for u in urls])
    elif kind == "batching":
        from evals.batching import BatchingLM

        yield kind, BatchingLM(smollm2, batch_size=4, max_wait_s=0.02)
    else:
        yield kind, scripted_lm(respond=lambda messages: LONG_REPLY)


def test_streams_text_and_records_one_call(lm) -> None:
    kind, model = lm
    stats: list[GenerationStats] = []
    pieces = list(model.stream(long_prompt(kind), max_new_tokens=8, stats=stats))
    assert pieces and all(isinstance(p, str) for p in pieces) and "".join(pieces).strip()
    assert len(stats) == 1 and stats[0].stopped in STOP_REASONS
    assert 0 <= stats[0].ttft_s <= stats[0].total_s and 1 <= stats[0].new_tokens <= 8
    assert isinstance(model.name, str) and model.name


def test_the_token_budget_ends_a_long_answer(lm) -> None:
    kind, model = lm
    stats: list[GenerationStats] = []
    list(model.stream(long_prompt(kind), max_new_tokens=4, stats=stats))
    assert stats[0].stopped == "max_tokens" and stats[0].new_tokens <= 4


def test_a_cancelled_call_yields_nothing_more(lm) -> None:
    kind, model = lm
    cancel, stats = CancelToken(), list[GenerationStats]()
    cancel.cancel()
    pieces = list(model.stream(long_prompt(kind), max_new_tokens=64, cancel=cancel, stats=stats))
    assert len(pieces) <= 1 and stats[0].stopped == "cancelled"
    # Cancelled while streaming: at most the piece in flight follows.
    cancel, stats = CancelToken(), []
    stream = model.stream(long_prompt(kind), max_new_tokens=64, cancel=cancel, stats=stats)
    next(stream)
    cancel.cancel()
    assert len(list(stream)) <= 1 and len(stats) == 1


def test_the_time_limit_ends_a_call(lm) -> None:
    kind, model = lm
    stats: list[GenerationStats] = []
    list(model.stream(long_prompt(kind), max_new_tokens=500, time_limit_s=1e-6, stats=stats))
    assert stats[0].stopped == "time_limit" and stats[0].total_s < 5


def test_closing_a_stream_early_leaves_the_model_free(lm) -> None:
    kind, model = lm
    stats: list[GenerationStats] = []
    stream = model.stream(long_prompt(kind), max_new_tokens=200, stats=stats)
    next(stream)
    stream.close()
    assert len(stats) == 1
    done = threading.Event()

    def again() -> None:
        list(model.stream(long_prompt(kind), max_new_tokens=3))
        done.set()

    threading.Thread(target=again, daemon=True).start()
    assert done.wait(timeout=60), "the next call waited on the closed one"


def test_a_batch_answers_each_conversation_in_order(lm) -> None:
    kind, model = lm
    a = long_prompt(kind)
    b = [{"role": "user", "content": "Name one colour."}]
    answers = model.generate_batch([a, b, a], max_new_tokens=6)
    assert len(answers) == 3 and all(isinstance(x, str) and x for x in answers)
    assert answers[0] == answers[2]  # greedy: the same conversation, the same answer


def test_token_counts(lm) -> None:
    _, model = lm
    one = model.count_tokens("The dose is 4,000 mg.")
    assert model.count_tokens("") == 0 and one >= 1
    assert model.count_tokens("The dose is 4,000 mg. " * 2) >= one


def test_the_batcher_never_lends_one_caller_another_callers_budget(smollm2) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from evals.batching import BatchingLM

    batcher = BatchingLM(smollm2, batch_size=4, max_wait_s=0.5)  # both calls land in one wait

    def ask(budget: int) -> GenerationStats:
        stats: list[GenerationStats] = []
        list(batcher.stream(long_prompt("batching"), max_new_tokens=budget, stats=stats))
        return stats[0]

    with ThreadPoolExecutor(2) as pool:
        short, long = pool.map(ask, (2, 40))
    assert short.new_tokens <= 2 < long.new_tokens
