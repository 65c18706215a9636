"""One chat turn as the page sees it: the agent's events turned into successive screen states.

`answer_steps` checks the message against the server's limits, runs `agent.stream` with the tab's
knowledge-base scope and stop flag, and yields what to show after each event: the streamed text
while tokens arrive, then the checked answer with its notices and sources once the turn is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.limits import check_text
from agent.protocols import CancelToken, LMError
from agent.state import DialogueStoreError
from agent.types import Done, Reply, Retrieved, Rewritten, Route, Routed, Token
from retrieval.errors import RetrievalError
from retrieval.types import Filters
from ui.settings import ServerSettings
from ui.web.i18n import t
from ui.web.render import answer_html, details_markdown, esc, reply_sources
from ui.web.session import ChatState, cited_docs

if TYPE_CHECKING:
    from agent import Agent

AUTO = "auto"  # knowledge-base selector: let the router choose
ANY = "any"  # domain filter: no constraint


@dataclass(frozen=True)
class Step:
    """What changed on screen; None fields stay as they were."""

    messages: list[dict[str, str]] | None = None
    details: str | None = None
    status: str | None = None
    reply: Reply | None = None  # set on the last step of a turn that completed


def scope(
    agent: Agent, kb: str | None, domain: str | None, readable: list[str] | None = None
) -> tuple[list[str] | None, Filters | None]:
    """Knowledge bases and filters for the selector values: automatic means the router picks;
    a domain filter with automatic searches every knowledge base, keeping that domain's passages.

    The knowledge-base list is read per turn, so one created in the other tab is searchable at once.
    """
    filters = Filters(domain=domain) if domain and domain != ANY else None
    if kb and kb != AUTO:
        return [kb], filters
    if filters is not None:
        every = sorted(agent.kb_domains())
        return (every if readable is None else [k for k in every if k in readable]), filters
    return None, None


def answer_steps(
    agent: Agent,
    settings: ServerSettings,
    state: ChatState,
    message: str,
    kb: str | None,
    domain: str | None,
    lang: str,
    owner: str | None = None,
    readable: list[str] | None = None,
) -> Iterator[Step]:
    """Run one turn for the tab `state` (updated in place) and yield the screens to show.
    `owner`: the logged-in user (None: no accounts); `readable`: the knowledge bases that user
    may read, when some are hidden from them."""
    message = (message or "").strip() if isinstance(message, str) else ""
    if not message:
        yield Step(status=t("empty", lang))
        return
    if len(message) > settings.max_message_chars:
        yield Step(status=t("too_long", lang, n=len(message), limit=settings.max_message_chars))
        return
    try:
        check_text(message, "the message")
    except ValueError as e:
        yield Step(status=f"⚠ {esc(str(e))}")
        return
    if readable is not None and kb and kb not in (AUTO, *readable):
        kb = AUTO  # a knowledge base this user may not read is never searched
    kbs, filters = scope(agent, kb, domain, readable)
    cancel = state.cancel = CancelToken()
    user = {"role": "user", "content": esc(message)}
    shown = [*state.messages, user, {"role": "assistant", "content": t("thinking", lang)}]
    yield Step(messages=list(shown), status="")
    streamed, rewritten = "", ""
    route: Route | None = None
    n_hits: int | None = None
    try:
        for event in agent.stream(
            message,
            state.session_id,
            kbs=kbs,
            filters=filters,
            cancel=cancel,
            owner=owner,
            readable=readable,
        ):
            if isinstance(event, Token):
                streamed += event.text
                shown[-1] = {"role": "assistant", "content": esc(streamed)}
                yield Step(messages=list(shown))
                continue
            if isinstance(event, Rewritten):
                rewritten = event.query
            elif isinstance(event, Routed):
                route = event.route
            elif isinstance(event, Retrieved):
                n_hits = len(event.hits)
            elif isinstance(event, Done):
                yield _finish(agent, state, shown, event.reply, lang)
                return
            yield Step(details=details_markdown(rewritten, route, n_hits, {}, lang))
    except (RetrievalError, LMError, DialogueStoreError, ValueError) as e:
        shown[-1] = {"role": "assistant", "content": f"⚠ {esc(str(e))}"}
        yield Step(messages=list(shown), status=f"⚠ {esc(str(e))}")
    finally:
        state.cancel = None


def _finish(
    agent: Agent, state: ChatState, shown: list[dict[str, str]], reply: Reply, lang: str
) -> Step:
    """Replace the streamed text by the checked answer, its notices and sources; remember it."""
    sources = reply_sources(reply, agent.kb_domains())
    shown[-1] = {
        "role": "assistant",
        "content": answer_html(
            reply.answer, reply.notices, sources, lang, interrupted=reply.interrupted
        ),
    }
    state.messages = list(shown)
    state.session_id = reply.session_id
    state.turn_ids[len(shown) - 1] = reply.turn_id
    state.last_answer = reply.answer
    state.cited_docs = cited_docs(sources)
    details = details_markdown(
        reply.rewritten_query, reply.route, len(reply.sources), reply.timings, lang
    )
    return Step(messages=list(shown), details=details, reply=reply)
