"""Citation verification: does the passage an answer sentence cites actually support it?

support(sentence, passage) = 0.5 * lexical + 0.5 * semantic, both in [0, 1]:
- lexical: share of the sentence's content tokens (jieba words for Chinese, lowercased words for
  English) that occur in the passage;
- semantic: cosine between the sentence and the passage's best-matching sentence under the
  verifier's embedder, rescaled from [floor, 1] to [0, 1] (multilingual-e5 puts unrelated text near
  0.75, so raw cosine would call everything supported).
A citation is verified when support >= threshold. The evaluation's faithfulness uses the same score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.types import Citation
from retrieval.lang import has_cjk
from retrieval.lexical import segment
from retrieval.protocols import Embedder
from retrieval.types import Hit

_MARK = re.compile(r"\s*\[(\d{1,2})\]")
_SENTENCE = re.compile(r"[^。！？；!?.;\n]+(?:[。！？；!?;]|\.(?=\s|$|\[)|\n|$)(?:\s*\[\d{1,2}\])*")


@dataclass(frozen=True)
class SupportConfig:
    threshold: float = 0.5
    semantic_floor: float = 0.75
    lexical_weight: float = 0.5


@dataclass(frozen=True)
class Verified:
    """What the check found: the full text, its supported part, and every citation with a verdict."""

    text: str  # every sentence; dangling markers removed, unverified markers kept
    grounded: str  # only the sentences a passage supports, with their verified markers
    citations: tuple[Citation, ...]  # verified ones and, with verified=False, the ones that failed
    unsupported_sentences: tuple[str, ...]


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing citation markers attached.

    >>> split_sentences("A is B [1]. C is D [2] [3]. 甲是乙。[1]")
    ['A is B [1].', 'C is D [2] [3].', '甲是乙。[1]']
    """
    out = []
    for m in _SENTENCE.finditer(text):
        s = m.group(0).strip()
        if s:
            out.append(s)
    return out


def markers(sentence: str) -> list[int]:
    """The [n] numbers cited in a sentence, in order, without repeats."""
    return list(dict.fromkeys(int(n) for n in _MARK.findall(sentence)))


def strip_markers(sentence: str) -> str:
    return _MARK.sub("", sentence).strip()


class SupportScorer:
    """Scores how well passages support sentences (shared by the verifier, the gate and evals)."""

    def __init__(self, embedder: Embedder, config: SupportConfig | None = None) -> None:
        self.embedder = embedder
        self.config = config or SupportConfig()

    def lexical(self, sentence: str, passage_tokens: set[str]) -> float:
        words = {t for t in segment(sentence) if len(t) > 1 or not t.isascii()}
        if not words:
            return 0.0
        return len(words & passage_tokens) / len(words)

    def scores(self, sentences: Sequence[str], passages: Sequence[str]) -> list[list[tuple[float, str]]]:
        """For each sentence and each passage: (support in [0, 1], best supporting passage sentence).

        Passage sentences are embedded once per call, so checking an answer costs one batch.
        """
        clean = [strip_markers(s) for s in sentences]
        pieces = [split_sentences(p) or [p] for p in passages]
        flat = [x for piece in pieces for x in piece]
        if not clean or not flat:
            return [[(0.0, "") for _ in passages] for _ in clean]
        piece_vecs = self.embedder.embed_documents(flat)
        sent_vecs = np.stack([self.embedder.embed_query(s) for s in clean])
        sims = sent_vecs @ piece_vecs.T
        floor, w = self.config.semantic_floor, self.config.lexical_weight
        tokens = [set(segment(p)) for p in passages]
        out: list[list[tuple[float, str]]] = []
        for i, sentence in enumerate(clean):
            row, offset = [], 0
            for j, piece in enumerate(pieces):
                block = sims[i, offset : offset + len(piece)]
                offset += len(piece)
                k = int(np.argmax(block))
                semantic = float(np.clip((block[k] - floor) / (1.0 - floor), 0.0, 1.0))
                row.append((w * self.lexical(sentence, tokens[j]) + (1 - w) * semantic, piece[k]))
            out.append(row)
        return out

    def support(self, sentence: str, passage: str) -> tuple[float, str]:
        """(support in [0, 1], the passage sentence that supports it best)."""
        return self.scores([sentence], [passage])[0][0]


def verify(answer: str, passages: Sequence[Hit], scorer: SupportScorer) -> Verified:
    """Check every [n] against passage n (1-based); drop dangling and unsupported markers.

    A sentence without any marker gets the passage that supports it best, when one clears the
    threshold, so every claim that can be checked is cited. Sentences that nothing supports are
    listed in `unsupported_sentences` and left out of `grounded`; the caller chooses which to show.
    """
    threshold = scorer.config.threshold
    sentences = split_sentences(answer)
    table = scorer.scores(sentences, [p.text for p in passages])
    full: list[str] = []
    grounded: list[str] = []
    citations: list[Citation] = []
    unsupported: list[str] = []
    for sentence, row in zip(sentences, table, strict=True):
        clean = strip_markers(sentence)
        cited = [n for n in markers(sentence) if 1 <= n <= len(passages)]
        if not cited and row:
            best_n = max(range(len(row)), key=lambda j: row[j][0]) + 1
            cited = [best_n] if row[best_n - 1][0] >= threshold else []
        good = [n for n in cited if row[n - 1][0] >= threshold]
        for n in cited:
            hit, (score, best) = passages[n - 1], row[n - 1]
            citations.append(
                Citation(
                    n=n,
                    doc_id=hit.doc_id,
                    kb=hit.kb,
                    chunk_id=hit.chunk_id,
                    title=hit.title,
                    snippet=hit.text[:300],
                    sentence=clean,
                    support=round(score, 4),
                    supporting_text=best,
                    verified=n in good,
                )
            )
        full.append(clean + "".join(f" [{n}]" for n in cited))
        if good:
            grounded.append(clean + "".join(f" [{n}]" for n in good))
        else:
            unsupported.append(clean)
    joiner = "" if has_cjk(answer[:50]) else " "
    return Verified(joiner.join(full), joiner.join(grounded), tuple(citations), tuple(unsupported))
