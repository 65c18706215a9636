"""Shortened questions for training the evidence scorer: what a person types, not what an
annotator wrote while reading the answer sentence.

XQuAD's questions were written from the paragraph, so they repeat most of the answer sentence's
words; a scorer trained on them alone learns that a sentence with many words the question lacks
does not answer it, and refuses "When do you close on Fridays?" against "Friday 7:30-16:00"
(docs/EVALS.md). A shortened copy keeps the question's frame (its wh-words, 多少, 几) and a
random part of its content words, with the same answer sentence and the same candidates.
"""

from __future__ import annotations

import random
import re

from agent.evidence import ASKS_LIMIT, ASKS_NUMBER
from retrieval.lexical import content_words

_CJK = re.compile(r"[\u3400-\u9fff]")


def _tokens(question: str) -> list[tuple[int, str]]:
    """The question's words (jieba's for Chinese), each with where it starts."""
    if _CJK.search(question):
        import jieba

        return [(start, word) for word, start, _ in jieba.tokenize(question)]
    return [(m.start(), m.group()) for m in re.finditer(r"\S+", question)]


def _frame(question: str) -> set[int]:
    """The characters of what the question asks for: "how late", "多少天", "最多"."""
    spans = [m.span() for p in (ASKS_NUMBER, ASKS_LIMIT) for m in p.finditer(question)]
    return {i for a, b in spans for i in range(a, b)}


def shorten(question: str, rng: random.Random, keep: tuple[float, float] = (0.3, 0.6)) -> str:
    """`question` with part of its content words left out (at least one stays); the words
    between them, and so the question's frame, stay as they were.

    >>> shorten("How late can sixth-form students stay in the library?", random.Random(0))
    'How late sixth-form students in the library?'
    """
    tokens = _tokens(question)
    words, frame = set(content_words(question)), _frame(question)
    content = [
        i
        for i, (start, t) in enumerate(tokens)
        if set(content_words(t)) & words and not frame & set(range(start, start + len(t)))
    ]
    if len(content) < 2:
        return question
    n = max(1, round(len(content) * rng.uniform(*keep)))
    dropped = set(rng.sample(content, len(content) - n))
    # A dropped English word leaves its punctuation ("hours?" -> "?").
    kept = [re.sub(r"[\w'-]+", "", t) if i in dropped else t for i, (_, t) in enumerate(tokens)]
    if _CJK.search(question):
        return "".join(kept)
    return re.sub(r" (?=[?!.,;:])", "", " ".join(t for t in kept if t))
