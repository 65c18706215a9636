"""The in-process LM: a transformers causal model (a local folder or a GGUF) behind the LM seam.

Weights are shared by all callers; everything about one answer (queue, detokenizer, KV cache,
stop flags) is created per call, and a first-come, first-served lock lets one generation at a
time use the model. On CPU the model stays float32 (bfloat16 changed 4 to 6 of 10 greedy RAG
answers), its linear weights are pre-packed for oneDNN, attention reads grouped KV heads in place,
and `stream` drafts tokens by prompt lookup. benchmarks/bench_decode.py, SmolLM2-135M, 10 RAG
prompts on 2 shared CPU cores: 3.2x the decode tokens/s of plain `model.generate`, every answer
identical (CPU kernels alone 1.5x, prompt lookup alone 1.5x).

The dtype is decided in one place, `_resolve_dtype`: bfloat16 on CUDA and on CPUs with native
bfloat16 instructions (AMX or AVX512_BF16), float32 on other CPUs; the default SmolLM2 stays
float32 on every CPU (retrieval.models.CPU_FLOAT32). A GGUF is converted once per dtype.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import torch

from agent.decoding import PromptLookup, greedy_tokens
from agent.fair_lock import FairLock
from agent.fast_cpu import pack_linears, use_grouped_attention
from agent.lm_stream import IncrementalText, StreamRun, check_messages, token_budget
from agent.prefix_cache import PrefixCache
from agent.protocols import CancelToken, GenerationStats, LMError, Messages

# Tokens that end an assistant turn in common chat templates; those in the vocabulary stop decoding.
_TURN_ENDS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
_DONE = object()


class LocalLM:
    """A chat model run in this process, on CUDA in bfloat16 when there is a GPU, else on CPU."""

    def __init__(
        self,
        spec: str = "bundled:smollm2",
        *,
        cache_dir: Path,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        lookup: PromptLookup | None = None,
        fast_cpu: bool = True,
        batch_size: int = 8,
        prefix_cache: bool = True,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        from retrieval.models import CPU_FLOAT32, causal_lm_folder

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.name = spec
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise LMError(
                "device='cuda' but PyTorch sees no GPU; install a CUDA build of torch "
                "(make setup TORCH_SPEC=...) or pass device='cpu'"
            )
        self.dtype = _resolve_dtype(dtype, self.device, cpu_bf16=spec not in CPU_FLOAT32)
        self.lookup = lookup if lookup is not None else PromptLookup()
        self.batch_size = batch_size
        folder = causal_lm_folder(spec, Path(cache_dir), self.dtype)
        self.tokenizer: Any = AutoTokenizer.from_pretrained(folder)
        if not self.tokenizer.chat_template:
            raise LMError(
                f"{spec} has no chat template in {folder}; pass an instruction-tuned (chat) model"
            )
        self.model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=self.dtype, attn_implementation="sdpa", device_map=str(self.device)
        ).eval()
        self.stop_ids = _stop_ids(self.tokenizer, self.model.generation_config)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = min(self.stop_ids)
        # Plain greedy, nothing from the checkpoint (repetition penalty...): batch and stream agree.
        self.model.generation_config = GenerationConfig(
            eos_token_id=sorted(self.stop_ids), pad_token_id=self.pad_id, do_sample=False
        )
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None)
        # On CPU in float32: oneDNN-packed weights and in-place GQA attention (agent/fast_cpu.py).
        self.packed_layers = pack_linears(self.model) if fast_cpu else 0
        if fast_cpu and self.device.type == "cpu" and self.dtype == torch.float32:
            use_grouped_attention(self.model)
        # Callers get the model in the order they asked for it (agent/fair_lock.py).
        self._lock = FairLock()
        # The answer rules every prompt opens with are read once (agent/prefix_cache.py).
        self.prefix = PrefixCache() if prefix_cache else None

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(
        self,
        messages: Messages,
        *,
        max_new_tokens: int = 512,
        time_limit_s: float | None = None,
        cancel: CancelToken | None = None,
        stats: list[GenerationStats] | None = None,
    ) -> Generator[str, None, None]:
        run = StreamRun(time.monotonic(), time_limit_s, cancel)
        input_ids = self.prompt_ids(messages)
        budget = self._budget(input_ids.shape[1], max_new_tokens)
        run.prompt_tokens = input_ids.shape[1]
        pieces: queue.Queue[Any] = queue.Queue()
        worker = threading.Thread(
            target=self._work, args=(input_ids, budget, run, pieces), name="lm-stream", daemon=True
        )
        worker.start()
        try:
            while (item := pieces.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise LMError(f"{self.name} failed while generating: {item}") from item
                yield item
        finally:
            run.abandoned.set()  # the caller stopped reading: the worker stops at its next step
            worker.join()
            if stats is not None:
                stats.append(run.stats())

    def generate_batch(
        self, conversations: Sequence[Messages], *, max_new_tokens: int = 512
    ) -> list[str]:
        prompts = [self.prompt_ids(c)[0].tolist() for c in conversations]
        # Batching prompts of similar length wastes the least compute on padding.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        answers = [""] * len(prompts)
        with self._lock.held(), torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = max(len(prompts[i]) for i in rows)
                budget = self._budget(width, max_new_tokens)
                ids = [[self.pad_id] * (width - len(prompts[i])) + prompts[i] for i in rows]
                mask = [[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in rows]
                out = self.model.generate(
                    input_ids=torch.tensor(ids, device=self.device),
                    attention_mask=torch.tensor(mask, device=self.device),
                    max_new_tokens=budget,
                )
                for i, row in zip(rows, out[:, width:].tolist(), strict=True):
                    answers[i] = self.answer_text(row)
        return answers

    def prompt_ids(self, messages: Messages) -> torch.Tensor:
        check_messages(messages)
        encoded = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        return encoded["input_ids"]

    def _budget(self, prompt_tokens: int, max_new_tokens: int) -> int:
        return token_budget(prompt_tokens, max_new_tokens, self.max_positions, self.name)

    def answer_text(self, ids: Sequence[int]) -> str:
        """The answer text of generated ids: up to the first stop token, specials dropped.

        A character cut in half by the token budget is dropped, as the streamed text drops it.
        """
        end = next((i for i, t in enumerate(ids) if t in self.stop_ids), len(ids))
        text: str = self.tokenizer.decode(
            ids[:end], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return text.rstrip("\ufffd")

    def _work(
        self, input_ids: torch.Tensor, budget: int, run: StreamRun, pieces: queue.Queue
    ) -> None:
        """Worker thread: wait for the model, decode, put text pieces, always end with _DONE."""
        try:
            if not self._lock.acquire(give_up=run.check):
                return
            try:
                if not run.check():
                    self._decode(input_ids.to(self.device), budget, run, pieces)
            finally:
                self._lock.release()
        except Exception as e:  # handed over to the reading thread, which raises it
            pieces.put(e)
        finally:
            run.finished = time.monotonic()
            pieces.put(_DONE)

    def _decode(
        self, input_ids: torch.Tensor, budget: int, run: StreamRun, pieces: queue.Queue
    ) -> None:
        text = IncrementalText(self.tokenizer)
        with torch.inference_mode():
            chunks = greedy_tokens(
                self.model,
                input_ids,
                max_new_tokens=budget,
                stop_ids=self.stop_ids,
                lookup=self.lookup,
                prefix=self.prefix,
            )
            for chunk in chunks:
                if run.first_token is None:
                    run.first_token = time.monotonic()
                run.new_tokens += len(chunk)
                if piece := text.add([t for t in chunk if t not in self.stop_ids]):
                    pieces.put(piece)
                if chunk[-1] in self.stop_ids:
                    run.stopped = "eos"
                elif run.check():
                    break
            chunks.close()
        if piece := text.flush():
            pieces.put(piece)


def _resolve_dtype(
    dtype: str | torch.dtype | None, device: torch.device, *, cpu_bf16: bool = True
) -> torch.dtype:
    """The dtype asked for, else bfloat16 on CUDA and on bfloat16 CPUs (if `cpu_bf16`), else fp32.

    SmolLM2-135M passes cpu_bf16=False: in bfloat16 it changed greedy answers on 3 of 4 RAG
    prompts (4 to 6 of 10 in bench_decode), so it stays float32 on every CPU.
    """
    if dtype is None:
        if device.type == "cuda" or (device.type == "cpu" and cpu_bf16 and cpu_has_bf16()):
            return torch.bfloat16
        return torch.float32
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype such as 'bfloat16', got {dtype!r}")
    return resolved


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AMX or AVX512_BF16), not by emulation.

    Read from the kernel's CPU flags (Linux); elsewhere from PyTorch's CPU capability, which
    names AMX and AVX512 but not AVX512_BF16 (so a non-Linux AVX512_BF16 CPU stays float32).
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        flags = ""
    if flags:
        return bool({"amx_bf16", "avx512_bf16"} & set(flags.split(":", 1)[-1].split()))
    return "AMX" in torch.backends.cpu.get_cpu_capability()


def _stop_ids(tokenizer: Any, generation_config: Any) -> frozenset[int]:
    eos = generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in _TURN_ENDS if t in vocab)
    if not ids:
        raise LMError("the model names no end-of-sequence token; pass a chat model that does")
    return frozenset(ids)
