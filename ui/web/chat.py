"""The Gradio chat page: layout, and the wiring of each control to the agent.

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
from retrieval.types import DOMAINS
from ui.auth import Access
from ui.settings import ServerSettings
from ui.users import Principal
from ui.web import session as chat_session
from ui.web.answer import ANY, AUTO, answer_steps
from ui.web.i18n import Labels, browser_lang, t
from ui.web.kb_tab import build_kb_tab, kb_names
from ui.web.render import CHAT_CSS, details_markdown
from ui.web.session import ChatState, doc_choices, session_choices

if TYPE_CHECKING:
    from agent import Agent

# Session and knowledge-base list events are SQLite reads and writes of a few rows: more of them
# may run at once than answers, which hold the model.
LIGHT_CONCURRENCY = 8
LM_EVENTS = "lm"  # answers, summaries and translations share the model, so one concurrency group


def kb_choices(agent: Agent, lang: str, names: list[str] | None = None) -> list[tuple[str, str]]:
    """Automatic, then the knowledge bases `names` (default: all)."""
    shown = kb_names(agent) if names is None else names
    return [(t("kb_auto", lang), AUTO), *((name, name) for name in shown)]


def domain_filter_choices(lang: str) -> list[tuple[str, str]]:
    return [(t("domain_any", lang), ANY), *((t("domain_" + d, lang), d) for d in DOMAINS)]


def build_chat(agent: Agent, settings: ServerSettings, access: Access | None = None) -> gr.Blocks:
    """The chat UI over `agent`, enforcing `settings`' message, upload and queue limits, and
    `access`: with accounts, each event acts for the logged-in user, who sees only their own
    conversations and the knowledge bases they may read."""
    labels = Labels()
    private: dict[str, Any] = {"api_visibility": "private"}  # the documented API is /v1
    access = access or Access(settings)

    def who(request: gr.Request | None) -> Principal:
        return access.ui_principal(request)

    def readable_kbs(request: gr.Request | None) -> list[str]:
        return access.readable(who(request), kb_names(agent))

    with gr.Blocks(title="citewise", analytics_enabled=False) as demo:
        # mount_gradio_app replaces Blocks-level css, so the page carries its own stylesheet.
        gr.HTML(f"<style>{CHAT_CSS}</style>", elem_id="cw-style", js_on_load=None)
        state = gr.State(lambda: ChatState())  # a fresh one per page load
        with gr.Row(equal_height=True):
            labels.add_computed(
                gr.Markdown(f"## {t('title', 'en')}"),
                lambda lang_: {"value": f"## {t('title', lang_)}"},
            )
            lang = labels.add(
                gr.Radio(
                    [("English", "en"), ("中文", "zh")],
                    value="en",
                    label=t("language", "en"),
                    elem_id="cw-lang",
                    scale=0,
                    min_width=220,
                ),
                label="language",
            )
        with gr.Tabs():
            with labels.add(gr.Tab(t("tab_chat", "en"), id="chat"), label="tab_chat"), gr.Row():
                with gr.Column(scale=1, min_width=240):
                    sessions = labels.add(
                        gr.Dropdown(
                            [], value=None, label=t("sessions", "en"), elem_id="cw-sessions"
                        ),
                        label="sessions",
                    )
                    new = labels.add(
                        gr.Button(t("new_session", "en"), size="sm", elem_id="cw-new"),
                        value="new_session",
                    )
                    title_box = labels.add(
                        gr.Textbox(label=t("rename_to", "en"), max_lines=1, elem_id="cw-title"),
                        label="rename_to",
                    )
                    with gr.Row():
                        rename = labels.add(
                            gr.Button(t("rename", "en"), size="sm", elem_id="cw-rename"),
                            value="rename",
                        )
                        delete = labels.add(
                            gr.Button(
                                t("delete_session", "en"),
                                size="sm",
                                variant="stop",
                                elem_id="cw-delete",
                            ),
                            value="delete_session",
                        )
                    kb_select = labels.add_computed(
                        gr.Dropdown(
                            # With accounts the page is built before anyone logs in: on_load
                            # fills in what the user may read.
                            kb_choices(agent, "en", [] if access.users else None),
                            value=AUTO,
                            label=t("kb", "en"),
                            elem_id="cw-kb",
                        ),
                        # The choices depend on the user: refreshed per request (on_load, below).
                        lambda lang_: {"label": t("kb", lang_)},
                    )
                    domain = labels.add_computed(
                        gr.Dropdown(
                            domain_filter_choices("en"),
                            value=ANY,
                            label=t("domain_filter", "en"),
                        ),
                        lambda lang_: {
                            "choices": domain_filter_choices(lang_),
                            "label": t("domain_filter", lang_),
                        },
                    )
                with gr.Column(scale=4):
                    chatbot = labels.add(
                        gr.Chatbot(
                            label=t("chatbot", "en"),
                            elem_id="cw-chatbot",
                            height=560,
                            buttons=["copy"],
                            feedback_options=("Like", "Dislike"),
                        ),
                        label="chatbot",
                    )
                    with gr.Row():
                        message = labels.add(
                            gr.Textbox(
                                label=t("message", "en"),
                                placeholder=t("message_ph", "en"),
                                max_lines=6,
                                scale=6,
                                elem_id="cw-message",
                                # Typing is capped in the browser too; the handler still checks.
                                max_length=settings.max_message_chars,
                            ),
                            label="message",
                            placeholder="message_ph",
                        )
                        send = labels.add(
                            gr.Button(
                                t("send", "en"), variant="primary", scale=1, elem_id="cw-send"
                            ),
                            value="send",
                        )
                        stop = labels.add(
                            gr.Button(t("stop", "en"), variant="stop", scale=1, elem_id="cw-stop"),
                            value="stop",
                        )
                    comment = labels.add(
                        gr.Textbox(
                            label=t("feedback_comment", "en"), max_lines=2, elem_id="cw-comment"
                        ),
                        label="feedback_comment",
                    )
                    status = gr.Markdown(elem_id="cw-status")
                    with labels.add(gr.Accordion(t("details", "en"), open=False), label="details"):
                        details = gr.Markdown(t("no_details", "en"), elem_id="cw-details")
                    tools = labels.add(gr.Accordion(t("tools", "en"), open=False), label="tools")
                    with tools, gr.Row():
                        doc = labels.add(
                            gr.Dropdown([], label=t("summarize_doc", "en"), elem_id="cw-docs"),
                            label="summarize_doc",
                        )
                        summarize = labels.add(
                            gr.Button(t("summarize", "en"), elem_id="cw-summarize"),
                            value="summarize",
                        )
                        translate = labels.add(
                            gr.Button(t("translate", "en"), elem_id="cw-translate"),
                            value="translate",
                        )
            with labels.add(gr.Tab(t("tab_kb", "en"), id="kb"), label="tab_kb"):
                kb_tab = build_kb_tab(agent, settings, labels, lang, access)

        def respond(
            text: str, st: ChatState, kb: str, dom: str, lang_: str, request: gr.Request
        ) -> Iterator[dict[Any, Any]]:
            user = who(request)
            restricted = access.restricted(user, kb_names(agent))
            steps = answer_steps(agent, settings, st, text, kb, dom, lang_, user.owner, restricted)
            for step in steps:
                out: dict[Any, Any] = {state: st}
                if step.messages is not None:
                    out[chatbot] = step.messages
                    out[message] = ""
                if step.details is not None:
                    out[details] = step.details
                if step.status is not None:
                    out[status] = step.status
                if step.reply is not None:
                    out[sessions] = gr.update(
                        choices=session_choices(agent, user.owner), value=st.session_id
                    )
                    out[doc] = gr.update(choices=doc_choices(st), value=None)
                yield out

        gr.on(
            [message.submit, send.click],
            respond,
            [message, state, kb_select, domain, lang],
            [chatbot, message, details, status, sessions, doc, state],
            concurrency_limit=settings.concurrency_limit,
            concurrency_id=LM_EVENTS,
            show_progress="minimal",
            **private,
        )

        def stop_answer(st: ChatState) -> None:
            if st.cancel is not None:
                st.cancel.cancel()

        # Outside the queue, so Stop is not stuck behind the answer it is meant to stop.
        stop.click(stop_answer, state, None, queue=False, **private)

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

        chatbot.like(on_like, [state, comment, lang], [status, comment], **private)

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
                details_markdown(
                    last.rewritten_query, None, len(last.evidence), last.latencies, lang_
                )
                if last
                else t("no_details", lang_)
            )
            title = next((s.title for s in agent.sessions(owner) if s.id == sid), "")
            return st, st.messages, info, gr.update(choices=doc_choices(st), value=None), title, ""

        def _cleared(st: ChatState, lang_: str, note: str = "") -> tuple[Any, ...]:
            return st, [], t("no_details", lang_), gr.update(choices=[], value=None), "", note

        shown = [state, chatbot, details, doc, title_box, status]
        sessions.input(show_session, [sessions, lang], shown, **private)
        new.click(lambda lang_: _cleared(ChatState(), lang_), lang, shown, **private).then(
            lambda: gr.update(value=None), None, sessions, **private
        )

        def do_rename(
            st: ChatState, title: str, lang_: str, request: gr.Request
        ) -> tuple[str, Any]:
            owner = who(request).owner
            note = chat_session.rename(agent, st, title, lang_, owner)
            return note, gr.update(choices=session_choices(agent, owner), value=st.session_id)

        rename.click(do_rename, [state, title_box, lang], [status, sessions], **private)

        def do_delete(st: ChatState, lang_: str, request: gr.Request) -> tuple[Any, ...]:
            owner = who(request).owner
            fresh, note = chat_session.delete(agent, st, lang_, owner)
            return (
                *_cleared(fresh, lang_, note),
                gr.update(choices=session_choices(agent, owner), value=None),
            )

        delete.click(do_delete, [state, lang], [*shown, sessions], **private)

        def do_summarize(
            st: ChatState, choice: str | None, lang_: str, request: gr.Request
        ) -> tuple[Any, ...]:
            kb_, _, _ = (choice or "").partition("/")
            if choice and kb_ not in readable_kbs(request):
                return st, st.messages, t("pick_doc", lang_)
            note = chat_session.summarize_into(agent, st, choice, lang_)
            return st, st.messages, note

        def do_translate(st: ChatState, lang_: str) -> tuple[Any, ...]:
            note = chat_session.translate_into(agent, st, lang_)
            return st, st.messages, note

        lm_event: dict[str, Any] = {
            "concurrency_limit": settings.concurrency_limit,
            "concurrency_id": LM_EVENTS,
            **private,
        }
        summarize.click(do_summarize, [state, doc, lang], [state, chatbot, status], **lm_event)
        translate.click(do_translate, [state, lang], [state, chatbot, status], **lm_event)

        # A knowledge base created or filled in the other tab is offered in the chat at once.
        def refresh_kbs(lang_: str, request: gr.Request) -> Any:
            return gr.update(choices=kb_choices(agent, lang_, readable_kbs(request)))

        for event in kb_tab.changed:
            event.then(refresh_kbs, lang, kb_select, **private)

        lang.change(labels.updates, lang, labels.components, **private).then(
            refresh_kbs, lang, kb_select, **private
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

        demo.load(on_load, None, [lang, sessions, kb_select, kb_tab.kb], **private)
    # api_open=False: events go through the queue (and its limits) only, never the REST shortcut.
    demo.queue(
        max_size=settings.max_queue, default_concurrency_limit=LIGHT_CONCURRENCY, api_open=False
    )
    return demo
