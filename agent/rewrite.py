"""Follow-up rewriting: turn a message that leans on the conversation into a standalone query.

The LM is called only when the message depends on history (pronouns, ellipsis, "and for children?",
"那第二个呢"). A rewrite the LM botches (empty, rambling, another language, nothing from the
conversation) falls back to the previous question plus the message, which retrieval handles well.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.protocols import LM
from prompts import render
from retrieval.lang import detect_lang
from retrieval.lexical import segment

_EN_DEPENDENT = re.compile(
    r"^(and|but|or|so|what about|how about|also|then)\b|\b(it|its|they|them|their|this|that|these|"
    r"those|he|she|him|her|his|the (first|second|third|last|former|latter|same) (one)?)\b|"
    r"^(why|how|when|where|who)\??$",
    re.IGNORECASE,
)
_ZH_DEPENDENT = re.compile(
    r"^(那|那么|还有|另外|并且|而且|再)|呢[？?]?$|(它|他们|她们|它们|这个|那个|这些|那些|该|此|上述|前者|后者|第[一二三四五六七八九十\d]+个)"
)


def depends_on_history(message: str, history: Sequence[tuple[str, str]]) -> bool:
    """True when the message cannot be understood without the conversation before it.

    >>> depends_on_history("and for children?", [("user", "flu symptoms?")])
    True
    >>> depends_on_history("What is the capital of France?", [("user", "hi")])
    False
    """
    if not history:
        return False
    text = message.strip()
    if detect_lang(text) == "zh":
        return bool(_ZH_DEPENDENT.search(text)) or len(text) <= 6
    return bool(_EN_DEPENDENT.search(text)) or len(text.split()) <= 3


def last_user_question(history: Sequence[tuple[str, str]]) -> str:
    for role, text in reversed(history):
        if role == "user":
            return text
    return ""


def _plausible(rewrite: str, message: str, history: Sequence[tuple[str, str]], lang: str) -> bool:
    if not rewrite or len(rewrite) > 3 * len(message) + 200 or detect_lang(rewrite) != lang:
        return False
    context = set(segment(" ".join(text for _, text in history[-4:])))
    return bool(context & set(segment(rewrite)) - set(segment(message)))


def rewrite(
    lm: LM, message: str, history: Sequence[tuple[str, str]], max_new_tokens: int = 48
) -> tuple[str, bool]:
    """(standalone query, whether the LM was asked)."""
    if not depends_on_history(message, history):
        return message, False
    lang = detect_lang(message)
    prompt = render("rewrite", lang, history=list(history[-4:]), message=message)
    text = "".join(lm.stream([{"role": "user", "content": prompt}], max_new_tokens=max_new_tokens))
    candidate = text.strip().splitlines()[0].strip(" \"'“”") if text.strip() else ""
    if _plausible(candidate, message, history, lang):
        return candidate, True
    joiner = "" if lang == "zh" else " "
    return f"{last_user_question(history)}{joiner}{message}".strip(), True
