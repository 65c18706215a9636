"""Fit the retrieved passages into the answer prompt's token budget, best-ranked first.

The model reads every prompt token before it writes the first answer token, and a model's window
is finite. Chinese text costs SmolLM2 about 1.6 tokens per character, so five medical passages
from CMB-Clin made a prompt of ~3,000 tokens (most of a 7 s wait on CPU) and could overflow a
small-window model. Passages go in by rank; one that does not fit whole keeps the leading
sentences that do, and once the budget is spent the rest stay out of the prompt. They are still
shown as sources, and citation checks still read every retrieved passage in full.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.citations import split_sentences
from prompts import fence
from retrieval.lang import has_cjk
from retrieval.types import Hit


def fit_passages(
    hits: Sequence[Hit], count_tokens: Callable[[str], int], budget: int
) -> list[dict[str, object]]:
    """Template passages ({n, title, text}) for `hits`, their texts within `budget` tokens.

    Numbers stay the hits' ranks (1-based). The best passage always goes in, cut to its first
    sentence if even that is over budget: a prompt without evidence helps nobody.
    """
    passages: list[dict[str, object]] = []
    left = budget
    for i, hit in enumerate(hits):
        if passages and left <= 0:
            break  # spent: the passages below need not be tokenized at all
        text, cost = _leading(hit.text, count_tokens, left, at_least_one=not passages)
        if not text:
            break
        passages.append({"n": i + 1, "title": fence(hit.title), "text": fence(text)})
        left -= cost
    return passages


def _leading(
    text: str, count_tokens: Callable[[str], int], budget: int, *, at_least_one: bool
) -> tuple[str, int]:
    """(the longest run of leading sentences of `text` within `budget` tokens, its tokens)."""
    whole = count_tokens(text)
    if whole <= budget:
        return text, whole
    joiner = "" if has_cjk(text[:50]) else " "
    kept: list[str] = []
    used = 0
    for sentence in split_sentences(text):
        cost = count_tokens(sentence)
        if used + cost > budget and not (at_least_one and not kept):
            break
        kept.append(sentence)
        used += cost
    return joiner.join(kept), used
