"""Opposite words: a claim that says "open" where the sentence supporting it says "closed".

Negation (agent/negation.py) catches "is not open" against "is open"; it cannot see "The library
is open on Sunday" against "It is closed on Sunday", which share every content word but the one
that answers the question. A claim clause using one side of an opposite pair contradicts its
support when a support clause uses the other side about the same thing (a content word in
common, "Sunday") and no support clause uses the claim's side about it. The pairs are the few
whose two sides are never both true of one thing; "before / after" and "free" are left out, they
say too many other things.
"""

from __future__ import annotations

import re

from agent.days import named
from retrieval.lexical import content_words, stemmed

# (one side, the other side): English words are matched after Porter stemming.
_EN_PAIRS = (
    ({"open"}, {"close", "shut"}),
    ({"allow", "permit"}, {"prohibit", "forbidden", "forbid", "ban"}),
    ({"increas", "rais", "rise", "higher"}, {"decreas", "reduc", "lower", "fall"}),
    ({"maximum"}, {"minimum"}),
    ({"includ"}, {"exclud"}),
    ({"mandatori", "compulsori", "requir"}, {"option", "voluntari"}),
)
_ZH_PAIRS = (
    ({"开放", "开门", "营业", "开馆"}, {"关闭", "闭馆", "关门", "停业", "闭园"}),
    ({"允许", "准许"}, {"禁止", "严禁", "不准", "不允许"}),
    ({"增加", "提高", "升高", "上升", "增多"}, {"减少", "降低", "下降", "减轻"}),
    ({"免费"}, {"收费", "付费"}),
    ({"最多", "最高", "上限"}, {"最少", "最低", "下限"}),
    ({"以上"}, {"以下"}),
)
# A colon inside a clock time ("8:00") does not end a clause.
_CLAUSE = re.compile(
    r"[，,；;。！？!?]|(?<!\d)[：:]|[：:](?!\d)|\.\s|\bbut\b|\bwhile\b|但是?|而且?"
)


def _sides(clause: str) -> list[tuple[int, int]]:
    """(pair, side) of every opposite word in `clause`."""
    words = set(stemmed(re.findall(r"[a-z]+", clause.lower())))
    found = [(i, side) for i, pair in enumerate(_EN_PAIRS) for side in (0, 1) if words & pair[side]]
    for i, pair in enumerate(_ZH_PAIRS):
        for side in (0, 1):
            # "不允许" holds "允许": the longer word of the other side wins.
            if any(w in clause for w in pair[side]) and not any(
                w in clause and any(o in w for o in pair[side]) for w in pair[1 - side]
            ):
                found.append((i + len(_EN_PAIRS), side))
    return found


def _topic(clause: str) -> set[str]:
    every = {w for pair in (*_EN_PAIRS, *_ZH_PAIRS) for side in pair for w in side}
    words = set(stemmed(content_words(clause)))
    # A Chinese word holding an opposite word is one too ("禁止停放" segmented as one).
    return {w for w in words if w not in every and (w.isascii() or not any(o in w for o in every))}


def _clauses(text: str) -> list[tuple[list[tuple[int, int]], set[str], frozenset[int]]]:
    return [(_sides(c), _topic(c), named(c)) for c in _CLAUSE.split(text) if c.strip()]


def opposite(claim: str, support: str, passage: str = "") -> str:
    """The claim's clause whose opposite the support says about the same thing, or "" (a day
    the support does not name is looked up in the rest of `passage`).

    >>> opposite("The library is open on Sunday.", "It is closed on Sunday.")
    'The library is open on Sunday.'
    >>> opposite("The library is open on Monday.", "It opens at 9:00 on Monday; closed on Sunday.")
    ''
    >>> opposite("It is open on Sunday.", "It is open 9:00 to 17:00 Monday to Saturday.",
    ...          "It is open 9:00 to 17:00 Monday to Saturday. It is closed on Sunday.")
    'It is open on Sunday.'
    >>> opposite("小区允许养宠物。", "小区内禁止饲养宠物。")
    '小区允许养宠物'
    """
    every = _clauses(support)
    around = _clauses(passage)
    for clause in _CLAUSE.split(claim):
        topic, days = _topic(clause), named(clause)
        # "open on Sunday" is what the passage says of Sunday, not of Monday to Saturday, even
        # when the sentence the claim rests on names only those.
        same_days = [c for c in every if c[2] & days] or [c for c in around if c[2] & days]
        clauses = same_days or every
        for pair, side in _sides(clause):
            said = [t for sides, t, _ in clauses if (pair, side) in sides and t & topic]
            denied = [t for sides, t, _ in clauses if (pair, 1 - side) in sides and t & topic]
            if denied and not said:
                return clause.strip()
    return ""
