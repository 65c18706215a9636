"""On a CUDA machine: decode speed of a large local model at batch 1 and batch 8 against its HBM
roofline, and evaluation throughput batched against sequential.

    python -m benchmarks.bench_gpu --lm /models/Qwen2.5-7B-Instruct [--batch-sizes 1,8]
        [--new-tokens 128] [--prompt-tokens 512] [--eval-set ../shared/evalsets/xquad-en]
        [--eval-limit 40] [--device cuda]

The model loads as LocalLM does it (agent/lm_local.py: bfloat16 and SDPA on CUDA). Decode: for
each batch size, that many grounded prompts (benchmarks/bench_qwen.py's, cut to --prompt-tokens)
go through `model.generate` greedily, once for 1 new token (the prefill) and once for
--new-tokens; decode tokens/s = batch × (new tokens − 1) / (the difference), after a warm-up.
Roofline: each decoding step reads every weight once, so one sequence decodes at most
(HBM bandwidth) / (weight bytes) tokens/s and a batch of b at b times that while it stays
memory-bound; the bandwidth is measured here as bytes read + written by copying a 2 GiB tensor.
Evaluation: `citewise eval run` of --eval-limit cases, batched (evals/batching.py) and
sequential, each into a fresh folder; cases per minute of each, and the ratio.

`--device cpu` runs the same code on a CPU (with a small model, e.g. bundled:smollm2) to check
the script itself; the figures that count are CUDA's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_qwen import grounded_prompt
from retrieval.embedders import default_cache_dir

REPO = Path(__file__).resolve().parents[1]


def bandwidth_gbs(device: str, gib: float = 2.0) -> float:
    """Bytes read + written per second copying a `gib` GiB tensor on `device`, best of 5."""
    import torch

    src = torch.ones(int(gib * 2**30 / 2), dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        _sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * src.element_size() / best / 1e9


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def decode_rate(lm: Any, batch: int, prompt_tokens: int, new_tokens: int) -> dict[str, float]:
    """Prefill seconds and decode tokens/s of `batch` prompts decoded together, median of 3."""
    import torch

    langs = ("en", "zh")
    rows = [lm.prompt_ids(grounded_prompt(langs[i % 2], prompt_tokens, lm.count_tokens))[0]
            for i in range(batch)]  # fmt: skip
    width = max(len(r) for r in rows)
    pad = lm.pad_id
    ids = torch.tensor([[pad] * (width - len(r)) + r.tolist() for r in rows], device=lm.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=lm.device)

    def timed(n: int) -> float:
        _sync(str(lm.device))
        start = time.perf_counter()
        with torch.inference_mode():
            lm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n,
                              min_new_tokens=n)  # fmt: skip
        _sync(str(lm.device))
        return time.perf_counter() - start

    timed(2)  # warm-up: kernels, allocator
    prefill = statistics.median(timed(1) for _ in range(3))
    whole = statistics.median(timed(new_tokens) for _ in range(3))
    return {"prompt": width, "prefill_s": prefill,
            "decode": batch * (new_tokens - 1) / max(whole - prefill, 1e-9)}  # fmt: skip


def eval_rate(set_dir: str, lm_spec: str, device: str, limit: int, batch: bool) -> float:
    """Cases per minute of `citewise eval run` over `limit` cases, batched or one by one."""
    from agent.config import AgentConfig
    from evals.run import run_eval

    with tempfile.TemporaryDirectory() as tmp:
        config = AgentConfig.load(data_dir=str(Path(tmp) / "data"), lm=lm_spec, device=device,
                                  max_new_tokens=64, time_limit_s=300.0)  # fmt: skip
        start = time.perf_counter()
        summary = run_eval(set_dir, config, Path(tmp) / "run", limit=limit, progress=False,
                           batch=batch)  # fmt: skip
        elapsed = time.perf_counter() - start
    return summary["n"] / elapsed * 60


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lm", required=True, help="a local model folder (a 7B for the real figures)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--eval-set", default=str(REPO.parent / "shared" / "evalsets" / "xquad-en"))
    ap.add_argument("--eval-limit", type=int, default=40)
    args = ap.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures a GPU (--device cpu checks the script)")
    from agent.lm_local import LocalLM

    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    lm = LocalLM(args.lm, cache_dir=default_cache_dir() / "models", device=args.device)
    weight_bytes = sum(p.numel() * p.element_size() for p in lm.model.parameters())
    bandwidth = bandwidth_gbs(args.device)
    roof = bandwidth * 1e9 / weight_bytes
    gib = weight_bytes / 2**30
    print(f"{name}: {args.lm} in {lm.dtype}, {gib:.2f} GiB of weights; measured bandwidth "
          f"{bandwidth:.0f} GB/s; batch-1 roofline {roof:.1f} tokens/s")  # fmt: skip
    print("\n| batch | prompt tokens | prefill s | decode tokens/s | roofline tokens/s | share |")
    print("|---|---|---|---|---|---|")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        r = decode_rate(lm, batch, args.prompt_tokens, args.new_tokens)
        print(f"| {batch} | {r['prompt']:.0f} | {r['prefill_s']:.2f} | {r['decode']:.1f} | "
              f"{batch * roof:.1f} | {r['decode'] / (batch * roof):.0%} |", flush=True)  # fmt: skip
    del lm
    if args.eval_limit > 0:
        sequential = eval_rate(args.eval_set, args.lm, args.device, args.eval_limit, False)
        batched = eval_rate(args.eval_set, args.lm, args.device, args.eval_limit, True)
        print(f"\neval run, {args.eval_limit} cases of {Path(args.eval_set).name}: sequential "
              f"{sequential:.1f} cases/min, batched {batched:.1f} cases/min "
              f"({batched / sequential:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
