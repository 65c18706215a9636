"""HTML of one answer in the chat: the answer text, its notices, and its sources panel.

Pure functions over the agent's types (a live `Reply`, or a `TurnRecord` read back from SQLite),
so the page and the fast tests render answers the same way. Everything user- or model-written is
escaped; only the markup made here reaches the browser as HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def highlight(text: str, highlights: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """HTML of a window of `text` around the first highlight found, each found one in <mark>.

    >>> highlight("A b. Oxygen was found in 1771. C d.", ["Oxygen was found in 1771."])
    'A b. <mark>Oxygen was found in 1771.</mark> C d.'
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
    out, pos = [], start
    for a, b in spans:
        a, b = max(a, pos), min(b, end)
        if a >= b:
            continue
        out.append(html.escape(text[pos:a]))
        out.append(f"<mark>{html.escape(text[a:b])}</mark>")
        pos = b
    out.append(html.escape(text[pos:end]))
    return ("…" if start else "") + "".join(out) + ("…" if end < len(text) else "")


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


def sources_html(views: Sequence[SourceView], lang: str) -> str:
    """The collapsible sources panel; empty when there is nothing to show."""
    if not views:
        return ""
    heading = t("sources" if views[0].cited else "closest", lang)
    items = []
    for v in views:
        unverified = v.cited and not v.verified
        badge = (
            f'<span class="cw-badge" title="{html.escape(t("unverified_hint", lang))}">'
            f"{t('unverified', lang)}</span>"
            if unverified
            else ""
        )
        domain = (
            f'<span class="cw-domain">{html.escape(t("domain_" + v.domain, lang))}</span>'
            if f"domain_{v.domain}" in _DOMAIN_KEYS
            else ""
        )
        items.append(
            f'<div class="cw-source{" cw-unverified" if unverified else ""}" data-n="{v.n}">'
            f'<div class="cw-src-head"><span class="cw-n">[{v.n}]</span>'
            f"<b>{html.escape(v.title or v.doc_id)}</b>{domain}"
            f'<span class="cw-doc">{html.escape(v.kb)} / {html.escape(v.doc_id)}</span>'
            f"{badge}</div>"
            f'<div class="cw-snippet">{highlight(v.text, v.highlights)}</div></div>'
        )
    return (
        f'<details class="cw-sources" open><summary>{heading} ({len(views)})</summary>'
        + "".join(items)
        + "</details>"
    )


_DOMAIN_KEYS = {"domain_legal", "domain_medical", "domain_education", "domain_general"}


def notices_html(notices: Sequence[Notice]) -> str:
    return "".join(
        f'<div class="cw-notice cw-notice-{html.escape(n.kind)}" role="note">{esc(n.text)}</div>'
        for n in notices
    )


def answer_html(
    answer: str,
    notices: Sequence[Notice],
    sources: Sequence[SourceView],
    lang: str,
    *,
    interrupted: bool = False,
) -> str:
    """The whole assistant message: answer, notices set apart, then the sources panel."""
    body = esc(answer.strip()) + (f" {t('interrupted', lang)}" if interrupted else "")
    parts = [f'<div class="cw-answer">\n\n{body}\n\n</div>', notices_html(notices)]
    parts.append(sources_html(sources, lang))
    return "\n\n".join(p for p in parts if p)


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
