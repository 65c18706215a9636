"""Evidence gate: when retrieval found nothing strong enough, refuse rather than let the LM invent.

Two checks: are the passages on the question's topic (`gate`, below), and does some sentence of
theirs answer it (the trained evidence scorer, agent/evidence.py: on-topic passages without the
answer, such as RGB's negatives, pass the first check and fail the second). `weigh` runs both:
the second decides whether to answer (the support score alone refused "Which team won Super Bowl
50?" with the Super Bowl paragraphs on top); on topic but unanswered is a refusal with the
closest sources, never the out-of-scope reply.

Strength = the best support score (agent/citations.py) between the query and any of the top
passages: the same lexical + embedding measure that verifies citations.

DEFAULT_THRESHOLD by measurement on the real indexes (`python -m evals.gate_calibration --no-build
--data-dir DIR --per-set 20 --uncovered 15`: hybrid search, top 5, group filter, every set's
evaluation knowledge base; rgb-zh from 2,752 of its 6,330 documents, whole groups only, 70 of its
refuse cases). Strength p10 / p50 / p90: answerable questions (130, 20 per set) 0.27 / 0.53 /
0.79; uncovered questions (90, each set's questions asked of another field's knowledge base)
0.07 / 0.16 / 0.32; rgb-zh refuse cases 0.57 / 0.73 / 0.85. At 0.325 (best balanced accuracy,
0.876, tied with 0.35) 92% of uncovered questions are refused and 83% of answerable ones pass
(xquad-en 0.90, xquad-zh 1.00, pubmedqa 1.00, stard 0.95, rgb-zh 1.00; policyqa 0.65 and
cmb-clin 0.40, whose long case records support short questions weakly). RGB-zh's refuse cases
(news about the same event, without the answer) score above answerable ones, so no threshold
refuses them without refusing most answerable questions (1% refused at 0.325, 70% at 0.8 with
91% of answerable ones refused too): the span reader's "no answer here" (agent/finding.py) is
the guard there for open questions, and the answer prompt's "the documents do not say".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.citations import SupportScorer
from agent.evidence import Evidence, EvidenceFinder
from retrieval.lang import detect_lang
from retrieval.types import Hit

DEFAULT_THRESHOLD = 0.325


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    strength: float
    best: int  # the hit to quote: see `gate`; -1 when there were none
    evidence: str = ""  # the sentence of that hit closest to the query
    on_topic: bool = False  # the passages are about the question (the support check alone)
    ranked: tuple[Evidence, ...] = ()  # candidate answer sentences, most likely first
    cut: float = 0.0  # the probability at which a ranked sentence is likely to answer


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


def weigh(
    query: str,
    hits: Sequence[Hit],
    finder: EvidenceFinder,
    threshold: float = DEFAULT_THRESHOLD,
    evidence_threshold: float | None = None,
) -> GateDecision:
    """Both checks (module docstring). `best`/`evidence` become the most likely answer sentence,
    in the query's language when one of those is likely enough. A threshold of 0 turns a check off.
    """
    topic = gate(query, hits, finder.scorer, threshold)
    ranked = tuple(finder.rank(query, hits))
    if not ranked:
        return topic
    cut = finder.model.threshold if evidence_threshold is None else evidence_threshold
    lang = detect_lang(query)
    readable = [e for e in ranked if e.score >= cut and (hits[e.hit].lang or lang) == lang]
    top = readable[0] if readable else ranked[0]
    answered = ranked[0].score >= cut
    return GateDecision(
        answered, top.score, top.hit, top.sentence, topic.passed or answered, ranked, cut
    )
