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


WRAPPED = """## Loans

Adult members may borrow up to 12 items at a time. A loan may be renewed twice, online or at
the desk, unless another member has reserved the item. It is closed on
Sunday.
- Children's cards are not
  charged fines.
- DVDs: 7 days
第一条 访客车辆须在门岗登记，
免费停放2小时。
第二条 车库内禁止停放电动自行车。"""


def test_a_hard_wrapped_document_line_does_not_end_its_sentence():
    # Found asking our own documents: "It is closed on" / "Sunday." were two sentences, so the
    # answer to "Is the library open on Sunday?" was in neither.
    assert split_sentences(WRAPPED, unwrap=True) == [
        "## Loans",
        "Adult members may borrow up to 12 items at a time.",
        "A loan may be renewed twice, online or at the desk, unless another member has reserved "
        "the item.",
        "It is closed on Sunday.",
        "- Children's cards are not charged fines.",
        "- DVDs: 7 days",
        "第一条 访客车辆须在门岗登记，免费停放2小时。",
        "第二条 车库内禁止停放电动自行车。",
    ]
    # A model's own line breaks are kept: each line is its own claim to check.
    assert split_sentences("First line\nsecond line [1]") == ["First line", "second line [1]"]
