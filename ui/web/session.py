"""One browser tab's dialogue state, and what changes it outside an answer: the conversation list
(switch, rename, delete) and the summary or translation added to the chat. The conversations
themselves live in SQLite through the agent; a tab holds only which one it shows, its rendered
messages, and the stop flag of the answer it is streaming."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.protocols import CancelToken
from agent.state import SessionNotFoundError
from retrieval.lang import detect_lang
from ui.web.i18n import t
from ui.web.render import SourceView, answer_html, esc, turn_sources

if TYPE_CHECKING:
    from agent import Agent


@dataclass
class ChatState:
    """Per-tab state (a `gr.State` value, so never shared between browser sessions)."""

    session_id: str | None = None  # None until the first message of a new chat is stored
    messages: list[dict[str, str]] = field(default_factory=list)  # what the Chatbot shows
    turn_ids: dict[int, int] = field(default_factory=dict)  # assistant message index -> turn id
    last_answer: str = ""
    cited_docs: list[tuple[str, str]] = field(default_factory=list)  # (kb, doc_id) of last answer
    cancel: CancelToken | None = None  # raised by the Stop button


def session_choices(agent: Agent, owner: str | None = None) -> list[tuple[str, str]]:
    """(label, session id) for the conversation list (`owner`'s only, when given), newest
    activity first."""
    infos = sorted(agent.sessions(owner), key=lambda s: s.updated_at, reverse=True)
    return [(f"{s.title or s.id[:8]} · {s.turns}", s.id) for s in infos]


def load_session(agent: Agent, session_id: str, lang: str, owner: str | None = None) -> ChatState:
    """A tab state showing a stored conversation, rendered from what SQLite kept of each turn.
    SessionNotFoundError for an unknown id, or another owner's."""
    agent.session(session_id, owner)
    domains = agent.kb_domains()
    state = ChatState(session_id=session_id)
    for turn in agent.history(session_id, owner):
        state.messages.append({"role": "user", "content": esc(turn.user_text)})
        sources = turn_sources(turn, domains)
        content = answer_html(
            turn.answer, turn.notices, sources, lang, interrupted=turn.interrupted
        )
        state.messages.append({"role": "assistant", "content": content})
        if turn.id is not None:
            state.turn_ids[len(state.messages) - 1] = turn.id
        state.last_answer = turn.answer
        state.cited_docs = cited_docs(sources)
    return state


def cited_docs(sources: Sequence[SourceView]) -> list[tuple[str, str]]:
    """(kb, doc_id) of each document in a sources panel, once each, in order."""
    return list(dict.fromkeys((s.kb, s.doc_id) for s in sources))


def doc_choices(state: ChatState) -> list[tuple[str, str]]:
    """Dropdown choices for the documents the last answer cited, valued "kb/doc_id"."""
    return [(f"{kb} / {doc}", f"{kb}/{doc}") for kb, doc in state.cited_docs]


def rename(agent: Agent, state: ChatState, title: str, lang: str, owner: str | None = None) -> str:
    """Rename the tab's conversation; the status line to show."""
    if state.session_id is None:
        return t("no_session", lang)
    if not title.strip():
        return t("empty", lang)
    try:
        agent.rename_session(state.session_id, title.strip()[:120], owner)
    except (SessionNotFoundError, ValueError) as e:
        return f"⚠ {esc(str(e))}"
    return t("renamed", lang)


def delete(
    agent: Agent, state: ChatState, lang: str, owner: str | None = None
) -> tuple[ChatState, str]:
    """Delete the tab's conversation and start a new chat in its place."""
    if state.session_id is None:
        return ChatState(), t("no_session", lang)
    agent.delete_session(state.session_id, owner)
    return ChatState(), t("deleted", lang)


def summarize_into(agent: Agent, state: ChatState, choice: str | None, lang: str) -> str:
    """Add a summary of the cited document `choice` ("kb/doc_id") to the chat; the status line."""
    if not choice:
        return t("pick_doc", lang)
    kb, _, doc_id = choice.partition("/")
    summary = agent.summarize(kb, doc_id, lang=lang)
    heading = t("summary_of", lang, doc=doc_id)
    content = f"**{esc(heading)}**\n\n{esc(summary)}"
    state.messages = [*state.messages, {"role": "assistant", "content": content}]
    return ""


def translate_into(agent: Agent, state: ChatState, lang: str) -> str:
    """Add the last answer translated (Chinese <-> English) to the chat; the status line."""
    if not state.last_answer:
        return t("nothing_to_translate", lang)
    target = "en" if detect_lang(state.last_answer) == "zh" else "zh"
    text = agent.translate(state.last_answer, target)
    content = f"**{t('translation', lang)}:** {esc(text)}"
    state.messages = [*state.messages, {"role": "assistant", "content": content}]
    return ""
