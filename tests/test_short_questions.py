"""The shortened questions the evidence scorer also trains on (evals/short_questions.py)."""

from __future__ import annotations

import doctest
import random

import evals.short_questions
from evals.short_questions import shorten
from retrieval.lexical import content_words


def test_doctests() -> None:
    assert doctest.testmod(evals.short_questions).failed == 0


def test_what_is_asked_for_stays_and_some_content_words_go() -> None:
    question = "How late can sixth-form students stay in the library on Fridays?"
    words = set(content_words(question))
    for seed in range(20):
        short = shorten(question, random.Random(seed))
        assert short.startswith("How late") and short.endswith("?")
        kept = set(content_words(short)) & words
        assert kept and len(kept) < len(words)


def test_chinese_keeps_its_frame_and_no_spaces() -> None:
    question = "网上买的东西多少天内可以无理由退货？"
    for seed in range(20):
        short = shorten(question, random.Random(seed))
        assert "多少" in short and " " not in short and short.endswith("？")
        assert len(short) < len(question)


def test_a_question_with_one_content_word_is_left_alone() -> None:
    assert shorten("What is BM25?", random.Random(0)) == "What is BM25?"


def test_the_same_seed_gives_the_same_question() -> None:
    question = "Which NFL team represented the AFC at Super Bowl 50?"
    assert shorten(question, random.Random(3)) == shorten(question, random.Random(3))
