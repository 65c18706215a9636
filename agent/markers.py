"""Citation markers in answer text: the [n] numbers a sentence cites, and taking them off or
putting them back before its final punctuation."""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.sentences import MARKER


def markers(sentence: str) -> list[int]:
    """The [n] numbers cited in a sentence, in order, without repeats.

    >>> markers("A [2] and B [1, 2]【3】.")
    [2, 1, 3]
    """
    found = (int(n) for group in MARKER.findall(sentence) for n in re.findall(r"\d+", group))
    return list(dict.fromkeys(found))


def strip_markers(sentence: str) -> str:
    return MARKER.sub("", sentence).strip()


def with_markers(sentence: str, numbers: Sequence[int]) -> str:
    """`sentence` (markers stripped) with [n] for each number, before its final punctuation.

    >>> with_markers("A is B.", [1, 2]), with_markers("甲是乙。", [])
    ('A is B [1] [2].', '甲是乙。')
    """
    body = sentence.rstrip()
    end = len(body.rstrip("。！？；!?;.\n"))
    return body[:end] + "".join(f" [{n}]" for n in numbers) + body[end:]
