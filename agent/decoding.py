"""Exact greedy decoding of one sequence, with fewer forward passes: prompt-lookup drafts.

Grounded answers copy names, numbers and whole phrases from the retrieved passages. When the last
few tokens also occur earlier (in the prompt or in the answer so far), the tokens that followed
them there are a likely continuation: the model checks up to `max_draft` of them in one forward
pass and keeps the prefix its own argmax agrees with, plus its next token after that prefix. The
output is the greedy output; only the number of forward passes changes. On a CPU a forward pass
over 16 tokens cost about twice one over a single token (SmolLM2-135M, packed weights), so a
copied phrase comes out several times faster and a rejected draft costs little.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from agent.prefix_cache import PrefixCache


@dataclass(frozen=True)
class PromptLookup:
    """Draft settings, tuned on the RAG prompts of benchmarks/bench_decode.py.

    A longer matching n-gram is stronger evidence, so a match of n tokens drafts up to
    `tokens_per_ngram * n` tokens (and never more than `max_draft`): on the benchmark prompts
    this needed about 10% less decoding time than a flat 16-token draft after 2- to 4-grams.
    """

    max_draft: int = 16  # tokens checked per forward pass at most; 0 turns drafting off
    min_ngram: int = 1
    max_ngram: int = 6
    tokens_per_ngram: int = 3

    def __post_init__(self) -> None:
        if self.max_draft < 0 or not 1 <= self.min_ngram <= self.max_ngram:
            raise ValueError("need max_draft >= 0 and 1 <= min_ngram <= max_ngram")
        if self.tokens_per_ngram < 1:
            raise ValueError("tokens_per_ngram must be at least 1")


class NgramIndex:
    """The latest position after each n-gram of the sequence, so a draft costs a dict lookup.

    >>> index = NgramIndex([5, 6, 7, 8, 5, 6], PromptLookup(min_ngram=2, max_ngram=2))
    >>> index.draft(3)
    [7, 8, 5]
    """

    def __init__(self, tokens: Sequence[int], settings: PromptLookup) -> None:
        self._tokens: list[int] = []
        self._sizes = range(settings.min_ngram, settings.max_ngram + 1)
        self._per_ngram = settings.tokens_per_ngram
        self._after: dict[tuple[int, ...], int] = {}
        for token in tokens:
            self.append(token)

    def append(self, token: int) -> None:
        tokens = self._tokens
        tokens.append(token)
        end = len(tokens) - 1  # the n-grams ending just before `token` now have a continuation
        for n in self._sizes:
            if end >= n:
                self._after[tuple(tokens[end - n : end])] = end

    def draft(self, k: int) -> list[int]:
        """What followed the latest earlier occurrence of the longest n-gram ending the sequence.

        At most `k` tokens, and at most `tokens_per_ngram` per token of the matched n-gram.
        """
        tokens = self._tokens
        for n in reversed(self._sizes):
            if len(tokens) >= n:
                start = self._after.get(tuple(tokens[-n:]))
                if start is not None:
                    return tokens[start : start + min(k, self._per_ngram * n)]
        return []


def greedy_tokens(
    model: Any,
    input_ids: torch.Tensor,
    *,
    max_new_tokens: int,
    stop_ids: frozenset[int],
    lookup: PromptLookup,
    prefix: PrefixCache | None = None,
) -> Generator[list[int], None, None]:
    """Yield the greedy continuation of `input_ids` (shape 1 x T) in chunks of accepted tokens.

    Ends after a token in `stop_ids` (which is yielded) or after `max_new_tokens` tokens. The
    caller may stop iterating between chunks; nothing is left running. With `prefix`, prefill
    starts after the beginning the prompt shares with the last one (agent/prefix_cache.py).
    """
    cache = new_kv_cache(model.config)
    ids = input_ids[0].tolist()
    index = NgramIndex(ids, lookup)
    start = prefix.reuse(ids, cache) if prefix is not None else 0
    logits = model(input_ids=input_ids[:, start:], past_key_values=cache, logits_to_keep=1).logits
    if prefix is not None:
        prefix.keep(ids, cache)
    token = int(logits[0, -1].argmax())
    produced = 0
    while True:
        index.append(token)
        produced += 1
        if token in stop_ids or produced >= max_new_tokens:
            yield [token]
            return
        draft = index.draft(min(lookup.max_draft, max_new_tokens - produced))
        feed = torch.tensor([[token, *draft]], device=input_ids.device)
        logits = model(input_ids=feed, past_key_values=cache, logits_to_keep=feed.shape[1]).logits
        predicted = logits[0].argmax(-1).tolist()
        agreed = 0
        while agreed < len(draft) and draft[agreed] == predicted[agreed]:
            agreed += 1
        if agreed < len(draft):
            cache.crop(agreed - len(draft))  # drop the keys and values of rejected tokens
        chunk = [token]
        for accepted in draft[:agreed]:
            chunk.append(accepted)
            index.append(accepted)
            produced += 1
            if accepted in stop_ids or produced >= max_new_tokens:
                yield chunk
                return
        yield chunk
        token = predicted[agreed]


class GrowingLayer(DynamicLayer):
    """Keys and values in a buffer with spare room: appending a token copies one token, not all.

    DynamicLayer concatenates on every step, so decoding at a 1,500-token context copies the whole
    cache for each token; here `keys`/`values` are views into a buffer that doubles when full.
    """

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.length = 0
        self.key_buffer = key_states[..., :0, :]
        self.value_buffer = value_states[..., :0, :]
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.key_buffer.shape[-2]:
            self.key_buffer = self._grown(self.key_buffer, end)
            self.value_buffer = self._grown(self.value_buffer, end)
        self.key_buffer[..., self.length : end, :] = key_states
        self.value_buffer[..., self.length : end, :] = value_states
        return self._set_length(end)

    def _grown(self, buffer: torch.Tensor, needed: int) -> torch.Tensor:
        size = max(needed + 256, 2 * buffer.shape[-2])
        bigger = buffer.new_empty(*buffer.shape[:-2], size, buffer.shape[-1])
        bigger[..., : self.length, :] = buffer[..., : self.length, :]
        return bigger

    def _set_length(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.length = length
        keys, values = self.key_buffer[..., :length, :], self.value_buffer[..., :length, :]
        self.keys, self.values = keys, values
        return keys, values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def crop(self, tokens_to_remove: int) -> None:
        if self.is_initialized and tokens_to_remove < 0:
            self._set_length(max(0, self.length + tokens_to_remove))


def new_kv_cache(config: Any) -> DynamicCache:
    """A DynamicCache whose plain full-attention layers are GrowingLayers."""
    cache = DynamicCache(config=config)
    # Sliding-window and other special layers keep their own class.
    cache.layers = [
        GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers
    ]
    return cache
