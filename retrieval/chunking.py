"""Cut a document's text into spans that fit the embedder, at the strongest boundary that fits.

Boundaries, strongest first: a statute article (第X条 at a line start), a markdown heading, a
blank line, a line end, a sentence end, a comma, a space, and as a last resort any character.
The recursion itself is langchain's RecursiveCharacterTextSplitter; this module chooses the
separators, measures in the embedder's tokens and maps every chunk back to its offsets.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from retrieval.sentences import SENTENCE_END
from retrieval.types import Span

_ARTICLE = r"(?<=\n)(?=[ \t\u3000]*第[一二三四五六七八九十百千零〇\d]+条)"
_HEADING = r"(?<=\n)(?=#{1,6}[ \t])"
# Sentence ends are retrieval/sentences.py's, the ones evidence and citations split on; a
# Chinese semicolon ends a clause, tried before a comma.
_AFTER_SENTENCES = ["；", "，", ", ", " ", ""]
_NON_SPACE = re.compile(r"\S")


def _separators() -> list[str]:
    return [_ARTICLE, _HEADING, r"\n\n", r"\n", SENTENCE_END.pattern, *_AFTER_SENTENCES]


def chunk_text(
    text: str,
    *,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int = 0,
) -> list[Span]:
    """Split `text` into in-order spans of at most `max_tokens` tokens each.

    Every span satisfies ``text[span.start:span.end] == span.text``, starts and ends on a
    non-whitespace character, and together the spans cover every non-whitespace character.
    Text that fits comes back as one span; whitespace-only text as none.

    >>> [s.text for s in chunk_text("第一条 甲。\\n第二条 乙。", count_tokens=len, max_tokens=8)]
    ['第一条 甲。', '第二条 乙。']
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(
            f"overlap_tokens must be in [0, max_tokens={max_tokens}), got {overlap_tokens}"
        )
    body = text.strip()
    if not body:
        return []
    start = len(text) - len(text.lstrip())
    # Most documents fit whole: one count, and the splitter never runs.
    if count_tokens(body) <= max_tokens:
        return [Span(body, start, start + len(body))]

    counts: dict[str, int] = {}

    def measure(piece: str) -> int:
        # The splitter asks about the same pieces again while merging; tokenizing is the cost.
        n = counts.get(piece)
        if n is None:
            n = counts[piece] = count_tokens(piece)
        return n

    pieces = _split(body, measure, max_tokens, overlap_tokens, _separators())
    return _locate(text, pieces, overlapping=overlap_tokens > 0)


def _split(
    body: str,
    measure: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int,
    separators: list[str],
) -> list[str]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    budget = max_tokens
    while True:
        splitter = RecursiveCharacterTextSplitter(
            separators=separators,
            keep_separator="end",
            is_separator_regex=True,
            chunk_size=budget,
            chunk_overlap=min(overlap_tokens, budget - 1),
            length_function=measure,
        )
        pieces = splitter.split_text(body)
        # The splitter sums the counts of the pieces it joins; a tokenizer can count the joined
        # text higher (a word cut at the character level), so check, and re-split tighter.
        worst = max(pieces, key=measure)
        if measure(worst) <= max_tokens:
            return pieces
        if budget == 1:
            # At a budget of one token every chunk is a single character.
            raise ValueError(
                f"max_tokens={max_tokens} is too small: {worst!r} alone counts "
                f"{measure(worst)} tokens with this tokenizer"
            )
        budget = max(1, min(budget - 1, budget * max_tokens // measure(worst)))


def _locate(text: str, pieces: list[str], *, overlapping: bool) -> list[Span]:
    """Give each chunk its offsets in `text`, in order and leaving no text uncovered.

    A chunk starts after the previous one's start, and no later than the first character after
    the previous one's end (only stripped whitespace lies between). Without overlap that pins
    every start; with overlap, repeated text can leave a choice, so try the latest occurrence
    first and back up on a dead end.
    """
    last_end = len(text.rstrip())
    starts: list[int] = []
    options = [[len(text) - len(text.lstrip())]]
    dead: set[tuple[int, int]] = set()  # (piece index, start) that cannot lead to a full cover
    while options:
        if not options[-1]:
            options.pop()
            if starts:
                dead.add((len(starts) - 1, starts.pop()))
            continue
        starts.append(options[-1].pop())
        i = len(starts)
        end = starts[-1] + len(pieces[i - 1])
        if i == len(pieces):
            if end == last_end:
                return [Span(p, s, s + len(p)) for p, s in zip(pieces, starts, strict=True)]
            dead.add((i - 1, starts.pop()))
            continue
        after = _NON_SPACE.search(text, end)
        latest = after.start() if after else len(text)
        first = starts[-1] + 1 if overlapping else latest
        options.append(
            [s for s in _occurrences(text, pieces[i], first, latest) if (i, s) not in dead]
        )
    raise RuntimeError("chunks do not tile their text; this is a bug in chunk_text")


def _occurrences(text: str, piece: str, first: int, latest: int) -> list[int]:
    """Starts of `piece` in `text` between `first` and `latest` inclusive, in increasing order."""
    found = []
    at = text.find(piece, first, latest + len(piece))
    while at >= 0:
        found.append(at)
        at = text.find(piece, at + 1, latest + len(piece))
    return found
