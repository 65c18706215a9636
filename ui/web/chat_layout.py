"""The chat page's layout: every control of the page, made in order, with its translatable labels.

ui/web/chat.py wires these controls to the agent; keeping the two apart lets each be read alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from retrieval.types import DOMAINS
from ui.auth import Access
from ui.settings import ServerSettings
from ui.web.answer import ANY, AUTO
from ui.web.i18n import Labels, t
from ui.web.kb_tab import KBTab, build_kb_tab, kb_names
from ui.web.render import CHAT_CSS
from ui.web.session import ChatState

if TYPE_CHECKING:
    from agent import Agent


def kb_choices(agent: Agent, lang: str, names: list[str] | None = None) -> list[tuple[str, str]]:
    """Automatic, then the knowledge bases `names` (default: all)."""
    shown = kb_names(agent) if names is None else names
    return [(t("kb_auto", lang), AUTO), *((name, name) for name in shown)]


def domain_filter_choices(lang: str) -> list[tuple[str, str]]:
    return [(t("domain_any", lang), ANY), *((t("domain_" + d, lang), d) for d in DOMAINS)]


@dataclass(frozen=True)
class ChatPage:
    """The controls the wiring reads and writes."""

    state: gr.State
    lang: gr.Radio
    sessions: gr.Dropdown
    new: gr.Button
    title_box: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    kb_select: gr.Dropdown
    domain: gr.Dropdown
    chatbot: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    comment: gr.Textbox
    status: gr.Markdown
    details: gr.Markdown
    doc: gr.Dropdown
    summarize: gr.Button
    translate: gr.Button
    kb_tab: KBTab


def chat_layout(agent: Agent, settings: ServerSettings, labels: Labels, access: Access) -> ChatPage:
    """Make the page's controls inside the caller's `gr.Blocks`, registering labels to translate."""
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
                    gr.Dropdown([], value=None, label=t("sessions", "en"), elem_id="cw-sessions"),
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
                        gr.Button(t("send", "en"), variant="primary", scale=1, elem_id="cw-send"),
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

    return ChatPage(
        state=state,
        lang=lang,
        sessions=sessions,
        new=new,
        title_box=title_box,
        rename=rename,
        delete=delete,
        kb_select=kb_select,
        domain=domain,
        chatbot=chatbot,
        message=message,
        send=send,
        stop=stop,
        comment=comment,
        status=status,
        details=details,
        doc=doc,
        summarize=summarize,
        translate=translate,
        kb_tab=kb_tab,
    )
