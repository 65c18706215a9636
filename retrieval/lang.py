"""Tell Chinese from English text, cheaply and deterministically."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_lang(text: str) -> str:
    """Return "zh" when CJK characters make up a fifth of the letters, else "en".

    >>> detect_lang("依法成立的合同，受法律保护。"), detect_lang("The contract is valid.")
    ('zh', 'en')
    """
    sample = text[:2000]
    cjk = len(_CJK.findall(sample))
    latin = len(_LATIN.findall(sample))
    # A Chinese character carries about as much as a whole English word, hence the low bar.
    return "zh" if cjk and cjk * 5 >= latin else "en"


def has_cjk(text: str) -> bool:
    """True when `text` holds at least one CJK ideograph."""
    return _CJK.search(text) is not None
