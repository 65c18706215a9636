"""Where sentences end: the one splitter of the chunker, the evidence scorer and citation checks.

A sentence ends at Chinese or ! ? punctuation, a newline, or a period that is followed by space
and not by a lowercase word ("e.g. this"), and not preceded by a lone capital ("U.S."). Citation
markers written after the end ("甲是乙。[1]") belong to the sentence they follow, and so does a
closing quote ("他说：“好。”").
"""

from __future__ import annotations

import re

# [1], [1, 2], 【1】: the forms models write; at most two digits, so "[2024]" is not a citation.
MARKER = re.compile(r"\s*[\[【](\d{1,2}(?:\s*[,，、]\s*\d{1,2})*)[\]】]")
_CLOSE = "[”’」』）\"')]*"  # a closing quote or bracket after the mark stays with its sentence
SENTENCE_END = re.compile(
    rf"(?:[。！？!?]+{_CLOSE}|(?<!\b[A-Z])\.{_CLOSE}(?=\s+[^a-z\s]|\s*$|\s*[\[【])|\n)"
    r"(?:\s*[\[【]\d{1,2}(?:\s*[,，、]\s*\d{1,2})*[\]】])*"
)


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing citation markers attached; no text is lost.

    >>> split_sentences("A is 3.5 [1]. C is D [2] [3]. 甲是乙。[1]")
    ['A is 3.5 [1].', 'C is D [2] [3].', '甲是乙。[1]']
    >>> split_sentences('Called "Franks." Then 他说：“好。”再见。')
    ['Called "Franks."', 'Then 他说：“好。”', '再见。']
    """
    out, start = [], 0
    for m in SENTENCE_END.finditer(text):
        out.append(text[start : m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if MARKER.sub("", s).strip("。！？；!?;. ")]
