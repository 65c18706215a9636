"""The knowledge-base tab: add files (limits checked on the server first), list documents with
their passage counts, delete a document, create a knowledge base with a domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from retrieval.errors import RetrievalError
from retrieval.types import DOMAINS
from ui.auth import Access
from ui.settings import ServerSettings
from ui.web.i18n import Labels, t

if TYPE_CHECKING:
    from agent import Agent

ADMINS_ONLY = "only administrators add, delete or create knowledge bases"
INGEST_CONCURRENCY = 1  # ingests embed on the CPU the model needs too: one at a time


@dataclass(frozen=True)
class UploadCheck:
    accepted: list[Path] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one line per file, why it was left out
    error: str = ""  # the whole upload was refused


def check_uploads(paths: list[str], settings: ServerSettings, lang: str) -> UploadCheck:
    """Apply the server's limits (the same checks as the HTTP API) before any file is read."""
    from agent.uploads import UploadRejected, check_count, check_upload

    if not paths:
        return UploadCheck(error=t("no_files", lang))
    try:
        check_count(len(paths), settings.upload_limits)
    except UploadRejected as e:
        return UploadCheck(error=f"⚠ {e}")
    accepted, rejected = [], []
    for raw in paths:
        path = Path(raw)
        try:
            check_upload(path.name, path.stat().st_size, settings.upload_limits)
            accepted.append(path)
        except UploadRejected as e:
            rejected.append(t("rejected", lang, reason=str(e)))
    return UploadCheck(accepted, rejected)


def kb_names(agent: Agent) -> list[str]:
    return [info.name for info in agent.knowledge_bases()]


def doc_rows(agent: Agent, kb: str | None) -> list[list[Any]]:
    if not kb or kb not in kb_names(agent):
        return []
    return [[d.doc_id, d.title, d.lang, d.n_chunks] for d in agent.documents(kb)]


def ingest_files(
    agent: Agent, kb: str, files: list[str], settings: ServerSettings, lang: str, progress: Any
) -> str:
    """Store and ingest the uploads that pass the limits, one file at a time for the progress
    bar; the result as lines. Each file is searchable before this returns."""
    from agent.uploads import UploadRejected

    if not kb:
        return t("no_kb", lang)
    check = check_uploads(files, settings, lang)
    if check.error:
        return check.error
    lines = list(check.rejected)
    totals = {"added": 0, "replaced": 0, "unchanged": 0, "chunks": 0}
    for i, path in enumerate(check.accepted):
        progress((i, len(check.accepted)), desc=t("ingesting", lang, name=path.name))
        try:
            with path.open("rb") as f:
                result = agent.add_files(kb, [(path.name, f)], limits=settings.upload_limits)
        except UploadRejected as e:
            lines.append(t("rejected", lang, reason=str(e)))
            continue
        totals["added"] += result.added
        totals["replaced"] += result.replaced
        totals["unchanged"] += result.unchanged
        totals["chunks"] += result.chunks_added
        lines += [t("skipped", lang, name=s["file"], reason=s["reason"]) for s in result.skipped]
    return "  \n".join([t("ingested", lang, kb=kb, **totals), *lines])


def doc_headers(lang: str) -> list[str]:
    return [t(k, lang) for k in ("col_doc", "col_title", "col_lang", "col_chunks")]


def domain_choices(lang: str) -> list[tuple[str, str]]:
    return [(t("domain_" + d, lang), d) for d in DOMAINS]


@dataclass
class KBTab:
    """What the chat wires to: the kb picker, and the events after which the list changed."""

    kb: gr.Dropdown
    changed: list[Any]


def build_kb_tab(
    agent: Agent, settings: ServerSettings, labels: Labels, lang: Any, access: Access | None = None
) -> KBTab:
    """Lay out the tab inside the current Blocks context and wire its events. With accounts,
    a user sees the knowledge bases they may read, and only administrators change them."""
    access = access or Access(settings)
    # With accounts the page is built before anyone logs in: filled in per user on load.
    names: list[str] = [] if access.users else kb_names(agent)
    controls = _kb_layout(agent, settings, labels, names)
    return _wire_kb(controls, agent, settings, lang, access)


@dataclass(frozen=True)
class _KBControls:
    kb: gr.Dropdown
    files: gr.File
    upload: gr.Button
    result: gr.Markdown
    docs: gr.Dataframe
    doc_pick: gr.Dropdown
    delete: gr.Button
    new_name: gr.Textbox
    new_domain: gr.Dropdown
    create: gr.Button


