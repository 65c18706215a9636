"""Decode speed of LocalLM against plain `model.generate`, on RAG prompts, measured in one run.

    python -m benchmarks.bench_decode [--quick] [--ablate] [--threads N]

Both sides greedy-decode the same prompts (a system prompt, numbered passages from the
evaluation sets, a question; English and Chinese) from the same weights on CPU, one prompt after
the other so that load on a shared machine hits both alike. Reported: decode tokens/s (new tokens
after the first, over the time after the first token), end-to-end tokens/s, time to first token,
whether every answer is identical to the baseline's. `--ablate` adds each speedup alone and
bfloat16. The start time of a second process is benchmarks/bench_start.py's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.decoding import PromptLookup
from agent.lm_local import LocalLM
from agent.protocols import GenerationStats, Messages
from retrieval.paths import data_dir

REPO = Path(__file__).resolve().parents[1]
# (evaluation set, prompts, passages per prompt): answers copy from passages in the first and
# last, less so in pubmedqa's yes/no questions.
PLAN = (("xquad-en", 4, 4), ("pubmedqa", 3, 3), ("stard", 3, 5))
QUICK_PLAN = (("xquad-en", 2, 4), ("pubmedqa", 1, 3), ("stard", 1, 5))
SYSTEM = {
    "en": "Answer the question using only the numbered passages below and cite them as [n]. "
    "Quote names, numbers and dates exactly as written. If the passages do not contain the "
    "answer, say so.",
    "zh": "请仅根据下面编号的段落回答问题，并用 [n] 标注引用的段落。名称、数字和日期须与原文一致。"
    "若段落中没有答案，请直接说明。",
}


@dataclass(frozen=True)
class Run:
    text: str
    new_tokens: int
    ttft_s: float
    total_s: float


def rag_prompts(evalsets: Path, plan: tuple[tuple[str, int, int], ...]) -> list[Messages]:
    """Prompts built like the agent's: the gold passage among neighbours, then the question."""
    prompts: list[Messages] = []
    for name, count, passages in plan:
        folder = evalsets / name
        docs = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
        position = {d["id"]: i for i, d in enumerate(docs)}
        cases = [json.loads(line) for line in (folder / "cases.jsonl").open(encoding="utf-8")]
        for case in cases[:: max(1, len(cases) // count)][:count]:
            gold = position[case["gold_doc_ids"][0]]
            # Gold second, so the answer is not simply in the first passage.
            picks = [docs[(gold + k) % len(docs)] for k in (1, 0, 2, 3, 4)][:passages]
            body = "\n\n".join(
                f"[{n}] {d['title']}\n{d['text']}".replace("] \n", "] ")
                for n, d in enumerate(picks, 1)
            )
            lang = case["lang"]
            question = ("问题：" if lang == "zh" else "Question: ") + case["question"]
            prompts.append(
                [
                    {"role": "system", "content": SYSTEM[lang]},
                    {"role": "user", "content": f"{body}\n\n{question}"},
                ]
            )
    return prompts


def run_baseline(model: Any, lm: LocalLM, messages: Messages, max_new: int) -> Run:
    """Plain `model.generate(input_ids, do_sample=False)`, timed with a streamer hook.

    It runs on a fresh thread, as LocalLM's generation does, so that both sides get the same
    OpenMP threading (on a loaded machine, a thread's team of OpenMP workers matters more than
    anything measured here).
    """
    import torch
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        def __init__(self) -> None:
            self.puts: list[float] = []

        def put(self, value: torch.Tensor) -> None:
            self.puts.append(time.perf_counter())  # the first put is the prompt

        def end(self) -> None:
            pass

    input_ids = lm.prompt_ids(messages)
    clock = Clock()
    out: list[torch.Tensor] = []

    def generate() -> None:
        with torch.inference_mode():
            out.append(
                model.generate(input_ids, do_sample=False, max_new_tokens=max_new, streamer=clock)
            )

    start = time.perf_counter()
    worker = threading.Thread(target=generate)
    worker.start()
    worker.join()
    total = time.perf_counter() - start
    new = out[0][0, input_ids.shape[1] :].tolist()
    return Run(lm.answer_text(new), len(new), clock.puts[1] - start, total)


def run_ours(lm: LocalLM, messages: Messages, max_new: int) -> Run:
    stats: list[GenerationStats] = []
    text = "".join(lm.stream(messages, max_new_tokens=max_new, stats=stats))
    return Run(text, stats[0].new_tokens, stats[0].ttft_s, stats[0].total_s)


def summarize(label: str, runs: list[Run], base: list[Run] | None) -> str:
    decode_tps = sum(r.new_tokens - 1 for r in runs) / sum(r.total_s - r.ttft_s for r in runs)
    e2e_tps = sum(r.new_tokens for r in runs) / sum(r.total_s for r in runs)
    ttft = statistics.median(r.ttft_s for r in runs)
    if base is None:
        ratio, same = "1.00x", "-"
    else:
        base_tps = sum(r.new_tokens - 1 for r in base) / sum(r.total_s - r.ttft_s for r in base)
        ratio = f"{decode_tps / base_tps:.2f}x"
        same = f"{sum(r.text == b.text for r, b in zip(runs, base, strict=True))}/{len(runs)}"
    return f"| {label} | {decode_tps:.1f} | {ratio} | {e2e_tps:.1f} | {ttft:.2f} | {same} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 prompts instead of 10")
    ap.add_argument("--ablate", action="store_true", help="also each speedup alone, and bf16")
    ap.add_argument("--threads", type=int, help="torch threads for both sides (default: torch's)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--spec", default="bundled:smollm2")
    ap.add_argument("--cache-dir", type=Path, default=data_dir() / "models")
    ap.add_argument(
        "--evalsets",
        type=Path,
        default=Path(os.environ.get("CITEWISE_EVALSETS", REPO.parent / "shared" / "evalsets")),
    )
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from retrieval.models import causal_lm_folder

    if args.threads:
        torch.set_num_threads(args.threads)
    prompts = rag_prompts(args.evalsets, QUICK_PLAN if args.quick else PLAN)
    variants = {
        "citewise LocalLM (fast CPU + lookup)": LocalLM(
            args.spec, cache_dir=args.cache_dir, device="cpu"
        )
    }
    if args.ablate:
        variants["fast CPU kernels only"] = LocalLM(
            args.spec, cache_dir=args.cache_dir, device="cpu", lookup=PromptLookup(max_draft=0)
        )
        variants["prompt lookup only"] = LocalLM(
            args.spec, cache_dir=args.cache_dir, device="cpu", fast_cpu=False
        )
        variants["bfloat16 + lookup"] = LocalLM(
            args.spec, cache_dir=args.cache_dir, device="cpu", dtype="bfloat16"
        )
    ours = next(iter(variants.values()))
    folder = causal_lm_folder(args.spec, args.cache_dir)
    plain = AutoModelForCausalLM.from_pretrained(folder).eval()
    run_baseline(plain, ours, prompts[0], 4)  # warm-up: first calls allocate and load kernels
    for lm in variants.values():
        run_ours(lm, prompts[0], 4)

    base: list[Run] = []
    results: dict[str, list[Run]] = {label: [] for label in variants}
    for n, messages in enumerate(prompts, 1):
        base.append(run_baseline(plain, ours, messages, args.max_new_tokens))
        for label, lm in variants.items():
            results[label].append(run_ours(lm, messages, args.max_new_tokens))
        print(f"prompt {n}/{len(prompts)}: {base[-1].new_tokens} tokens", file=sys.stderr)

    prompt_tokens = [ours.prompt_ids(m).shape[1] for m in prompts]
    print(
        f"\n{len(prompts)} RAG prompts ({min(prompt_tokens)}-{max(prompt_tokens)} tokens, en+zh), "
        f"{args.max_new_tokens} new tokens at most, {args.spec} float32 on CPU, "
        f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| decoder | decode tok/s | vs baseline | end-to-end tok/s | TTFT p50 s | identical |")
    print("|---|---|---|---|---|---|")
    print(summarize("plain model.generate (baseline)", base, None))
    for label, runs in results.items():
        print(summarize(label, runs, base))


if __name__ == "__main__":
    main()
