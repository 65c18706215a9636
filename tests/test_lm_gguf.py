"""The llama.cpp backend (agent/lm_gguf.py) beyond the LM contract: which backend a spec gets,
whole characters in every streamed piece, streaming and batch agreeing, the KV cache of a shared
prefix reused, and files it cannot run. Real SmolLM2 GGUF; skipped without llama-cpp-python."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.lm import load_lm
from agent.protocols import LMError

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp")

RULES = {"role": "system", "content": "Answer in one short sentence from the passage. " * 20}


def test_a_gguf_runs_on_llama_cpp_unless_told_otherwise(tmp_path: Path) -> None:
    from agent.lm_gguf import GGUFLM
    from retrieval.models import resolve_model

    path = str(resolve_model("bundled:smollm2").path)  # a user's own .gguf file
    assert isinstance(load_lm(path, cache_dir=tmp_path, device="cpu"), GGUFLM)
    forced = load_lm("bundled:smollm2", cache_dir=tmp_path, backend="llama.cpp")
    assert isinstance(forced, GGUFLM) and forced.name == "bundled:smollm2"
    from agent.lm_local import LocalLM
    from retrieval.embedders import default_cache_dir

    cache = default_cache_dir() / "models"  # the conversion the other tests cached
    assert isinstance(load_lm("bundled:smollm2", cache_dir=cache, device="cpu"), LocalLM)
    with pytest.raises(ValueError, match="lm_backend must be one of"):
        load_lm("bundled:smollm2", cache_dir=tmp_path, backend="vllm")


def test_chinese_streams_in_whole_characters(smollm2_gguf) -> None:
    messages = [{"role": "user", "content": "请用中文介绍一下北京。"}]
    pieces = list(smollm2_gguf.stream(messages, max_new_tokens=40))
    assert pieces and not any("\ufffd" in p for p in pieces)
    assert "".join(pieces) == smollm2_gguf.generate_batch([messages], max_new_tokens=40)[0]


def test_a_shared_prefix_is_not_computed_again(smollm2_gguf, monkeypatch) -> None:
    """The second question over the same rules sends llama.cpp only what follows them."""
    llm = smollm2_gguf.llm
    list(smollm2_gguf.stream([RULES, {"role": "user", "content": "What colour is the sky?"}],
                             max_new_tokens=2))  # fmt: skip
    evaluated: list[int] = []
    real_eval = llm.eval

    def counting_eval(tokens):  # the real eval, counted
        evaluated.extend(tokens)
        return real_eval(tokens)

    monkeypatch.setattr(llm, "eval", counting_eval)
    other = [RULES, {"role": "user", "content": "What colour is grass?"}]
    list(smollm2_gguf.stream(other, max_new_tokens=2))
    prompt = len(smollm2_gguf.prompt_ids(other))
    rules = smollm2_gguf.count_tokens(RULES["content"])
    assert evaluated and len(evaluated) < prompt - rules + 5  # the rules came from the cache


def test_a_file_llama_cpp_cannot_read_is_one_clear_error(tmp_path: Path) -> None:
    from agent.lm_gguf import GGUFLM

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LMError, match=r"llama\.cpp cannot load it"):
        GGUFLM(bad)
    with pytest.raises(LMError, match="is not a file"):
        GGUFLM(tmp_path / "missing.gguf")
