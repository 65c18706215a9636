"""Which days a number belongs to: "Friday 8:00 to 15:00" is not "Friday 8:00 to 18:00".

The claim check (agent/claims.py, which calls `other_days`) finds every number of a claim in
its supporting sentence, but opening hours and timetables state the same numbers for different
days: "The practice is open on Fridays from 8:00 to 18:00" verified against "Monday to Thursday
8:00-18:00, Friday 8:00-15:00" (seen asking our own dental-practice page, docs/EVALS.md). Here a
number, or a range of them ("8:00-18:00", "8:00至12:00"), belongs to the nearest day expression in
its clause ("Monday to Thursday", "weekends", 周一至周五, 工作日, 节假日), and a claim's number
bound to days must be bound to those days, or to none, where the supporting sentence states it.
"""

from __future__ import annotations

import re
import unicodedata

from agent.quantities import Quantity, located_quantities

_EN_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ZH_DAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_GROUPS = {
    "weekday": frozenset(range(5)),
    "工作日": frozenset(range(5)),
    "weekend": frozenset({5, 6}),
    "周末": frozenset({5, 6}),
    "双休日": frozenset({5, 6}),
    "holiday": frozenset({7}),
    "节假日": frozenset({7}),
}
_DAY = rf"(?:{'|'.join(_EN_DAYS)})s?|(?:周|星期|礼拜)[一二三四五六日天]"
_SPEC = re.compile(
    rf"(?P<a>{_DAY})(?:\s*(?:to|through|until|-|–|—|~|～|至|到)\s*(?P<b>{_DAY}))?"
    r"|(?P<g>weekdays?|weekends?|(?:bank |public )?holidays?|工作日|周末|双休日|(?:法定)?节假日)",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[，,；;。！？!?\n]|\.\s")
_LIST = re.compile(r"\s*(?:、|和|与|及|and|or|&|/)\s*", re.IGNORECASE)
_JOINS = re.compile(r"\s*(?:-|–|—|~|～|to|until|till|至|到|、|and)?\s*", re.IGNORECASE)


def _day(word: str) -> int:
    word = word.lower().rstrip("s")
    return _EN_DAYS.index(word) if word in _EN_DAYS else _ZH_DAY[word[-1]]


def _days(m: re.Match[str]) -> frozenset[int]:
    if m.group("g"):
        word = m.group("g").lower()
        key = next(k for k in _GROUPS if k in word)
        return _GROUPS[key]
    first = _day(m.group("a"))
    last = _day(m.group("b")) if m.group("b") else first
    return frozenset((first + i) % 7 for i in range((last - first) % 7 + 1))  # "Friday to Monday"


def named(text: str) -> frozenset[int]:
    """The days `text` names (0 = Monday … 6 = Sunday, 7 = holidays).

    >>> sorted(named("open Monday to Friday and on Saturday")), sorted(named("周日休息"))
    ([0, 1, 2, 3, 4, 5], [6])
    """
    return frozenset().union(*(_days(m) for m in _SPEC.finditer(text)))


def bound(text: str) -> list[tuple[Quantity, frozenset[int]]]:
    """Every number of `text` with the days it belongs to (empty when its clause names none).

    >>> [(q.value, sorted(d)) for q, d in bound("Mon: closed. Friday 8:00-15:00, weekends shut")]
    [(480.0, [4]), (900.0, [4])]
    >>> [sorted(d) for _, d in bound("周一至周四8:00-18:00，周五8:00-15:00")]
    [[0, 1, 2, 3], [0, 1, 2, 3], [4], [4]]
    """
    text = unicodedata.normalize("NFKC", text)
    out: list[tuple[Quantity, frozenset[int]]] = []
    start = 0
    for end in [m.start() for m in _CLAUSE.finditer(text)] + [len(text)]:
        out += _in_clause(text[start:end])
        start = end + 1
    return out


def _in_clause(clause: str) -> list[tuple[Quantity, frozenset[int]]]:
    specs: list[tuple[int, int, frozenset[int]]] = []
    for m in _SPEC.finditer(clause):  # "Saturdays and Sundays", 周六、周日: one list of days
        if specs and _LIST.fullmatch(clause[specs[-1][1] : m.start()]):
            specs[-1] = (specs[-1][0], m.end(), specs[-1][2] | _days(m))
        else:
            specs.append((m.start(), m.end(), _days(m)))
    located = located_quantities(clause)
    groups: list[list[tuple[int, int, Quantity]]] = []
    for item in located:  # a range ("8:00 to 18:00") belongs to its days as a whole
        if groups and _JOINS.fullmatch(clause[groups[-1][-1][1] : item[0]]):
            groups[-1].append(item)
        else:
            groups.append([item])
    out = []
    for group in groups:
        a, b = group[0][0], group[-1][1]
        near = min(
            specs,
            key=lambda s: a - s[1] if s[1] <= a else s[0] - b if s[0] >= b else 0,
            default=None,
        )
        days = near[2] if near else frozenset()
        out += [(q, days) for _, _, q in group]
    return out


def other_days(claim: str, support: str) -> str | None:
    """The first number of `claim` that `support` states only for other days, or None.

    >>> hours = "Monday to Thursday 8:00-18:00, Friday 8:00-15:00."
    >>> other_days("Open on Fridays from 8:00 to 18:00.", hours)
    '18:00'
    >>> other_days("On Fridays it closes at 15:00.", hours)
    """
    stated = bound(support)
    for q, days in bound(claim):
        if not days:
            continue
        same = [d for s, d in stated if q.matches(s)]
        if same and all(d and not days <= d for d in same):
            if q.unit == "time":
                return f"{int(q.value) // 60}:{int(q.value) % 60:02d}"
            return f"{q.value:g}"
    return None
