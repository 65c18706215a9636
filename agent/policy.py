"""Domain policy: the notices a medical or legal answer carries, and emergency detection."""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.types import Notice
from retrieval.types import Hit

_EMERGENCY = re.compile(
    r"chest pain|can'?t breathe|cannot breathe|trouble breathing|not breathing|unconscious|"
    r"passed out|seizure|overdos|suicid|kill myself|severe bleeding|bleeding heavily|stroke|"
    r"heart attack|anaphyla|poisoned|choking|"
    r"胸痛|胸口痛|呼吸困难|喘不过气|没有呼吸|昏迷|失去意识|抽搐|癫痫发作|服药过量|自杀|轻生|"
    r"大出血|出血不止|中风|心梗|心脏病发作|过敏性休克|中毒|窒息",
    re.IGNORECASE,
)

_TEXT = {
    "medical": {
        "en": "This is information from your documents, not medical advice. "
        "Ask a doctor about your own situation.",
        "zh": "以上内容来自您的文档，不构成医疗建议。具体情况请咨询医生。",
    },
    "emergency": {
        "en": "If this is an emergency, call your local emergency number (112 / 911) now.",
        "zh": "如果情况紧急，请立即拨打急救电话 120。",
    },
    "legal": {
        "en": "This is information from your documents, not legal advice{where}. "
        "Ask a lawyer about your own case.",
        "zh": "以上内容来自您的文档，不构成法律意见{where}。具体案件请咨询律师。",
    },
}

_PRC = re.compile(r"中华人民共和国|最高人民法院|最高人民检察院|国务院")


def is_emergency(message: str) -> bool:
    """True when the message describes a medical emergency.

    >>> is_emergency("my father has chest pain and is sweating"), is_emergency("什么是高血压")
    (True, False)
    """
    return _EMERGENCY.search(message) is not None


def jurisdiction(hits: Sequence[Hit], lang: str) -> str:
    """The jurisdiction the legal sources name, when they name one."""
    if any(_PRC.search(h.title) or _PRC.search(h.text[:200]) for h in hits):
        return "中华人民共和国" if lang == "zh" else "the People's Republic of China"
    return ""


def notices(domain: str, message: str, hits: Sequence[Hit], lang: str) -> tuple[Notice, ...]:
    """Notices for an answer in `domain` to `message`, in the user's language."""
    lang = "zh" if lang == "zh" else "en"
    out: list[Notice] = []
    if is_emergency(message):
        out.append(Notice("emergency", _TEXT["emergency"][lang]))
    if domain == "medical" or out:
        out.append(Notice("medical", _TEXT["medical"][lang]))
    if domain == "legal":
        place = jurisdiction(hits, lang)
        where = ""
        if place:
            where = (
                f"（所引法律为{place}法律）"
                if lang == "zh"
                else f" (the sources are law of {place})"
            )
        out.append(Notice("legal", _TEXT["legal"][lang].format(where=where)))
    return tuple(out)