def _kb_layout(
    agent: Agent, settings: ServerSettings, labels: Labels, names: list[str]
) -> _KBControls:
    """The tab's controls, made inside the caller's Blocks; `names` fill the kb picker."""
    first = names[0] if names else None
    with gr.Row():
        with gr.Column(scale=2):
            kb = labels.add(
                gr.Dropdown(names, value=first, label=t("kb_target", "en"), elem_id="kb-pick"),
                label="kb_target",
            )
            files = labels.add(
                gr.File(
                    file_count="multiple",
                    file_types=list(settings.allowed_types),
                    type="filepath",
                    label=t("files", "en"),
                    elem_id="kb-files",
                ),
                label="files",
            )

            def limits(lang_: str) -> dict[str, Any]:
                types = " ".join(settings.allowed_types)
                text = t(
                    "upload_limits",
                    lang_,
                    files=settings.max_upload_files,
                    mb=settings.max_upload_mb,
                    types=types,
                )
                return {"value": text}

            labels.add_computed(gr.Markdown(limits("en")["value"]), limits)
            upload = labels.add(
                gr.Button(t("upload", "en"), variant="primary", elem_id="kb-upload"), value="upload"
            )
            result = gr.Markdown(elem_id="kb-result")
        with gr.Column(scale=3):
            docs = labels.add_computed(
                gr.Dataframe(
                    headers=doc_headers("en"),
                    value=doc_rows(agent, first),
                    interactive=False,
                    label=t("documents", "en"),
                    elem_id="kb-docs",
                ),
                lambda lang_: {"label": t("documents", lang_), "headers": doc_headers(lang_)},
            )
            with gr.Row():
                doc_pick = labels.add(
                    gr.Dropdown([], label=t("delete_doc_pick", "en"), elem_id="kb-doc-pick"),
                    label="delete_doc_pick",
                )
                delete = labels.add(
                    gr.Button(t("delete_doc", "en"), variant="stop", elem_id="kb-delete"),
                    value="delete_doc",
                )
            with gr.Row():
                new_name = labels.add(
                    gr.Textbox(label=t("new_kb", "en"), max_lines=1, elem_id="kb-new-name"),
                    label="new_kb",
                )
                new_domain = labels.add_computed(
                    gr.Dropdown(
                        domain_choices("en"), value="general", label=t("new_kb_domain", "en")
                    ),
                    lambda lang_: {
                        "choices": domain_choices(lang_),
                        "label": t("new_kb_domain", lang_),
                    },
                )
                create = labels.add(
                    gr.Button(t("create_kb", "en"), elem_id="kb-create"), value="create_kb"
                )

    return _KBControls(
        kb, files, upload, result, docs, doc_pick, delete, new_name, new_domain, create
    )


def _wire_kb(
    c: _KBControls, agent: Agent, settings: ServerSettings, lang: Any, access: Access
) -> KBTab:
    """Show a kb's documents; upload, delete and create, for administrators only."""
    private: dict[str, Any] = {"api_visibility": "private"}

    def can_read(request: gr.Request | None, kb_name: str | None) -> bool:
        if not kb_name:
            return False
        return bool(access.readable(access.ui_principal(request), [kb_name]))

    def is_admin(request: gr.Request | None) -> bool:
        return access.ui_principal(request).admin

    def show_rows(kb_name: str | None, request: gr.Request | None) -> tuple[Any, Any]:
        rows = doc_rows(agent, kb_name) if can_read(request, kb_name) else []
        return rows, gr.update(choices=[r[0] for r in rows], value=None)

    def show(kb_name: str | None, request: gr.Request) -> tuple[Any, Any]:
        return show_rows(kb_name, request)

    def do_upload(
        kb_name: str,
        paths: list[str] | None,
        lang_: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        if not is_admin(request):
            return (f"⚠ {ADMINS_ONLY}", None, *show_rows(kb_name, request))
        try:
            text = ingest_files(agent, kb_name, paths or [], settings, lang_, progress)
        except (RetrievalError, ValueError, OSError) as e:
            text = f"⚠ {e}"
        return (text, None, *show_rows(kb_name, request))

    def do_delete(
        kb_name: str, doc_id: str | None, lang_: str, request: gr.Request
    ) -> tuple[Any, ...]:
        if not is_admin(request):
            return (f"⚠ {ADMINS_ONLY}", *show_rows(kb_name, request))
        if not kb_name or not doc_id:
            return (t("no_kb", lang_), *show_rows(kb_name, request))
        try:
            gone = agent.delete_document(kb_name, doc_id)
        except RetrievalError:
            gone = False
        key = "doc_deleted" if gone else "doc_missing"
        return (t(key, lang_, doc=doc_id, kb=kb_name), *show_rows(kb_name, request))

    def do_create(name: str, domain: str, lang_: str, request: gr.Request) -> tuple[Any, ...]:
        if not is_admin(request):
            return (f"⚠ {ADMINS_ONLY}", gr.update(), gr.update())
        try:
            agent.create_kb((name or "").strip(), domain=domain)
        except (RetrievalError, ValueError) as e:
            return (f"⚠ {e}", gr.update(), gr.update())
        message = t("kb_created", lang_, kb=name.strip(), domain=t("domain_" + domain, lang_))
        names = access.readable(access.ui_principal(request), kb_names(agent))
        return (message, gr.update(choices=names, value=name.strip()), "")

    c.kb.change(show, c.kb, [c.docs, c.doc_pick], **private)
    uploaded = c.upload.click(
        do_upload,
        [c.kb, c.files, lang],
        [c.result, c.files, c.docs, c.doc_pick],
        concurrency_limit=INGEST_CONCURRENCY,
        concurrency_id="ingest",
        **private,
    )
    deleted = c.delete.click(
        do_delete, [c.kb, c.doc_pick, lang], [c.result, c.docs, c.doc_pick], **private
    )
    created = c.create.click(
        do_create, [c.new_name, c.new_domain, lang], [c.result, c.kb, c.new_name], **private
    )
    return KBTab(kb=c.kb, changed=[uploaded, deleted, created])
