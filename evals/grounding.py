"""Faithfulness of one answer: how many of its sentences a passage they cite supports.

The support score and threshold are the citation verifier's own (agent/citations.py
`SupportScorer`: 0.5 x content-word overlap + 0.5 x rescaled multilingual-e5 cosine, verified at
0.45), so faithfulness measures what `Citation.verified` means, sentence by sentence: a sentence
counts as supported when at least one passage it cites with [n] scores at or above the threshold;
a sentence without a valid marker counts as unsupported. In strict mode the agent shows only
verified sentences, so faithfulness sits near 1 by construction; with `strict = false` it measures
the model's own grounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.citations import SupportConfig, markers, split_sentences


class Scorer(Protocol):
    config: SupportConfig

    def scores(
        self, sentences: Sequence[str], passages: Sequence[str]
    ) -> list[list[tuple[float, str]]]: ...


def supported_sentences(answer: str, passages: Sequence[str], scorer: Scorer) -> tuple[int, int]:
    """(supported sentences, all sentences) of `answer`, whose [n] refer to `passages` (1-based)."""
    sentences = split_sentences(answer)
    if not sentences:
        return 0, 0
    table = scorer.scores(sentences, passages) if passages else [[] for _ in sentences]
    threshold = scorer.config.threshold
    supported = sum(
        any(1 <= n <= len(row) and row[n - 1][0] >= threshold for n in markers(sentence))
        for sentence, row in zip(sentences, table, strict=True)
    )
    return supported, len(sentences)
