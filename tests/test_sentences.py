"""One sentence splitter (retrieval/sentences.py): the chunker cuts where the evidence scorer and
the citation check split, abbreviations and closing quotes included."""

from __future__ import annotations

import doctest

import retrieval.sentences
from retrieval.chunking import chunk_text
from retrieval.sentences import split_sentences

TEXT = (
    "Isolates of S. aureus were screened in the U.S. for two genes. "
    'The castle was called Afranji, meaning "Franks." '
    "He was known in English by John C. Smith. "
    "患者说：“好。”医生开了药。每日三次；饭后服用。"
)


def test_doctests():
    assert doctest.testmod(retrieval.sentences).failed == 0


def test_abbreviations_and_quotes_do_not_end_a_sentence_early():
    assert split_sentences(TEXT) == [
        "Isolates of S. aureus were screened in the U.S. for two genes.",
        'The castle was called Afranji, meaning "Franks."',
        "He was known in English by John C. Smith.",
        "患者说：“好。”",
        "医生开了药。",
        "每日三次；饭后服用。",
    ]


def test_the_chunker_cuts_at_the_same_sentence_ends():
    # Chunks join whole sentences up to the budget: every cut is one of the splitter's ends.
    longest = max(len(s) for s in split_sentences(TEXT))
    spans = chunk_text(TEXT, count_tokens=len, max_tokens=longest)
    assert len(spans) > 3
    assert [s for span in spans for s in split_sentences(span.text)] == split_sentences(TEXT)
