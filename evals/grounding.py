"""Faithfulness of one answer: how many of its sentences a passage they cite supports.

The check is the citation verifier's own (agent/citations.py `supports`: the support score at its
threshold, and every number, negation and name matching the supporting passage sentence), so
faithfulness measures what `Citation.verified` means, sentence by sentence: a sentence counts as
supported when at least one passage it cites with [n] supports it; a sentence without a valid
marker counts as unsupported. In strict mode the agent shows only verified sentences, so
faithfulness sits near 1 by construction; with `strict = false` (evals/configs/lenient.toml) it
measures the model's own grounding.

`unsupported_numbers` counts the other direction for the evaluation metric
`citation.unsupported_number_rate`: verified citations whose sentence states a number that
occurs nowhere in the cited passage (what a user would call an invented figure marked verified).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.citations import SupportConfig, supports
from agent.markers import markers, strip_markers
from agent.quantities import quantities
from retrieval.sentences import split_sentences


class Scorer(Protocol):
    config: SupportConfig

    def scores(
        self, sentences: Sequence[str], passages: Sequence[str]
    ) -> list[list[tuple[float, str]]]: ...


def supported_sentences(
    answer: str, passages: Sequence[str], scorer: Scorer, question: str = ""
) -> tuple[int, int]:
    """(supported sentences, all sentences) of `answer`, whose [n] refer to `passages` (1-based)."""
    sentences = split_sentences(answer)
    if not sentences:
        return 0, 0
    table = scorer.scores(sentences, passages) if passages else [[] for _ in sentences]
    threshold = scorer.config.threshold
    supported = sum(
        any(
            1 <= n <= len(row)
            and supports(strip_markers(s), *row[n - 1], passages[n - 1], question, threshold)
            for n in markers(s)
        )
        for s, row in zip(sentences, table, strict=True)
    )
    return supported, len(sentences)


def number_in(sentence: str, passage: str) -> bool:
    """Whether every number the sentence states occurs somewhere in the passage.

    >>> number_in("The maximum is 100 mg [1].", "Take no more than 4,000 mg a day.")
    False
    """
    stated = quantities(passage)
    return all(any(q.matches(p) for p in stated) for q in quantities(strip_markers(sentence)))
