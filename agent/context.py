"""Fit the retrieved passages into the answer prompt's token budget, best-ranked first.

The model reads every prompt token before it writes the first answer token, and a model's window
is finite. Chinese text costs SmolLM2 about 1.6 tokens per character, so five medical passages
from CMB-Clin made a prompt of ~3,000 tokens (most of a 7 s wait on CPU) and could overflow a
small-window model. Passages go in by rank; one that does not fit whole keeps the leading
sentences that do, and once the budget is spent the rest stay out of the prompt. They are still
shown as sources, and citation checks still read every retrieved passage in full.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from agent.evidence import Evidence
from prompts import fence
from retrieval.lang import has_cjk
from retrieval.sentences import split_sentences
from retrieval.types import Hit

# Sentences of evidence an answer prompt holds: the likeliest answers and little else, so a small
# model copies the right one and reads a short prompt (time to first token is prefill).
EVIDENCE_SENTENCES = 6


def evidence_hits(
    hits: Sequence[Hit], ranked: Sequence[Evidence], keep: int = EVIDENCE_SENTENCES
) -> list[tuple[int, Hit]]:
    """(n, hit) for the answer prompt: each hit cut to its sentences among the `keep` likeliest
    answers (in the passage's order), the hit with the likeliest first; n stays its rank.
    Without ranked evidence, every hit whole, in rank order.

    >>> h = [Hit(1, "a", "kb", 1.0, "A one. A two."), Hit(2, "b", "kb", 0.5, "B one. B two.")]
    >>> ev = [Evidence(1, "B two.", 0.9), Evidence(0, "A one.", 0.5), Evidence(1, "B one.", 0.1)]
    >>> [(n, x.text) for n, x in evidence_hits(h, ev, keep=2)]
    [(2, 'B two.'), (1, 'A one.')]
    """
    if not ranked:
        return [(i + 1, hit) for i, hit in enumerate(hits)]
    chosen: dict[int, list[str]] = {}
    for e in ranked[:keep]:
        chosen.setdefault(e.hit, []).append(e.sentence)
    out = []
    for i, sentences in chosen.items():
        text = hits[i].text
        ordered = sorted(sentences, key=lambda x: (text.find(x), x))
        joiner = "" if has_cjk(text[:50]) else " "
        out.append((i + 1, dataclasses.replace(hits[i], text=joiner.join(ordered))))
    return out


def fit_passages(
    hits: Sequence[Hit] | Sequence[tuple[int, Hit]],
    count_tokens: Callable[[str], int],
    budget: int,
) -> list[dict[str, object]]:
    """Template passages ({n, title, text}) for `hits`, their texts within `budget` tokens.

    `hits` in rank order, or (n, hit) pairs in the order to show them (`evidence_hits`). The
    first passage always goes in, cut to its first sentence if even that is over budget: a
    prompt without evidence helps nobody.
    """
    passages: list[dict[str, object]] = []
    left = budget
    numbered = [h if isinstance(h, tuple) else (i + 1, h) for i, h in enumerate(hits)]
    for n, hit in numbered:
        if passages and left <= 0:
            break  # spent: the passages below need not be tokenized at all
        text, cost = _leading(hit.text, count_tokens, left, at_least_one=not passages)
        if not text:
            break
        passages.append({"n": n, "title": fence(hit.title), "text": fence(text)})
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
    for sentence in split_sentences(text, unwrap=True):
        cost = count_tokens(sentence)
        if used + cost > budget and not (at_least_one and not kept):
            break
        kept.append(sentence)
        used += cost
    return joiner.join(kept), used
