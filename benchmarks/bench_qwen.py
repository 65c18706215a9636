"""The optional bundled:qwen1.5b on this machine: conversion, second load, TTFT and decode speed.

    python -m benchmarks.bench_qwen [--runs 2] [--prompt-tokens 1000] [--max-new-tokens 64]

Printed (conversion and second starts each in a fresh process, so one does not warm the next):

- the CPU (model name; AVX2 / AVX-512 / AVX512_BF16 / AMX) and the dtype LocalLM picks on it;
- the first start: joining the 22 parts and converting the GGUF to the cached safetensors folder
  (skipped, and said so, when the cache already holds it; --cache-dir to an empty folder times it);
- the second start (benchmarks/bench_start.py's child: import, `LocalLM(...)`, first token);
- time to first token and decode tokens/s of a grounded prompt of about --prompt-tokens tokens
  (demo-corpus passages and a question: English, Chinese, and an English summary that runs to
  --max-new-tokens, once more without prompt lookup), greedy with LocalLM's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_start import REPO, one_start
from retrieval.embedders import default_cache_dir

CONVERT = """
import json, resource, sys, time
t0 = time.perf_counter()
from agent.lm_local import LocalLM, _resolve_dtype
from retrieval.models import CPU_FLOAT32, causal_lm_folder
import torch
spec = sys.argv[1]
dtype = _resolve_dtype(None, torch.device("cpu"), cpu_bf16=spec not in CPU_FLOAT32)
t1 = time.perf_counter()
folder = causal_lm_folder(spec, sys.argv[2], dtype)
t2 = time.perf_counter()
size = sum(p.stat().st_size for p in folder.iterdir())
print(json.dumps({"convert_s": t2 - t1, "folder": str(folder), "bytes": size, "dtype": str(dtype),
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""
QUESTIONS = {
    "en": "How many points did the Panthers defense give up, and where did that rank them?",
    "zh": "黑豹队的防守丢了多少分？在联赛中排名第几？",
    # A long answer, so decode speed is measured over --max-new-tokens, not a one-line reply.
    "en-long": "Summarize passages [1] to [3] in about 150 words.",
}
SYSTEM = {
    "en": "Answer the question using only the numbered passages below and cite them as [n]. "
    "If the passages do not contain the answer, say so.",
    "zh": "请仅根据下面编号的段落回答问题，并用 [n] 标注引用的段落。若段落中没有答案，请直接说明。",
}


def cpu_summary() -> str:
    """The CPU's model name and which of its vector / bfloat16 instruction sets are present."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    have = [f for f in wanted if f in flags] or ["none of avx2/avx512/amx"]
    name = fields.get("Model name", "?").strip()
    return f"{name}, {os.cpu_count()} CPUs, flags: {' '.join(have)}"


def grounded_prompt(lang: str, tokens: int, count_tokens: Any) -> list[dict[str, str]]:
    """Demo-corpus passages of `lang`, numbered, until the prompt is about `tokens` tokens."""
    corpus = REPO / "retrieval" / "demo_corpus"
    docs = [
        json.loads(line)
        for name in ("education.jsonl", "legal.jsonl", "medical.jsonl")
        for line in (corpus / name).open(encoding="utf-8")
    ]
    chosen: list[str] = []
    question = QUESTIONS[lang]
    lang = lang.split("-")[0]
    used = count_tokens(SYSTEM[lang] + question) + 30  # the chat template's own tokens
    for doc in (d for d in docs if d["lang"] == lang):
        passage = f"[{len(chosen) + 1}] {doc['text']}"
        cost = count_tokens(passage)
        if used + cost > tokens and chosen:
            break
        chosen.append(passage)
        used += cost
    body = "\n\n".join(chosen)
    ask = "问题：" if lang == "zh" else "Question: "
    return [
        {"role": "system", "content": SYSTEM[lang]},
        {"role": "user", "content": f"{body}\n\n{ask}{question}"},
    ]


def first_start(spec: str, cache_dir: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CONVERT, spec, str(cache_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip().splitlines()[-1])
    return {"wall_s": time.perf_counter() - start, **json.loads(done.stdout.splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="bundled:qwen1.5b")
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir() / "models")
    ap.add_argument("--runs", type=int, default=2, help="second starts, and prompts per language")
    ap.add_argument("--prompt-tokens", type=int, default=1000)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()

    print(f"CPU: {cpu_summary()}; load average {os.getloadavg()[0]:.1f}")
    first = first_start(args.spec, args.cache_dir)
    if first["convert_s"] < 5:
        print(
            f"first start: already converted in {first['folder']} (an empty --cache-dir times it)"
        )
    else:
        print(
            f"first start (join parts + GGUF -> {first['dtype']} safetensors): "
            f"{first['convert_s']:.0f} s, peak RSS {first['peak_rss_gib']:.1f} GiB"
        )
    print(f"converted folder: {first['bytes'] / 2**30:.2f} GiB, {first['dtype']}")

    starts = [one_start(args.spec, args.cache_dir) for _ in range(args.runs)]
    median = {k: statistics.median(s[k] for s in starts) for k in ("ready_s", "import_s", "load_s")}
    print(
        f"second start, median of {args.runs} fresh processes: first token ready "
        f"{median['ready_s']:.2f} s (import {median['import_s']:.2f} s, "
        f"LocalLM(...) {median['load_s']:.2f} s)"
    )

    from agent.decoding import PromptLookup
    from agent.lm_local import LocalLM
    from agent.protocols import GenerationStats

    lm = LocalLM(args.spec, cache_dir=args.cache_dir)
    list(lm.stream([{"role": "user", "content": "Hi"}], max_new_tokens=2))  # warm-up
    print(f"\n{args.spec}: {lm.dtype} on {lm.device}, {torch_threads()} torch threads")
    print("| prompt | prompt tokens | new tokens | TTFT s | decode tok/s | answer |")
    print("|---|---|---|---|---|---|")
    # The last rows decode without prompt lookup's drafts: the model's own one-token-a-step speed.
    plan = [*((lang, True) for lang in QUESTIONS), ("en-long", False)]
    for lang, lookup in plan:
        messages = grounded_prompt(lang, args.prompt_tokens, lm.count_tokens)
        lm.lookup = PromptLookup() if lookup else PromptLookup(max_draft=0)
        label = lang if lookup else f"{lang}, no lookup"
        for _ in range(args.runs):
            stats: list[GenerationStats] = []
            text = "".join(lm.stream(messages, max_new_tokens=args.max_new_tokens, stats=stats))
            s = stats[0]
            decode = (s.new_tokens - 1) / max(s.total_s - s.ttft_s, 1e-9)
            shown = " ".join(text.split())[:60].replace("|", "/")
            print(
                f"| {label} | {s.prompt_tokens} | {s.new_tokens} | {s.ttft_s:.2f} | "
                f"{decode:.2f} | {shown} |",
                flush=True,
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS of this process (model in memory): {rss:.1f} GiB")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
