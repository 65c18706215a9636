"""The Gradio chat page: the wiring of each control (ui/web/chat_layout.py) to the agent.

`build_chat(agent, settings)` returns the Blocks that ui/server.py mounts. The model and the
knowledge bases are the agent's, shared by every visitor; what a browser tab shows (its
conversation, rendered messages, stop flag) is a `gr.State`, so tabs never see each other's turns.
Answers share one queue limit (`settings.concurrency_limit`) because they share the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from agent.state import SessionNotFoundError, TurnNotFoundError
from ui.auth import Access
from ui.settings import ServerSettings
from ui.web import session as chat_session
from ui.web.answer import answer_steps
from ui.web.chat_layout import ChatPage, chat_layout, kb_choices
from ui.web.i18n import Labels, browser_lang, t
from ui.web.kb_tab import kb_names
from ui.web.render import details_markdown
from ui.web.session import ChatState, doc_choices, session_choices

if TYPE_CHECKING:
    from agent import Agent

# Session and knowledge-base list events are SQLite reads and writes of a few rows: more of them
# may run at once than answers, which hold the model.
LIGHT_CONCURRENCY = 8
LM_EVENTS = "lm"  # answers, summaries and translations share the model, so one concurrency group
PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # the documented API is /v1


def build_chat(agent: Agent, settings: ServerSettings, access: Access | None = None) -> gr.Blocks:
    """The chat UI over `agent`, enforcing `settings`' message, upload and queue limits, and
    `access`: with accounts, each event acts for the logged-in user, who sees only their own
    conversations and the knowledge bases they may read."""
    labels = Labels()
    access = access or Access(settings)
    with gr.Blocks(title="citewise", analytics_enabled=False) as demo:
        page = chat_layout(agent, settings, labels, access)
        _wire_answers(page, agent, settings, access)
        _wire_sessions(page, agent, access)
        _wire_tools(page, agent, settings, access)
        _wire_page(demo, page, agent, labels, access)
    # api_open=False: events go through the queue (and its limits) only, never the REST shortcut.
    demo.queue(
        max_size=settings.max_queue, default_concurrency_limit=LIGHT_CONCURRENCY, api_open=False
    )
    return demo


def _readable_kbs(agent: Agent, access: Access, request: gr.Request | None) -> list[str]:
    return access.readable(access.ui_principal(request), kb_names(agent))


def _wire_answers(p: ChatPage, agent: Agent, settings: ServerSettings, access: Access) -> None:
    """Send, Stop, and the like/dislike buttons of answers."""
    who = access.ui_principal

    def respond(
        text: str, st: ChatState, kb: str, dom: str, lang_: str, request: gr.Request
    ) -> Iterator[dict[Any, Any]]:
        user = who(request)
        restricted = access.restricted(user, kb_names(agent))
        steps = answer_steps(agent, settings, st, text, kb, dom, lang_, user.owner, restricted)
        for step in steps:
            out: dict[Any, Any] = {p.state: st}
            if step.messages is not None:
                out[p.chatbot] = step.messages
                out[p.message] = ""
            if step.details is not None:
                out[p.details] = step.details
            if step.status is not None:
                out[p.status] = step.status
            if step.reply is not None:
                out[p.sessions] = gr.update(
                    choices=session_choices(agent, user.owner), value=st.session_id
                )
                out[p.doc] = gr.update(choices=doc_choices(st), value=None)
            yield out

    gr.on(
        [p.message.submit, p.send.click],
        respond,
        [p.message, p.state, p.kb_select, p.domain, p.lang],
        [p.chatbot, p.message, p.details, p.status, p.sessions, p.doc, p.state],
        concurrency_limit=settings.concurrency_limit,
        concurrency_id=LM_EVENTS,
        show_progress="minimal",
        **PRIVATE,
    )

    def stop_answer(st: ChatState) -> None:
        if st.cancel is not None:
            st.cancel.cancel()

    # Outside the queue, so Stop is not stuck behind the answer it is meant to stop.
    p.stop.click(stop_answer, p.state, None, queue=False, **PRIVATE)

    def on_like(
        st: ChatState, note: str, lang_: str, data: gr.LikeData, request: gr.Request
    ) -> tuple[str, str]:
        index = data.index if isinstance(data.index, int) else data.index[0]
        turn_id = st.turn_ids.get(index)
        rating = {True: 1, "Like": 1, False: -1, "Dislike": -1}.get(data.liked)
        if turn_id is None or rating is None:
            return t("feedback_none", lang_), note
        try:
            agent.feedback(turn_id, rating, (note or "").strip(), who(request).owner)
        except (TurnNotFoundError, ValueError):
            return t("feedback_none", lang_), note
        return t("feedback_saved", lang_), ""

    p.chatbot.like(on_like, [p.state, p.comment, p.lang], [p.status, p.comment], **PRIVATE)


def _wire_sessions(p: ChatPage, agent: Agent, access: Access) -> None:
    """The conversation list: open, start, rename and delete conversations."""
    who = access.ui_principal

    def show_session(sid: str | None, lang_: str, request: gr.Request) -> tuple[Any, ...]:
        if not sid:
            return _cleared(ChatState(), lang_)
        owner = who(request).owner
        try:
            st = chat_session.load_session(agent, sid, lang_, owner)
        except (SessionNotFoundError, ValueError):
            return _cleared(ChatState(), lang_, t("no_session", lang_))
        turns = agent.history(sid, owner)
        last = turns[-1] if turns else None
        info = (
            details_markdown(last.rewritten_query, None, len(last.evidence), last.latencies, lang_)
            if last
            else t("no_details", lang_)
        )
        title = next((s.title for s in agent.sessions(owner) if s.id == sid), "")
        return st, st.messages, info, gr.update(choices=doc_choices(st), value=None), title, ""

    def _cleared(st: ChatState, lang_: str, note: str = "") -> tuple[Any, ...]:
        return st, [], t("no_details", lang_), gr.update(choices=[], value=None), "", note

    shown = [p.state, p.chatbot, p.details, p.doc, p.title_box, p.status]
    p.sessions.input(show_session, [p.sessions, p.lang], shown, **PRIVATE)
    p.new.click(lambda lang_: _cleared(ChatState(), lang_), p.lang, shown, **PRIVATE).then(
        lambda: gr.update(value=None), None, p.sessions, **PRIVATE
    )

    def do_rename(st: ChatState, title: str, lang_: str, request: gr.Request) -> tuple[str, Any]:
        owner = who(request).owner
        note = chat_session.rename(agent, st, title, lang_, owner)
        return note, gr.update(choices=session_choices(agent, owner), value=st.session_id)

    p.rename.click(do_rename, [p.state, p.title_box, p.lang], [p.status, p.sessions], **PRIVATE)

    def do_delete(st: ChatState, lang_: str, request: gr.Request) -> tuple[Any, ...]:
        owner = who(request).owner
        fresh, note = chat_session.delete(agent, st, lang_, owner)
        return (
            *_cleared(fresh, lang_, note),
            gr.update(choices=session_choices(agent, owner), value=None),
        )

    p.delete.click(do_delete, [p.state, p.lang], [*shown, p.sessions], **PRIVATE)


def _wire_tools(p: ChatPage, agent: Agent, settings: ServerSettings, access: Access) -> None:
    """Summarize a cited document; translate the last answer (both use the model)."""

    def do_summarize(
        st: ChatState, choice: str | None, lang_: str, request: gr.Request
    ) -> tuple[Any, ...]:
        kb_, _, _ = (choice or "").partition("/")
        if choice and kb_ not in _readable_kbs(agent, access, request):
            return st, st.messages, t("pick_doc", lang_)
        note = chat_session.summarize_into(agent, st, choice, lang_)
        return st, st.messages, note

    def do_translate(st: ChatState, lang_: str) -> tuple[Any, ...]:
        note = chat_session.translate_into(agent, st, lang_)
        return st, st.messages, note

    lm_event: dict[str, Any] = {
        "concurrency_limit": settings.concurrency_limit,
        "concurrency_id": LM_EVENTS,
        **PRIVATE,
    }
    p.summarize.click(
        do_summarize, [p.state, p.doc, p.lang], [p.state, p.chatbot, p.status], **lm_event
    )
    p.translate.click(do_translate, [p.state, p.lang], [p.state, p.chatbot, p.status], **lm_event)


def _wire_page(demo: gr.Blocks, p: ChatPage, agent: Agent, labels: Labels, access: Access) -> None:
    """The page as a whole: its language, knowledge-base lists kept current, the first load."""
    who = access.ui_principal

    def readable_kbs(request: gr.Request | None) -> list[str]:
        return _readable_kbs(agent, access, request)

    # A knowledge base created or filled in the other tab is offered in the chat at once.
    def refresh_kbs(lang_: str, request: gr.Request) -> Any:
        return gr.update(choices=kb_choices(agent, lang_, readable_kbs(request)))

    for event in p.kb_tab.changed:
        event.then(refresh_kbs, p.lang, p.kb_select, **PRIVATE)

    p.lang.change(labels.updates, p.lang, labels.components, **PRIVATE).then(
        refresh_kbs, p.lang, p.kb_select, **PRIVATE
    )

    def on_load(request: gr.Request) -> tuple[Any, ...]:
        lang_ = browser_lang(request.headers.get("accept-language"))
        names = readable_kbs(request)
        return (
            lang_,
            gr.update(choices=session_choices(agent, who(request).owner), value=None),
            gr.update(choices=kb_choices(agent, lang_, names)),
            gr.update(choices=names, value=names[0] if names else None),
        )

    demo.load(on_load, None, [p.lang, p.sessions, p.kb_select, p.kb_tab.kb], **PRIVATE)
