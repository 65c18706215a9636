"""A GGUF model on llama.cpp (agent/lm_gguf.py) against the same model through transformers
(agent/lm_local.py, the baseline), in one run: time to first token and the model's own decode
speed on grounded prompts, and decode against the memory-bandwidth roofline.

    python -m benchmarks.bench_gguf [--lm bundled:qwen1.5b] [--prompt-tokens 900]
        [--max-new-tokens 64] [--runs 2] [--skip-baseline]

Prompts are bench_qwen's: demo-corpus passages and a question, English and Chinese, about
--prompt-tokens tokens, and an English summary that runs to --max-new-tokens. Decode tokens/s is
(new tokens - 1) / (time after the first token), greedy, prompt lookup off for transformers (so
both measure the model, not copying from the passages). Each prompt runs --runs times per
backend, the backends alternating; medians. The roofline: a decoded token reads every weight
once, so tokens/s can be at most (measured read bandwidth) / (bytes of weights); the bandwidth is
what torch's sum over a 1 GiB tensor reads per second on this process's threads.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from benchmarks.bench_qwen import cpu_summary, grounded_prompt
from retrieval.embedders import default_cache_dir


def read_bandwidth_gbs(gib: float = 1.0, repeats: int = 5) -> float:
    """GB/s that summing a `gib` GiB float32 tensor reads, best of `repeats` (torch's threads)."""
    import torch

    data = torch.ones(int(gib * 2**30 / 4), dtype=torch.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        data.sum().item()
        best = min(best, time.perf_counter() - start)
    return data.numel() * 4 / best / 1e9


def one_run(lm: Any, messages: list[dict[str, str]], max_new: int) -> dict[str, Any]:
    from agent.protocols import GenerationStats

    stats: list[GenerationStats] = []
    text = "".join(lm.stream(messages, max_new_tokens=max_new, stats=stats))
    s = stats[0]
    decode_s = s.total_s - s.ttft_s
    rate = (s.new_tokens - 1) / decode_s if s.new_tokens > 1 and decode_s > 0 else 0.0
    return {"ttft": s.ttft_s, "decode": rate, "new": s.new_tokens, "prompt": s.prompt_tokens,
            "text": text}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lm", default="bundled:qwen1.5b")
    ap.add_argument("--prompt-tokens", type=int, default=900)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--skip-baseline", action="store_true", help="llama.cpp only")
    args = ap.parse_args()

    from agent.lm_gguf import GGUFLM
    from retrieval.models import gguf_file

    cache = default_cache_dir() / "models"
    path = gguf_file(args.lm, cache)
    if path is None:
        raise SystemExit(f"{args.lm} is not a GGUF model")
    print(f"CPU: {cpu_summary()}")
    start = time.perf_counter()
    backends: dict[str, Any] = {"llama.cpp": GGUFLM(path, name=args.lm)}
    print(f"llama.cpp load {time.perf_counter() - start:.1f} s ({path.name})", flush=True)
    if not args.skip_baseline:
        from agent.decoding import PromptLookup
        from agent.lm_local import LocalLM

        start = time.perf_counter()
        baseline = LocalLM(args.lm, cache_dir=cache, device="cpu", lookup=PromptLookup(max_draft=0))
        backends["transformers"] = baseline
        print(f"transformers load {time.perf_counter() - start:.1f} s (dtype {baseline.dtype})")
    count = backends["llama.cpp"].count_tokens
    prompts = {lang: grounded_prompt(lang, args.prompt_tokens, count) for lang in
               ("en", "zh", "en-long")}  # fmt: skip
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in range(args.runs):
        order = list(backends) if run % 2 == 0 else list(backends)[::-1]
        for name in order:
            for lang, messages in prompts.items():
                r = one_run(backends[name], messages, args.max_new_tokens)
                results.setdefault((name, lang), []).append(r)
                shown = str(r["text"])[:50]
                print(f"{name:12} {lang:7} ttft {r['ttft']:5.2f} s  decode {r['decode']:5.1f} "
                      f"tok/s  {r['new']:.0f} new  {shown!r}", flush=True)  # fmt: skip

    weights = path.stat().st_size
    bandwidth = read_bandwidth_gbs()
    roof = bandwidth * 1e9 / weights
    print(f"\nweights read per token: {weights / 2**30:.2f} GiB (the GGUF file); read bandwidth "
          f"{bandwidth:.1f} GB/s; roofline {roof:.1f} tokens/s\n")  # fmt: skip
    print("| backend | prompt | prompt tokens | TTFT s | decode tokens/s | of roofline |")
    print("|---|---|---|---|---|---|")
    for (name, lang), runs in results.items():
        ttft = statistics.median(r["ttft"] for r in runs)
        rate = statistics.median(r["decode"] for r in runs)
        share = f"{rate / roof:.0%}" if name == "llama.cpp" else "–"
        print(f"| {name} | {lang} | {runs[0]['prompt']:.0f} | {ttft:.2f} | {rate:.1f} | {share} |")


if __name__ == "__main__":
    main()
