"""Cut a document into passages a citation can point at: one legal article, one heading section,
or one group of paragraphs each, whatever the document's length, with its heading path.

A five-article law file used to fit the embedder whole and became one passage, so a citation
pointed at the file instead of 第十九条. Here structure decides first: every 第…条 line starts an
article that is a passage of its own; a markdown heading (or a 第…章/节 line) starts a section
and joins the heading path the passages under it carry; other text is grouped paragraph by
paragraph up to `group_tokens`. Only a unit longer than the embedder allows is cut further, by
the size-based splitter (retrieval/chunking.py). Heading lines stay in the first passage under
them, so the passages still cover every non-whitespace character of the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from retrieval.chunking import chunk_text
from retrieval.types import Span

# Bumped whenever passages come out differently: stored documents cut under another version are
# re-cut by `citewise kb rechunk` (and by re-ingesting them).
VERSION = "2"
GROUP_TOKENS = 160
_ARTICLE = re.compile(r"[ \t\u3000]*第[一二三四五六七八九十百千零〇\d]+条")
_CHAPTER = re.compile(r"[ \t\u3000]*(第[一二三四五六七八九十百千零〇\d]+[编章节])[ \t\u3000]*(.*)")
_MARKDOWN = re.compile(r"(#{1,6})[ \t]+(.*?)[ \t#]*$")
_LINE = re.compile(r"[^\n]*\n?")


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    heading: str
    article: bool  # an article: never grouped with the text around it


def _heading(line: str) -> tuple[int, str] | None:
    """(level, title) when the line is a heading."""
    if m := _MARKDOWN.match(line):
        return len(m.group(1)), m.group(2).strip()
    if (m := _CHAPTER.match(line)) and len(line.strip()) <= 40:
        level = {"编": 1, "章": 2, "节": 3}[m.group(1)[-1]]
        return level, f"{m.group(1)} {m.group(2).strip()}".strip()
    return None


def _units(text: str) -> list[_Unit]:
    """Articles and paragraphs in order, each with the heading path above it. Heading lines join
    the unit that follows them; a blank line ends a paragraph but not an article (an article runs
    on to the next article or heading)."""
    units: list[_Unit] = []
    path: list[tuple[int, str]] = []
    start: int | None = None  # the open unit
    article = False
    heading = ""
    pending: int | None = None  # heading lines waiting for the unit they open
    last = 0  # end of the last non-blank line

    def close() -> None:
        nonlocal start
        if start is not None:
            units.append(_Unit(start, last, heading, article))
        start = None

    for m in _LINE.finditer(text):
        if m.start() == m.end():
            break
        line = m.group().rstrip("\n")
        if not line.strip():
            if not article:
                close()
            continue
        head = _heading(line)
        if head is not None:
            close()
            level, title = head
            path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
            pending = m.start() if pending is None else pending
        elif _ARTICLE.match(line) or start is None:
            close()
            start = m.start() if pending is None else pending
            article, heading, pending = (
                _ARTICLE.match(line) is not None,
                " › ".join(t for _, t in path),
                None,
            )
        last = m.start() + len(line)
    if pending is not None and start is None:
        start, article, heading = pending, False, " › ".join(t for _, t in path)
    close()
    return units


def passage_text(span: Span) -> str:
    """What is embedded and indexed for a passage: its heading path, then its text, so a short
    passage ("Wait 4 hours.") keeps the context that says what it is about.

    >>> passage_text(Span("Wait 4 hours.", 0, 13, "Leaflet › Dosage")).splitlines()
    ['Leaflet › Dosage', 'Wait 4 hours.']
    """
    return f"{span.heading}\n{span.text}" if span.heading else span.text


def _title_like(text: str) -> bool:
    return len(text) <= 40 and "\n" not in text and not re.search(r"[。！？；.!?;:：]$", text)


def passages(
    text: str,
    *,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int = 0,
    group_tokens: int = GROUP_TOKENS,
) -> list[Span]:
    """The passages of `text` (module docstring), in order, each within `max_tokens`.

    >>> law = "第一条 甲。\\n第二条 乙。\\n第三条 丙。"
    >>> [s.text for s in passages(law, count_tokens=len, max_tokens=100)]
    ['第一条 甲。', '第二条 乙。', '第三条 丙。']
    >>> doc = "# Leaflet\\n## Dose\\nTake 1 g.\\n\\nWait 4 h.\\n## Risks\\nNo alcohol."
    >>> [s.heading for s in passages(doc, count_tokens=len, max_tokens=100)]
    ['Leaflet › Dose', 'Leaflet › Risks']
    >>> [s.text for s in passages(doc, count_tokens=len, max_tokens=100)][1]
    '## Risks\\nNo alcohol.'
    """
    out: list[Span] = []
    group: list[_Unit] = []

    def flush() -> None:
        if group:
            a, b = group[0].start, group[-1].end
            out.extend(_fit(text, a, b, group[0].heading, count_tokens, max_tokens, overlap_tokens))
            group.clear()

    units = _units(text)
    if len(units) > 1 and _title_like(text[units[0].start : units[0].end]):
        # A first line that only names the document opens the passage after it.
        units[1] = _Unit(units[0].start, units[1].end, units[1].heading, units[1].article)
        del units[0]
    for unit in units:
        joined = text[group[0].start : unit.end] if group else ""
        fits = bool(group) and count_tokens(joined) <= min(group_tokens, max_tokens)
        if unit.article or not fits or group[-1].article or group[0].heading != unit.heading:
            flush()
        group.append(unit)
    flush()
    return out


def _fit(
    text: str,
    start: int,
    end: int,
    heading: str,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int,
) -> list[Span]:
    """Text[start:end] as one span, or cut by size when it is over `max_tokens`."""
    body = text[start:end]
    lead = len(body) - len(body.lstrip())
    body = body.strip()
    start += lead
    if count_tokens(body) <= max_tokens:
        return [Span(body, start, start + len(body), heading)]
    spans = chunk_text(
        body,
        count_tokens=count_tokens,
        max_tokens=max_tokens,
        overlap_tokens=overlap_tokens,
    )
    return [Span(s.text, s.start + start, s.end + start, heading) for s in spans]
