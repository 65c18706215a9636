"""Refusals: the one sentence the answer prompts ask for, and every other way a model says it.

A model told to reply "The documents do not say." writes "The school uniform policy is not
mentioned in the given passages" or "资料中没有提到咖啡…" as often as the exact sentence; each is a
refusal and is recorded as one (`refused` true, the refusal notice shown).
"""

from __future__ import annotations

import re

REFUSAL = {"en": "The documents do not say.", "zh": "资料中没有提到。"}

_EN = re.compile(
    r"\b(?:do(?:es)?|did)\s*(?:not|n't)\s+(?:say|mention|contain|provide|specify|state|include|"
    r"address|cover|discuss|describe|give|answer)\b|"
    r"\bnot\s+(?:mentioned|stated|specified|provided|given|included|found|covered|addressed|"
    r"discussed|available|described)\b|"
    r"\b(?:no|not\s+any)\s+(?:information|mention|details?|data|evidence)\s+(?:about|on|regarding|"
    r"in|is|was|are)\b|\b(?:cannot|can't|unable\s+to)\s+(?:answer|find|determine|tell)\b|"
    r"\bthere\s+is\s+no\s+(?:information|mention)\b",
    re.IGNORECASE,
)
_ZH = re.compile(
    r"(?:没有|未|并未|并没有|没)(?:提到|提及|说明|涉及|记载|写明|给出|包含|找到|相关)|"
    r"无法(?:回答|确定|判断|得知|找到)|不(?:能|可能)回答|没有(?:关于|有关)"
)


def is_refusal(text: str) -> bool:
    """Whether an answer's opening declines because the documents do not say.

    Only the first sentence counts: an answer that states facts and then notes that one detail is
    not given is an answer.

    >>> is_refusal("The school uniform policy is not mentioned in the given passages.")
    True
    >>> is_refusal("资料中没有提到咖啡。"), is_refusal("Adults may take 4,000 mg a day [1].")
    (True, False)
    """
    head = re.split(r"(?<=[.!?。！？])\s*", text.strip())[0]
    return bool(_EN.search(head) or _ZH.search(head)) or any(r in head for r in REFUSAL.values())
