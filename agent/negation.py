"""Negation: does a claim deny what its supporting sentence asserts, or assert what it denies?

"生鲜食品可以无理由退货" against "生鲜食品不适用无理由退货" differs in one character that reverses
it. A negation (不/没/未/无/禁…, not/no/never/n't; compounds that deny nothing, such as 无理由,
不仅 and "no more than", aside) governs the few words after it, up to the end of its clause, a
contrast (但/却/而是/but) or the end of a title or quotation; 非 only the word it prefixes. Used by
the claim check (agent/claims.py).
"""

from __future__ import annotations

import re

_NOT_NEGATION = re.compile(
    r"不仅|不但|不过|不论|不管|不久|不少|不同|不断|无论|无理由|毫无疑问|"
    # Words that hold a negation character but deny nothing (countless, very, future, Africa…).
    r"无数|无线|无人机|非常|非洲|非裔|除非|未来|"
    r"不(?:得|要|应|可|能|宜|应当)?(?:超过|多于|少于|低于|高于|超出|大于|小于|晚于|早于)|"
    r"\b(?:no|not|never)\s+(?:\w+\s+){0,2}?(?:more|longer|later|higher|greater|less|fewer|earlier)"
    r"\s+than\b|\b(?:not|never)\s+(?:to\s+)?exceed\w*",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[，,；;。：:！？!?]")
# "Not X but Y" denies X only: a negation's scope ends at a contrast ("以前未知但相关的进化枝"),
# and one inside a title or quotation at its end ("《论公民的不服从》中引用了").
_SCOPE_END = re.compile(r"但是|但|却|而是|[》」”』)）]|\bbut\b|\binstead\b", re.IGNORECASE)
# 非 makes a word of what follows it ("非暴力主义", non-violence): it denies that word only.
_PREFIX_SCOPE = {"非": 2}
_ZH_NEGATION = re.compile(r"[不没未无勿非禁]|不得|禁止|严禁")
_EN_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nor|without|cannot|neither|avoid|prohibited|forbidden)\b|n't\b", re.I
)


def negated(text: str) -> bool:
    """Whether `text` negates: 不/没/未/无/禁… or not/no/never/n't (compounds like 无理由 aside).

    >>> negated("生鲜食品不适用七日无理由退货"), negated("七日内可以无理由退货")
    (True, False)
    >>> negated("Do not drink."), negated("Take no more than 4 g.")
    (True, False)
    """
    text = _NOT_NEGATION.sub("", text)
    return bool(_ZH_NEGATION.search(text) or _EN_NEGATION.search(text))


def _scopes(text: str) -> list[set[str]]:
    """The words each negation governs: the few words after it, up to the end of its clause or
    a contrast; after 非 the word it prefixes."""
    from retrieval.lexical import content_words

    text = _NOT_NEGATION.sub("", text)
    out = []
    for m in (*_ZH_NEGATION.finditer(text), *_EN_NEGATION.finditer(text)):
        rest = _SCOPE_END.split(_CLAUSE_END.split(text[m.end() :], maxsplit=1)[0], maxsplit=1)[0]
        after = rest[: _PREFIX_SCOPE.get(m.group(), 10)] if m.group()[0] > "\u2e80" else rest
        out.append(set(content_words(" ".join(after.split()[:5]) if after.isascii() else after)))
    return out


def _affirmed(text: str) -> set[str]:
    """The words of `text`'s clauses that negate nothing."""
    from retrieval.lexical import segment

    clauses = _CLAUSE_END.split(text)
    return set(segment(" ".join(c for c in clauses if not negated(c))))


def negation_differs(claim: str, support: str, question: str = "") -> bool:
    """Whether the claim and its support disagree on a negation: the claim denies what the
    support does not (and the question did not already), or the support denies something the
    claim asserts ("生鲜…可以无理由退货" against "…不适用无理由退货：生鲜…").

    >>> negation_differs("可以无理由退货。", "生鲜商品不适用无理由退货。")
    True
    >>> negation_differs("医生可以配药。", "医生可以配药，只要没有对病人的剥削。")
    False
    >>> negation_differs("什么是进化枝：遗传分支。", "存在两种以前未知但相关的进化枝（遗传分支）。")
    False
    >>> negation_differs("梭罗也引用了这首诗。", "后来甘地在他的非暴力主义中也引用了这个版本。")
    False
    >>> negation_differs("梭罗引用了这首诗。", "梭罗在《论公民的不服从》中引用了这个版本。")
    False
    """
    from retrieval.lexical import segment

    if negated(claim) and not negated(support):
        return not negated(question)
    if negated(support) and not negated(claim):
        words = set(segment(claim))
        denied = set().union(*(scope & words for scope in _scopes(support)))
        # A word the support also states in a clause that denies nothing is not denied: "…并不
        # 代表其社会地位，因为也有富有且社会地位高的汉人" affirms 社会地位 too.
        return bool(denied - _affirmed(support))
    return False
