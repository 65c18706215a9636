"""Interface text of the chat UI in English and Chinese, and which of the two a browser asks for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LANGS = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    "title": {"en": "citewise — answers you can check", "zh": "citewise — 可核查的问答"},
    "tab_chat": {"en": "Chat", "zh": "对话"},
    "tab_kb": {"en": "Knowledge bases", "zh": "知识库"},
    "language": {"en": "Interface language", "zh": "界面语言"},
    "sessions": {"en": "Conversations", "zh": "会话"},
    "new_session": {"en": "New chat", "zh": "新对话"},
    "rename_to": {"en": "Rename this conversation", "zh": "重命名当前会话"},
    "rename": {"en": "Rename", "zh": "重命名"},
    "delete_session": {"en": "Delete conversation", "zh": "删除会话"},
    "kb": {"en": "Knowledge base", "zh": "知识库"},
    "kb_auto": {"en": "Automatic (router decides)", "zh": "自动（由路由决定）"},
    "domain_filter": {"en": "Domain filter", "zh": "领域筛选"},
    "domain_any": {"en": "Any domain", "zh": "所有领域"},
    "chatbot": {"en": "Conversation", "zh": "对话"},
    "message": {"en": "Your question", "zh": "您的问题"},
    "message_ph": {
        "en": "Ask about your documents (Enter to send)",
        "zh": "就您的文档提问（回车发送）",
    },
    "send": {"en": "Send", "zh": "发送"},
    "stop": {"en": "Stop", "zh": "停止"},
    "feedback_comment": {
        "en": "Optional comment, sent when you rate an answer (thumbs up or down)",
        "zh": "可选评论，在您点赞或点踩某条回答时一并提交",
    },
    "details": {"en": "How this answer was found", "zh": "回答的检索过程"},
    "tools": {"en": "Summarize or translate", "zh": "摘要与翻译"},
    "summarize_doc": {"en": "Document cited in the last answer", "zh": "上一条回答引用的文档"},
    "summarize": {"en": "Summarize document", "zh": "生成文档摘要"},
    "translate": {"en": "Translate last answer", "zh": "翻译上一条回答"},
    "sources": {"en": "Sources", "zh": "来源"},
    "closest": {"en": "Closest passages (not cited)", "zh": "最接近的段落（未引用）"},
    "unverified": {"en": "unverified", "zh": "未核实"},
    "unverified_hint": {
        "en": "No sentence of this passage was found to support the claim",
        "zh": "未在该段落中找到支持该说法的句子",
    },
    "interrupted": {"en": "(stopped)", "zh": "（已停止）"},
    "thinking": {"en": "Searching your documents…", "zh": "正在检索文档…"},
    "rewritten": {"en": "Searched for", "zh": "检索语句"},
    "route": {"en": "Route", "zh": "路由"},
    "searched_kbs": {"en": "Knowledge bases searched", "zh": "检索的知识库"},
    "passages": {"en": "Passages retrieved", "zh": "检索到的段落"},
    "timings": {"en": "Timings", "zh": "耗时"},
    "no_details": {
        "en": "Ask a question to see how it is answered.",
        "zh": "提问后可在此查看检索过程。",
    },
    "too_long": {
        "en": "The message is {n} characters long; the limit is {limit}. Shorten it and resend.",
        "zh": "消息长度为 {n} 个字符，上限为 {limit}。请缩短后重新发送。",
    },
    "empty": {"en": "Type a question first.", "zh": "请先输入问题。"},
    "feedback_saved": {"en": "Thank you: feedback saved.", "zh": "谢谢，反馈已保存。"},
    "feedback_none": {
        "en": "That message has no stored answer to rate.",
        "zh": "该消息没有可评价的已保存回答。",
    },
    "summary_of": {"en": "Summary of {doc}", "zh": "{doc} 的摘要"},
    "translation": {"en": "Translation", "zh": "译文"},
    "nothing_to_translate": {
        "en": "There is no answer to translate yet.",
        "zh": "还没有可翻译的回答。",
    },
    "pick_doc": {"en": "Pick a cited document first.", "zh": "请先选择一个被引用的文档。"},
    "renamed": {"en": "Conversation renamed.", "zh": "会话已重命名。"},
    "no_session": {
        "en": "This chat is not saved yet: send a message first.",
        "zh": "当前对话尚未保存：请先发送一条消息。",
    },
    "deleted": {"en": "Conversation deleted.", "zh": "会话已删除。"},
    # knowledge-base tab
    "kb_target": {"en": "Knowledge base", "zh": "知识库"},
    "files": {"en": "Files to add", "zh": "要添加的文件"},
    "upload": {"en": "Add to knowledge base", "zh": "添加到知识库"},
    "upload_limits": {
        "en": "Up to {files} files of {mb:g} MB each; types: {types}",
        "zh": "最多 {files} 个文件，每个不超过 {mb:g} MB；类型：{types}",
    },
    "documents": {"en": "Documents", "zh": "文档"},
    "col_doc": {"en": "document", "zh": "文档"},
    "col_title": {"en": "title", "zh": "标题"},
    "col_lang": {"en": "language", "zh": "语言"},
    "col_chunks": {"en": "chunks", "zh": "段落数"},
    "delete_doc_pick": {"en": "Document to delete", "zh": "要删除的文档"},
    "delete_doc": {"en": "Delete document", "zh": "删除文档"},
    "new_kb": {"en": "New knowledge base name", "zh": "新知识库名称"},
    "new_kb_domain": {"en": "Its domain", "zh": "所属领域"},
    "create_kb": {"en": "Create knowledge base", "zh": "创建知识库"},
    "kb_status": {"en": "Result", "zh": "结果"},
    "no_kb": {"en": "Pick or create a knowledge base first.", "zh": "请先选择或创建知识库。"},
    "no_files": {"en": "Choose files to add first.", "zh": "请先选择要添加的文件。"},
    "too_many_files": {
        "en": "{n} files chosen; at most {limit} per upload. Add the rest in another upload.",
        "zh": "选择了 {n} 个文件；每次最多 {limit} 个，其余请分批上传。",
    },
    "rejected": {"en": "skipped: {reason}", "zh": "已跳过：{reason}"},
    "ingesting": {"en": "Adding {name}", "zh": "正在添加 {name}"},
    "ingested": {
        "en": "{kb}: {added} added, {replaced} replaced, {unchanged} unchanged, +{chunks} passages",
        "zh": "{kb}：新增 {added}，替换 {replaced}，未变 {unchanged}，段落 +{chunks}",
    },
    "skipped": {"en": "{name}: skipped, {reason}", "zh": "{name}：已跳过，{reason}"},
    "doc_deleted": {"en": "Deleted {doc} from {kb}.", "zh": "已从 {kb} 删除 {doc}。"},
    "doc_missing": {"en": "{doc} is not in {kb}.", "zh": "{kb} 中没有 {doc}。"},
    "kb_created": {
        "en": "Created knowledge base {kb} ({domain}).",
        "zh": "已创建知识库 {kb}（{domain}）。",
    },
    "domain_legal": {"en": "legal", "zh": "法律"},
    "domain_medical": {"en": "medical", "zh": "医疗"},
    "domain_education": {"en": "education", "zh": "教育"},
    "domain_general": {"en": "general", "zh": "通用"},
}


def t(key: str, lang: str, **values: Any) -> str:
    """The interface string `key` in `lang` ("en" or "zh"), formatted with `values`.

    >>> t("send", "zh"), t("too_long", "en", n=5, limit=4)[:24]
    ('发送', 'The message is 5 charact')
    """
    text = STRINGS[key]["zh" if lang == "zh" else "en"]
    return text.format(**values) if values else text


def browser_lang(accept_language: str | None) -> str:
    """ "zh" when the browser prefers Chinese over English (by order and q-weight), else "en".

    >>> browser_lang("zh-CN,zh;q=0.9,en;q=0.8"), browser_lang("en-US,en;q=0.9,zh;q=0.5")
    ('zh', 'en')
    """
    best, best_q = "en", -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        # Earlier entries win ties, as browsers list preferences in order.
        if q - position * 1e-6 > best_q:
            best, best_q = primary, q - position * 1e-6
    return best


@dataclass
class Labels:
    """The components whose text follows the interface language, and which string each shows.

    Built once with the Blocks; `updates(lang)` gives one `gr.update` per component, in the
    order of `components`, for an event that switches language.
    """

    components: list[Any] = field(default_factory=list)
    keys: list[dict[str, str]] = field(default_factory=list)
    computed: list[Callable[[str], dict[str, Any]]] = field(default_factory=list)

    def add(self, component: Any, **attr_keys: str) -> Any:
        """Register `component`; e.g. `label="message", placeholder="message_ph"`."""
        self.components.append(component)
        self.keys.append(attr_keys)
        self.computed.append(lambda lang: {})
        return component

    def add_computed(self, component: Any, update: Callable[[str], dict[str, Any]]) -> Any:
        """Register `component` whose update needs more than strings (e.g. dropdown choices)."""
        self.components.append(component)
        self.keys.append({})
        self.computed.append(update)
        return component

    def updates(self, lang: str) -> list[dict[str, Any]]:
        import gradio as gr

        out = []
        for keys, extra in zip(self.keys, self.computed, strict=True):
            values: dict[str, Any] = {attr: t(key, lang) for attr, key in keys.items()}
            values.update(extra(lang))
            out.append(gr.update(**values))
        return out
