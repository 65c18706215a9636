"""A GGUF model run by llama.cpp (llama-cpp-python) behind the LM seam: quantized weight-only
kernels picked by what the CPU has, no torch.

A `.gguf` spec (and `bundled:qwen1.5b`, which is one) runs here when llama-cpp-python is
installed (`make llama`), else through transformers (agent/lm_local.py). The prompt is the
model's own chat template from the GGUF metadata; decoding is greedy. llama-cpp-python keeps the
KV cache of the previous call and reuses the longest common prefix, so the fixed system prompt
and rules are not computed again each turn. One generation at a time uses the model (a
first-come, first-served lock, as LocalLM); streaming, cancel, the time limit and closing early
stop between tokens. benchmarks/bench_gguf.py measures it against the transformers backend.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from agent.fair_lock import FairLock
from agent.lm_stream import StreamRun, check_messages, token_budget
from agent.protocols import CancelToken, GenerationStats, LMError, Messages

_TURN_ENDS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
DEFAULT_CONTEXT = 4096


def llama_cpp_installed() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


class GGUFLM:
    """A chat model from one .gguf file, on the CPU threads this process may use."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        n_ctx: int = DEFAULT_CONTEXT,
        threads: int | None = None,
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = Path(path)
        self.name = name or str(path)
        if not self.path.is_file():
            raise LMError(f"{self.path} is not a file; give the path of a .gguf model")
        # The CPUs this process may use (a container's quota), not the host's core count;
        # sched_getaffinity is Linux's, os.cpu_count the fallback elsewhere.
        affinity = getattr(os, "sched_getaffinity", None)
        threads = threads or (len(affinity(0)) if affinity else os.cpu_count() or 1)
        try:
            self.llm = Llama(
                str(self.path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                n_batch=512, verbose=False,
            )  # fmt: skip
        except ValueError as e:  # llama.cpp could not read it: not a GGUF, or an unknown arch
            raise LMError(f"{self.path}: llama.cpp cannot load it ({e})") from None
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LMError(f"{self.path} has no chat template; pass an instruction-tuned model")
        self._template = Jinja2ChatFormatter(
            template, eos_token=self._piece(self.llm.token_eos()),
            bos_token=self._piece(self.llm.token_bos()),
        )  # fmt: skip
        self.stop_ids = frozenset({self.llm.token_eos(), *self._turn_end_ids()})
        self.max_positions = self.llm.n_ctx()
        self._lock = FairLock()

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", "replace")

    def _turn_end_ids(self) -> set[int]:
        ids = set()
        for text in _TURN_ENDS:
            tokens = self.llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(tokens) == 1:
                ids.add(tokens[0])
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_ids(self, messages: Messages) -> list[int]:
        check_messages(messages)
        chat: list[Any] = [dict(m) for m in messages]
        prompt = self._template(messages=chat).prompt
        # The template writes the BOS itself where the model wants one.
        return list(self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def _budget(self, prompt_tokens: int, max_new_tokens: int) -> int:
        return token_budget(prompt_tokens, max_new_tokens, self.max_positions, self.name)

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
        ids = self.prompt_ids(messages)
        budget = self._budget(len(ids), max_new_tokens)
        run.prompt_tokens = len(ids)
        try:
            if not self._lock.acquire(give_up=run.check):
                return
            try:
                if not run.check():
                    yield from self._decode(ids, budget, run)
            finally:
                self._lock.release()
        except GeneratorExit:
            run.stopped = "cancelled"  # the caller closed the stream: stop here
            raise
        except (RuntimeError, OSError) as e:
            raise LMError(f"{self.name} failed while generating: {e}") from e
        finally:
            run.finished = time.monotonic()
            if stats is not None:
                stats.append(run.stats())

    def _decode(self, ids: list[int], budget: int, run: StreamRun) -> Generator[str, None, None]:
        pending = b""  # bytes of a character whose remaining bytes are still to come
        tokens = self.llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0,
                                   repeat_penalty=1.0)  # fmt: skip
        try:
            for token in tokens:
                if run.first_token is None:
                    run.first_token = time.monotonic()
                run.new_tokens += 1
                if token in self.stop_ids:
                    run.stopped = "eos"
                    break
                pending += self.llm.detokenize([token], prev_tokens=ids)
                ids = [*ids, token]
                text = _complete_utf8(pending)
                if text:
                    pending = pending[len(text.encode("utf-8")) :]
                    yield text
                if run.new_tokens >= budget or run.check():
                    break
        finally:
            tokens.close()

    def generate_batch(
        self, conversations: Sequence[Messages], *, max_new_tokens: int = 512
    ) -> list[str]:
        """One conversation after another: llama.cpp runs one sequence per context here."""
        return ["".join(self.stream(c, max_new_tokens=max_new_tokens)) for c in conversations]


def _complete_utf8(data: bytes) -> str:
    """The longest prefix of `data` that is whole UTF-8 characters, decoded."""
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            return data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")
