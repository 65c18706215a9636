"""Start a prompt from the keys and values of the beginning it shares with a recent one.

Every answer prompt opens with the same chat-template header and answer rules (150 to 300 of its 500
to 700 tokens with SmolLM2), and the model used to read them again on every turn: prefill is most of
a turn's time to first token on a CPU. The keys and values of the last few prompts are kept (ENTRIES
of them: a follow-up's rewrite prompt comes between two answer prompts; about 46 KB a token for
SmolLM2-135M in float32) and a prompt starts from the longest beginning it shares with one of them,
so prefill reads only what differs. The attention over the kept keys is the same computation split
in two passes, as every prompt-lookup draft of agent/decoding.py already is; only the summation
order of the prefix's projections may differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

# Below this many shared tokens the copy is not worth it (a chat header alone is ~10 tokens).
MIN_SHARED = 16
# Prompts kept: the answer prompt, and the rewrite or chit-chat prompt that may come between two.
ENTRIES = 3


class PrefixCache:
    """The last prompts' token ids and, per layer, their keys and values; used under the model's
    lock (agent/lm_local.py), so one turn at a time reads or replaces them."""

    def __init__(self, min_shared: int = MIN_SHARED, entries: int = ENTRIES) -> None:
        self.min_shared, self.entries = min_shared, entries
        # Most recent last: (ids, [(keys, values) per layer]).
        self._kept: list[tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]]]] = []

    def reuse(self, ids: Sequence[int], cache: Any) -> int:
        """Fill the empty `cache` with the kept keys and values of the longest beginning `ids`
        shares with a kept prompt, leaving at least one token to feed; return its length
        (0: nothing reused, `cache` untouched)."""
        best, kv = 0, None
        for kept, layers in self._kept:
            shared = _shared(kept, ids)
            if shared > best:
                best, kv = shared, layers
        shared = min(best, len(ids) - 1)
        if kv is None or shared < self.min_shared or len(cache.layers) != len(kv):
            return 0
        for layer, (keys, values) in zip(cache.layers, kv, strict=True):
            layer.update(keys[..., :shared, :], values[..., :shared, :])
        return shared

    def keep(self, ids: Sequence[int], cache: Any) -> None:
        """Remember prompt `ids`, whose keys and values (and nothing more) `cache` holds now."""
        layers = cache.layers
        whole = all(
            getattr(layer, "is_initialized", False) and layer.keys.shape[-2] == len(ids)
            for layer in layers
        )
        if not whole:
            # A sliding-window layer keeps only the last tokens: its keys cannot start a prompt.
            return
        kv = [(layer.keys.clone(), layer.values.clone()) for layer in layers]
        self._kept = [*self._kept, (list(ids), kv)][-self.entries :]

    @property
    def kept_ids(self) -> list[list[int]]:
        """The kept prompts' token ids, most recent last."""
        return [ids for ids, _ in self._kept]


def _shared(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens `a` and `b` share from their start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
