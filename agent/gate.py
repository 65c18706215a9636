"""Evidence gate: refuse instead of letting the LM invent when retrieval found nothing strong enough.

Strength = the best support score (agent/citations.py) between the query and any of the top
passages: the same lexical + embedding measure that verifies citations. The threshold is chosen by
measurement (`python -m evals.support_calibration`, see DEFAULT_THRESHOLD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.citations import SupportScorer
from retrieval.types import Hit

DEFAULT_THRESHOLD = 0.45


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    strength: float
    best: int  # index of the strongest hit, -1 when there were none
    evidence: str = ""  # the sentence of that hit closest to the query


def gate(
    query: str,
    hits: Sequence[Hit],
    scorer: SupportScorer,
    threshold: float = DEFAULT_THRESHOLD,
    top: int = 5,
) -> GateDecision:
    """Pass when the strongest of the top hits supports the query at `threshold` or more."""
    if not hits:
        return GateDecision(False, 0.0, -1)
    row = scorer.scores([query], [h.text for h in hits[:top]])[0]
    best = max(range(len(row)), key=lambda i: row[i][0])
    strength, evidence = row[best]
    return GateDecision(strength >= threshold, strength, best, evidence)
