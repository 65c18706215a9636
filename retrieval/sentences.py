"""Where sentences end: the one splitter of the chunker, the evidence scorer and citation checks.

A sentence ends at Chinese or ! ? punctuation, a newline, or a period that is followed by space
and not by a lowercase word ("e.g. this"), and not preceded by a lone capital ("U.S."). Citation
markers written after the end ("甲是乙。[1]") belong to the sentence they follow, and so does a
closing quote ("他说：“好。”"). In a document (`unwrap`; a model's line breaks are its own), a
newline inside a hard-wrapped paragraph is not an end: a line
that stops mid-sentence (on a word or a comma) continues on the next, unless that one starts a
list item, a heading, a table row or a numbered article ("It is closed on\nSunday." is one
sentence, "第二条 …\n第三条 …" two).
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


# A line that is a block of its own: its end is always a sentence end.
_OWN_LINE = re.compile(r"\s*[#|]")
# A line that starts a new block: the line before it ends there.
_STARTS_BLOCK = re.compile(
    r"\s*(?:$|[#>|*+•·-]|\d+[.)、]|[（(]?[一二三四五六七八九十]+[、)）]|"
    r"第[零〇一二两三四五六七八九十百千\d]+[条章节款编])"
)
_MID_SENTENCE = re.compile(r"[\w,，、;；:：(（“\"'-]$")


def _wrapped(text: str, at: int) -> bool:
    """Whether the newline at `at` only wraps a paragraph's line."""
    line = text[text.rfind("\n", 0, at) + 1 : at]
    end = text.find("\n", at + 1)
    following = text[at + 1 : end if end >= 0 else len(text)]
    return bool(
        _MID_SENTENCE.search(line.rstrip())
        and not _OWN_LINE.match(line)
        and not _STARTS_BLOCK.match(following)
    )


_WRAP = re.compile(r"(.?)[ \t]*\n\s*(.?)")


def _join_lines(sentence: str) -> str:
    def join(m: re.Match[str]) -> str:
        before, after = m.group(1), m.group(2)
        cjk = before > "\u2e80" and after > "\u2e80"
        return f"{before}{'' if cjk else ' '}{after}"

    return _WRAP.sub(join, sentence)


def split_sentences(text: str, unwrap: bool = False) -> list[str]:
    """Sentences with their trailing citation markers attached; no text is lost.

    >>> split_sentences("A is 3.5 [1]. C is D [2] [3]. 甲是乙。[1]")
    ['A is 3.5 [1].', 'C is D [2] [3].', '甲是乙。[1]']
    >>> split_sentences('Called "Franks." Then 他说：“好。”再见。')
    ['Called "Franks."', 'Then 他说：“好。”', '再见。']
    >>> split_sentences("It is closed on\\nSunday.\\n- Item one\\n## Fines\\nNone", unwrap=True)
    ['It is closed on Sunday.', '- Item one', '## Fines', 'None']
    """
    out, start = [], 0
    for m in SENTENCE_END.finditer(text):
        if unwrap and m.group() == "\n" and _wrapped(text, m.start()):
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    if unwrap:
        out = [_join_lines(s) for s in out]
    return [s for s in out if MARKER.sub("", s).strip("。！？；!?;. ")]
