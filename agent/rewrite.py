"""Follow-up rewriting: turn a message that leans on the conversation into a standalone query.

The LM is called only when the message depends on history (pronouns, ellipsis, "and for children?",
"那第二个呢"). A rewrite the LM botches (empty, rambling, another language, a copy of an earlier
answer, the message's own words dropped, nothing from the conversation added) falls back to the
previous question plus the message, which retrieval handles well.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.prompt_budget import PromptTooLongError, fit_prompt
from agent.protocols import LM
from prompts import render
from retrieval.lang import detect_lang
from retrieval.lexical import content_words, segment

History = Sequence[tuple[str, str]]  # (role, text), oldest first; role "user" | "assistant"

_EN_DEPENDENT = re.compile(
    r"^(and|but|or|so|also|then|what about|how about|what if)\b|"
    r"\b(it|its|they|them|their|theirs|he|him|his|she|her|hers|these|those|"
    r"the (first|second|third|last|former|latter|same)( one)?)\b|"
    # "this"/"that" as pronouns ("what does that mean", "is this contagious"), not as
    # determiners or relative pronouns ("the law that governs contracts").
    r"\b(about|of|for|with|do|does|did|is|was|mean by) (this|that)\b|"
    r"\b(this|that)(?= ?(\?|$|[.!,]|is\b|was\b|does\b|mean))",
    re.IGNORECASE,
)
_ZH_DEPENDENT = re.compile(
    r"^(那|那么|还有|另外|并且|而且|再)|它|(?<!其)他|她|这个|那个|这些|那些|上述|前者|后者|"
    r"第[一二三四五六七八九十\d]+(个|种|条|项|点)"
)
_ZH_TRAILING_NE = re.compile(r"呢[？?]?$")
# Courtesies stand alone however short they are: rewriting "thanks" into a question would
# send a thank-you to retrieval.
_COURTESY = re.compile(
    r"^(hi|hello|hey|thanks?( you)?|thank you( very much)?|ok(ay)?|bye|goodbye|great|cool|"
    r"你好|您好|谢谢(你|您)?|多谢|好的|再见|拜拜)[\s!.。！~～]*$",
    re.IGNORECASE,
)
# Words that only point back at the conversation: a rewrite need not keep them.
_POINTER_TEXT = (
    "and but or so also then about if else more it its they them their he him his she her this "
    "that these those one ones first second third last former latter same "
    "那 那么 还有 另外 并且 而且 再 它 它们 他 他们 她 她们 这个 那个 这些 那些 上述 前者 后者 "
    "呢 个 第一 第二 第三"
)
_POINTERS = frozenset(_POINTER_TEXT.split())
# Words that say nothing of what is asked about: neither the message's own words a rewrite must
# keep nor words it took from the conversation ("What if I get injured?" is not kept by "How can
# I get a refund for my car?", which shares "i", "get" and "can" with the conversation).
_PLAIN_TEXT = (
    "i me my mine you your yours we us our can could would should may might must shall get got "
    "go make much many just really please want need know tell 我 你 我们 你们 能 可以 要 会"
)
_PLAIN = frozenset(_PLAIN_TEXT.split())
_ORDINAL = re.compile(r"第?[一二三四五六七八九十]+[个种条项点]?")  # "第二个" may become "第二种"
_MARKER = re.compile(r"[\[【]\d{1,2}[\]】]")
# A question stays a question: "那我买的是海鲜呢，也能退吗？" rewritten "你可以看到，我买的是海鲜！"
# asks nothing any more.
_QUESTION = re.compile(
    r"[?？]\s*$|吗|呢|什么|多少|多久|几|怎么|如何|哪|是否|能否|可否|可不可以|能不能|"
    r"^\s*(?:what|how|when|where|who|whom|whose|which|why|is|are|was|were|can|could|do|does|did|"
    r"should|will|would|may|must|has|have)\b",
    re.IGNORECASE,
)


def asks(text: str) -> bool:
    """Whether the text is a question (a question mark, 吗/呢/多少…, or a leading what/how/can…)."""
    return _QUESTION.search(text) is not None


def depends_on_history(message: str, history: History) -> bool:
    """True when the message cannot be understood without the conversation before it.

    >>> depends_on_history("and for children?", [("user", "flu symptoms?")])
    True
    >>> depends_on_history("What is the law that governs leases?", [("user", "hi")])
    False
    """
    text = message.strip()
    if not history or not text or _COURTESY.match(text):
        return False
    if detect_lang(text) == "zh":
        short = len(text.rstrip("？?。!！")) <= 4
        ne = _ZH_TRAILING_NE.search(text) is not None and len(text) <= 12
        return short or ne or _ZH_DEPENDENT.search(text) is not None
    return len(text.split()) <= 2 or _EN_DEPENDENT.search(text) is not None


# The prompt shows the conversation as "user: ..." lines; a small model copies the label.
_ROLE_LABEL = re.compile(
    r"^(?:user|assistant|standalone question|用户|助手|独立问题)\s*[:：]\s*", re.I
)


def last_user_question(history: History) -> str:
    for role, text in reversed(history):
        if role == "user":
            return text
    return ""


def plausible(candidate: str, message: str, history: History) -> bool:
    """Whether an LM rewrite can replace the message: same language, short, keeps the message's
    own words, adds words from the earlier questions, still asks when the message asked, and is not
    a copy of an earlier answer.

    >>> h = [("user", "When did Scheele discover oxygen?"), ("assistant", "In 1773 [1].")]
    >>> plausible("Who else discovered oxygen besides Scheele?", "And who else discovered it?", h)
    True
    >>> plausible("In 1773.", "And who else discovered it?", h)
    False
    >>> plausible("When did Scheele discover oxygen?", "And when did he?", h)  # the old question
    False
    >>> plausible("Scheele discovered oxygen!", "And who else discovered it?", h)  # no question
    False
    """
    if not candidate or _MARKER.search(candidate) or len(candidate) > 3 * len(message) + 150:
        return False
    if detect_lang(candidate) != detect_lang(message):
        return False
    if asks(message) and not asks(candidate):
        return False
    words = set(segment(candidate))
    plain = _POINTERS | _PLAIN
    own = {w for w in content_words(message) if w not in plain and not _ORDINAL.fullmatch(w)}
    if own and len(own & words) < len(own) / 2:
        return False
    asked = {w for role, text in history if role == "user" for w in content_words(text)}
    added = (words & asked) - set(segment(message)) - plain
    answers = [text.strip() for role, text in history if role == "assistant"]
    # An earlier question asked again drops what the new message asks.
    again = any(_same(candidate, text) for role, text in history if role == "user")
    return bool(added) and not again and not any(candidate in a for a in answers)


def _same(a: str, b: str) -> bool:
    return segment(a) == segment(b)


def rewrite(
    lm: LM, message: str, history: History, max_new_tokens: int = 48, follow_up: bool = False
) -> tuple[str, bool]:
    """(standalone query, whether it was rewritten). `follow_up` says the message leans on the
    conversation although `depends_on_history` found no sign of it ("How much notice exactly?").
    When the model's rewrite fails `plausible`, or the history is too long to rewrite with, the
    previous question and the message together are the query."""
    if not (follow_up and history and message.strip()) and not depends_on_history(message, history):
        return message, False
    candidate = lm_rewrite(lm, message, history, max_new_tokens)
    if candidate is not None:
        return candidate, True
    joiner = "" if detect_lang(message) == "zh" else " "
    return f"{last_user_question(history)}{joiner}{message}".strip(), True


def lm_rewrite(lm: LM, message: str, history: History, max_new_tokens: int = 48) -> str | None:
    """The model's standalone form of the message; None when it fails `plausible` or the history
    is too long to rewrite with."""
    recent = list(history[-4:])
    prompt = render("rewrite", detect_lang(message), history=recent, message=message)
    try:
        messages = fit_prompt([{"role": "user", "content": prompt}], lm, max_new_tokens)
    except PromptTooLongError:
        return None
    text = "".join(lm.stream(messages, max_new_tokens=max_new_tokens))
    lines = [line.strip(" \"'“”") for line in text.strip().splitlines() if line.strip()]
    candidate = _ROLE_LABEL.sub("", lines[0]) if lines else ""
    return candidate if plausible(candidate, message, recent) else None
