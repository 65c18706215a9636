"""Evidence gate: when retrieval found nothing strong enough, refuse rather than let the LM invent.

Strength = the best support score (agent/citations.py) between the query and any of the top
passages: the same lexical + embedding measure that verifies citations.

DEFAULT_THRESHOLD by measurement (`python -m evals.support_calibration --per-set 0`, 40 questions
per kind, top 5 by word overlap): strength p10 / p50 / p90 of XQuAD questions with their article
in the corpus 0.39 / 0.56 / 0.74 (en) and 0.42 / 0.62 / 0.78 (zh); with it left out ("not
covered") 0.08 / 0.13 / 0.25 and 0.17 / 0.24 / 0.33. At 0.325, 97% of answerable questions pass
and 95% of uncovered ones are refused (best balanced accuracy, 0.96). RGB-zh's negative groups
(related news without the answer) score like answerable ones (p50 0.73 against 0.82): no
threshold separates them, so the answer prompt's "the documents do not say" handles that case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.citations import SupportScorer
from retrieval.lang import detect_lang
from retrieval.types import Hit

DEFAULT_THRESHOLD = 0.325


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    strength: float
    best: int  # the hit to quote: see `gate`; -1 when there were none
    evidence: str = ""  # the sentence of that hit closest to the query


def gate(
    query: str,
    hits: Sequence[Hit],
    scorer: SupportScorer,
    threshold: float = DEFAULT_THRESHOLD,
    top: int = 5,
) -> GateDecision:
    """Pass when the strongest of the top hits supports the query at `threshold` or more.

    `best` is the strongest hit, or the strongest in the query's language when one of those
    clears the threshold too, so that a quoted fallback answer is one the user can read.
    """
    if not hits:
        return GateDecision(False, 0.0, -1)
    row = scorer.scores([query], [h.text for h in hits[:top]])[0]
    strength = max(score for score, _ in row)
    lang = detect_lang(query)
    readable = [
        i
        for i, (score, _) in enumerate(row)
        if score >= threshold and (hits[i].lang or detect_lang(hits[i].text)) == lang
    ]
    best = max(readable or range(len(row)), key=lambda i: row[i][0])
    return GateDecision(strength >= threshold, strength, best, row[best][1])
