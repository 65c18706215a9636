"""HTML of one answer in the chat: the answer text, its notices, and its sources panel.

Pure functions over the agent's types (a live `Reply`, or a `TurnRecord` read back from SQLite),
so the page and the fast tests render answers the same way. The markup is Jinja templates beside
this file (ui/web/templates/) with autoescape on, so everything user- or model-written is escaped
and only the templates' own markup reaches the browser as HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from agent.state import TurnRecord
from agent.types import Citation, Notice, Reply, Route
from ui.web.i18n import t

SNIPPET_CHARS = 420  # passage text shown around the highlighted sentences
CLOSEST_SHOWN = 3  # passages listed when an answer was refused

# Global CSS of the chat; ui/web/chat.py puts it in the page (Gradio 6 takes css at launch/mount).
CHAT_CSS = """
.cw-answer p { margin: 0 0 .4em 0; }
.cw-notice { border-left: 4px solid #888; background: #f4f4f5; color: #1f2937; padding: .45em .7em;
  margin: .5em 0; border-radius: 4px; font-size: .92em; }
.cw-notice-medical { border-color: #0e7490; background: #ecfeff; }
.cw-notice-emergency { border-color: #b91c1c; background: #fef2f2; font-weight: 600; }
.cw-notice-legal { border-color: #6d28d9; background: #f5f3ff; }
.cw-notice-refusal { border-color: #b45309; background: #fffbeb; }
.cw-sources { margin-top: .6em; border-top: 1px solid #d4d4d8; padding-top: .3em; }
.cw-sources summary { cursor: pointer; font-weight: 600; }
.cw-source { margin: .45em 0; padding: .4em .6em; border: 1px solid #e4e4e7; border-radius: 6px;
  background: #fafafa; color: #1f2937; }
.cw-source.cw-unverified { border-style: dashed; border-color: #dc2626; }
.cw-src-head { font-size: .9em; margin-bottom: .25em; }
.cw-n { font-weight: 700; margin-right: .3em; }
.cw-domain { background: #e0e7ff; color: #3730a3; border-radius: 9px; padding: 0 .5em;
  font-size: .85em; margin-left: .4em; }
.cw-doc { color: #52525b; font-size: .85em; margin-left: .4em; }
.cw-badge { background: #fee2e2; color: #991b1b; border-radius: 9px; padding: 0 .5em;
  font-size: .85em; margin-left: .4em; font-weight: 600; }
.cw-snippet { font-size: .9em; line-height: 1.45; }
.cw-snippet mark { background: #fde68a; color: inherit; padding: 0 .1em; }
"""


@dataclass(frozen=True)
class SourceView:
    """One passage of the sources panel: cited as [n], or shown as a closest passage."""

    n: int
    title: str
    kb: str
    doc_id: str
    domain: str
    text: str  # the passage (or, lacking it, the citation's snippet)
    highlights: tuple[str, ...]  # passage sentences that support the answer
    verified: bool
    cited: bool = True


def esc(text: str) -> str:
    """Escape text for HTML, and the characters Markdown would turn into markup, so model output
    shows as it was written.

    >>> esc("<b>1*2</b>")
    '&lt;b&gt;1\\\\*2&lt;/b&gt;'
    """
    return re.sub(r"([\\`*_#|~])", r"\\\1", html.escape(text, quote=False))


@dataclass(frozen=True)
class Snippet:
    """A window of a passage: its pieces in order, (text, highlighted), and whether it was cut."""

    pieces: tuple[tuple[str, bool], ...]
    cut_start: bool
    cut_end: bool


def snippet(text: str, highlights: Sequence[str], width: int = SNIPPET_CHARS) -> Snippet:
    """A window of `text` around the first highlight found, each found one a marked piece.

    >>> snippet("A b. Oxygen was found in 1771. C d.", ["Oxygen was found in 1771."]).pieces
    (('A b. ', False), ('Oxygen was found in 1771.', True), (' C d.', False))
    """
    spans = sorted(
        (i, i + len(h))
        for h in {h.strip() for h in highlights if h.strip()}
        if (i := text.find(h)) >= 0
    )
    start = 0
    if spans and len(text) > width:
        first = spans[0][0]
        start = max(0, min(first - width // 4, len(text) - width))
    end = min(len(text), start + width)
    pieces, pos = [], start
    for a, b in spans:
        a, b = max(a, pos), min(b, end)
        if a >= b:
            continue
        pieces += [(text[pos:a], False), (text[a:b], True)]
        pos = b
    pieces.append((text[pos:end], False))
    return Snippet(tuple(p for p in pieces if p[0]), start > 0, end < len(text))


def _views(
    citations: Sequence[Citation],
    passages: Mapping[int, tuple[str, str]],
    kb_domains: Mapping[str, str],
) -> list[SourceView]:
    """One view per cited passage number; `passages` maps chunk id to (text, domain)."""
    by_n: dict[int, list[Citation]] = {}
    for c in citations:
        by_n.setdefault(c.n, []).append(c)
    views = []
    for n in sorted(by_n):
        group = by_n[n]
        first = group[0]
        text, domain = passages.get(first.chunk_id, (first.snippet, kb_domains.get(first.kb, "")))
        views.append(
            SourceView(
                n=n,
                title=first.title,
                kb=first.kb,
                doc_id=first.doc_id,
                domain=domain,
                text=text,
                highlights=tuple(c.supporting_text for c in group if c.verified),
                verified=any(c.verified for c in group),
            )
        )
    return views


def reply_sources(reply: Reply, kb_domains: Mapping[str, str]) -> list[SourceView]:
    """The sources panel of a live reply: its citations, or the closest passages when refused."""
    passages = {h.chunk_id: (h.text, h.domain) for h in reply.sources}
    if reply.citations or not reply.refused:
        return _views(reply.citations, passages, kb_domains)
    return [
        SourceView(i + 1, h.title, h.kb, h.doc_id, h.domain, h.text, (), True, cited=False)
        for i, h in enumerate(reply.sources[:CLOSEST_SHOWN])
    ]


def turn_sources(turn: TurnRecord, kb_domains: Mapping[str, str]) -> list[SourceView]:
    """The sources panel of a stored turn, from the citations and evidence SQLite kept."""
    citations = list(turn.citations)
    passages = {e.chunk_id: (e.text, kb_domains.get(e.kb, "")) for e in turn.evidence}
    if citations or not turn.refused:
        return _views(citations, passages, kb_domains)
    return [
        SourceView(
            i + 1, e.title, e.kb, e.doc_id, kb_domains.get(e.kb, ""), e.text, (), True, False
        )
        for i, e in enumerate(turn.evidence[:CLOSEST_SHOWN])
    ]


@cache
def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    from markupsafe import Markup

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
    # Model text is also Markdown to the chat: `plain` escapes its markup characters as well.
    env.filters["plain"] = lambda text: Markup(esc(str(text)))
    return env


def sources_html(views: Sequence[SourceView], lang: str) -> str:
    """The collapsible sources panel; empty when there is nothing to show."""
    if not views:
        return ""
    shown = [
        {
            "n": v.n,
            "title": v.title,
            "doc_id": v.doc_id,
            "kb": v.kb,
            "cited": v.cited,
            "verified": v.verified,
            "domain_label": t(f"domain_{v.domain}", lang) if v.domain in _DOMAINS else "",
            "snippet": snippet(v.text, v.highlights),
        }
        for v in views
    ]
    return (
        _env()
        .get_template("sources.html")
        .render(
            views=shown,
            heading=t("sources" if views[0].cited else "closest", lang),
            unverified_hint=t("unverified_hint", lang),
            unverified_label=t("unverified", lang),
        )
    )


_DOMAINS = {"legal", "medical", "education", "general"}


def answer_html(
    answer: str,
    notices: Sequence[Notice],
    sources: Sequence[SourceView],
    lang: str,
    *,
    interrupted: bool = False,
) -> str:
    """The whole assistant message: answer, notices set apart, then the sources panel."""
    from markupsafe import Markup

    return (
        _env()
        .get_template("answer.html")
        .render(
            answer=answer.strip(),
            interrupted=interrupted,
            interrupted_label=t("interrupted", lang),
            notices=notices,
            sources=Markup(sources_html(sources, lang)),  # rendered by the template above
        )
    )


def details_markdown(
    rewritten: str,
    route: Route | None,
    n_passages: int | None,
    timings: Mapping[str, float],
    lang: str,
) -> str:
    """Markdown of the collapsible detail: the query searched for, the route, the timings."""
    lines = [f"**{t('rewritten', lang)}:** {esc(rewritten)}"] if rewritten else []
    if route is not None:
        lines.append(
            f"**{t('route', lang)}:** {route.intent} / {route.domain} "
            f"({route.method}; {route.intent_confidence:.2f} / {route.domain_confidence:.2f})"
        )
        lines.append(f"**{t('searched_kbs', lang)}:** {', '.join(route.kbs) or '—'}")
    if n_passages is not None:
        lines.append(f"**{t('passages', lang)}:** {n_passages}")
    shown = {k: v for k, v in timings.items() if k.endswith("_ms")}
    if shown:
        lines.append(
            f"**{t('timings', lang)}:** " + ", ".join(f"{k} {v:.0f}" for k, v in shown.items())
        )
    return "  \n".join(lines) or t("no_details", lang)
