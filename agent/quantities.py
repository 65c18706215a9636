"""Numbers as a claim states them: a value in a canonical unit, wherever and however written.

"4,000 mg" = "4 g" = "四千毫克"; 二个月 = 两个月 = 2个月; 七日 = 7天; "18:30" and "6:30 pm"
are the same minute of the day; "once a year" is one time. The claim check (agent/claims.py)
compares the quantities of a claim with its supporting sentence's; agent/days.py binds them to
days.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6}
_ZH_DIGITS.update({"七": 7, "八": 8, "九": 9})
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_ZH_BIG = {"万": 10_000, "亿": 100_000_000}
_EN_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "hundred": 100, "thousand": 1000, "twice": 2,
    "once": 1, "half": 0.5,
}  # fmt: skip
# Unit words, longest first, each mapped to (canonical unit, factor to it).
_UNITS: dict[str, tuple[str, float]] = {
    "mg": ("mg", 1), "毫克": ("mg", 1), "milligrams": ("mg", 1), "milligram": ("mg", 1),
    "g": ("mg", 1000), "克": ("mg", 1000), "grams": ("mg", 1000), "gram": ("mg", 1000),
    "kg": ("mg", 1e6), "公斤": ("mg", 1e6), "千克": ("mg", 1e6), "ml": ("ml", 1), "毫升": ("ml", 1),
    "l": ("ml", 1000), "升": ("ml", 1000), "mmhg": ("mmhg", 1), "%": ("%", 1), "percent": ("%", 1),
    "天": ("day", 1), "日": ("day", 1), "days": ("day", 1), "day": ("day", 1),
    "周": ("week", 1), "星期": ("week", 1), "weeks": ("week", 1), "week": ("week", 1),
    "个月": ("month", 1), "月": ("month", 1), "months": ("month", 1), "month": ("month", 1),
    "年": ("year", 1), "years": ("year", 1), "year": ("year", 1),
    "小时": ("hour", 1), "hours": ("hour", 1), "hour": ("hour", 1), "h": ("hour", 1),
    "分钟": ("minute", 1), "minutes": ("minute", 1), "minute": ("minute", 1), "min": ("minute", 1),
    "岁": ("age", 1), "倍": ("times", 1), "times": ("times", 1), "元": ("yuan", 1),
    "次": ("times", 1), "°c": ("celsius", 1), "degrees": ("celsius", 1),
    # Counts of people: "1.2亿人次" of cinema visits is not "1.2亿元" of box office.
    "人次": ("visits", 1), "人": ("people", 1), "名": ("people", 1),
}  # fmt: skip
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_ZH_NUM = "[零〇一二两三四五六七八九十百千万亿]+"
_EN_NUM = r"\b(?:" + "|".join(_EN_WORDS) + r")\b"
_TIME = re.compile(r"(?<![\d.])([01]?\d|2[0-3])[:：]([0-5]\d)(?!\d)\s*(am|pm|a\.m\.|p\.m\.)?", re.I)
_NUMBER = re.compile(
    rf"(?P<num>(?<!\d)(?<!\d[.,])\d+(?:[,，]\d{{3}})*(?:\.\d+)?(?![\d])[万亿]?|{_ZH_NUM}|{_EN_NUM})"
    rf"(?:\s*(?:个|-)?\s*(?P<unit>{_UNIT_RE})(?![a-z]))?",
    re.IGNORECASE,
)
_DETERMINERS = frozenset("哪同每某这那任")
# "once a year", "twice per day": a frequency ("Once you have agreed…" is not one).
_FREQUENCY = re.compile(r"\s+(?:a|an|per|every|each|in|daily|weekly|monthly|yearly)\b", re.I)


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str  # canonical unit ("mg", "day", "time" for clock times), "" for a bare number

    def matches(self, other: Quantity) -> bool:
        if abs(self.value - other.value) > 1e-6 * max(1.0, abs(self.value)):
            return False
        return not self.unit or not other.unit or self.unit == other.unit


def zh_number(text: str) -> float | None:
    """The value of a Chinese numeral, None when it is not one.

    >>> zh_number("三十"), zh_number("两"), zh_number("一百零五"), zh_number("十二万")
    (30.0, 2.0, 105.0, 120000.0)
    """
    if not any(ch in _ZH_DIGITS or ch in _ZH_UNITS for ch in text):
        return None  # "亿" or "万" alone is a word, not a number
    total, section, digit = 0.0, 0.0, None
    for ch in text:
        if ch in _ZH_DIGITS:
            digit = _ZH_DIGITS[ch]
        elif ch in _ZH_UNITS:
            section += (1 if digit is None else digit) * _ZH_UNITS[ch]
            digit = None
        elif ch in _ZH_BIG:
            total += (section + (digit or 0)) * _ZH_BIG[ch]
            section, digit = 0.0, None
        else:
            return None
    return total + section + (digit or 0)


def _value(num: str) -> float | None:
    word = num.lower()
    if word in _EN_WORDS:
        return float(_EN_WORDS[word])
    if num[0].isdigit():
        big = _ZH_BIG.get(num[-1], 1)  # "1.2亿" is 120,000,000
        return float(num.rstrip("万亿").replace(",", "").replace("，", "")) * big
    return zh_number(num)


def quantities(text: str) -> list[Quantity]:
    """Every number of `text` with its canonical unit, and clock times as minutes of the day.

    >>> [(q.value, q.unit) for q in quantities("每次 500 mg，24小时不超过4,000毫克，18:30 前")]
    [(500.0, 'mg'), (24.0, 'hour'), (4000.0, 'mg'), (1110.0, 'time')]
    >>> [(q.value, q.unit) for q in quantities("提前三十日或两个月")]
    [(30.0, 'day'), (2.0, 'month')]
    >>> quantities("是哪一年？同一天。")
    []
    >>> [(q.value, q.unit) for q in quantities("可以参加一次补考，次日公布；体温37.3℃")]
    [(1.0, 'times'), (37.3, 'celsius')]
    >>> [(q.value, q.unit) for q in quantities("Once agreed, it rises once a year, twice at most")]
    [(1.0, 'times')]
    >>> [(q.value, q.unit) for q in quantities("2023春节档票房68亿元，观影1.2亿人次")]
    [(2023.0, 'year'), (6800000000.0, 'yuan'), (120000000.0, 'visits')]
    """
    return [q for _, _, q in located_quantities(unicodedata.normalize("NFKC", text))]


def located_quantities(text: str) -> list[tuple[int, int, Quantity]]:
    """`quantities` with where each stands in `text` (start, end), in order; `text` as given."""
    found: list[tuple[int, int, Quantity]] = []
    taken: list[tuple[int, int]] = []
    for m in _TIME.finditer(text):
        hour = int(m.group(1))
        if (m.group(3) or "").lower().startswith("p"):
            hour = hour % 12 + 12
        found.append((m.start(), m.end(), Quantity(float(hour * 60 + int(m.group(2))), "time")))
        taken.append(m.span())
    for m in _NUMBER.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        num = m.group("num")
        value = _value(num)
        # A lone 一/三 or "one" without a unit is a word (一般, 三方, "no one"), not a quantity;
        # nor is 一 after 哪/同/每/某/这/那 (哪一年 "which year", 同一天 "the same day").
        wordy = not num[0].isdigit() and (len(num) == 1 or num.lower() in _EN_WORDS)
        unit_word = m.group("unit")
        if not unit_word and _FREQUENCY.match(text, m.end()) and num.lower() in ("once", "twice"):
            found.append((m.start(), m.end(), Quantity(float(_EN_WORDS[num.lower()]), "times")))
            continue
        if value is None or (wordy and not unit_word):
            continue
        if num == "一" and text[m.start() - 1 : m.start()] in _DETERMINERS:
            continue
        unit, factor = _UNITS.get((m.group("unit") or "").lower(), ("", 1.0))
        if not unit and re.fullmatch(r"(?:19|20)\d\d", num):
            unit = "year"  # "2023春节档", "in 1773": a year, as "2023年" is
        found.append((m.start(), m.end(), Quantity(value * factor, unit)))
    return sorted(found, key=lambda item: item[0])
