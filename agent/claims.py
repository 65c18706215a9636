"""The specific claims of a sentence: numbers with their units, times, negations and names.

A sentence that says what its passage is about can still get the one thing the user asked for
wrong ("…is 100mg" against a leaflet that says 4,000 mg). Support scores (agent/citations.py)
cannot see that; this module can: a claim verifies only when every quantity it states occurs in
the passage sentence that supports it, after normalisation (4,000 mg = 4000 mg = 4 g;
二个月 = 两个月 = 2个月; 七日 = 7天; 18:30), its negation matches that sentence's, and the names it
mentions occur in the passage, it does not say the opposite of it ("open" against "closed":
agent/antonyms.py), and a number it says for some days is stated for those days (agent/days.py).
Numbers are read by agent/quantities.py, negations by agent/negation.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.antonyms import opposite
from agent.days import other_days
from agent.negation import negation_differs
from agent.quantities import quantities

# A capitalised word not at the start of the sentence: a name the passage must also contain.
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-zA-Z]{2,}")
# A question that asks who is answered by another name; any other question about a name is
# answered about that name, or through a pronoun that stands for it.
_ASKS_WHO = re.compile(r"^\s*(?:who|whom|whose)\b|谁", re.I)
_PRONOUN = re.compile(r"\b(?:it|its|he|his|him|she|her|they|their|them|this|these)\b", re.I)
_SELF_CONTRADICTION = re.compile(r"(.{2,12}?)[，,]\s*(?:不|并不|不是|不是很)(?:是)?\1")


def names(text: str) -> set[str]:
    """Capitalised words inside an English sentence: names a passage must also contain."""
    return set(_NAME.findall(text))


def about_someone_else(claim: str, support: str, question: str) -> bool:
    """Whether the claim answers a question about one name with a fact about another that the
    same supporting sentence mentions ("When did Scheele discover oxygen?" answered "…by
    Priestley in 1773" from "…by Scheele in 1773 or earlier, and Priestley … in 1774").

    >>> about_someone_else("It was made by Joseph Priestley in 1773.", "", "When did Scheele?")
    False
    >>> s = "Oxygen was discovered by Carl Scheele in 1773, and Joseph Priestley in 1774."
    >>> about_someone_else("It was found by Joseph Priestley.", s, "When did Scheele?")
    False
    >>> about_someone_else("Joseph Priestley found it in 1773.", s, "When did Scheele find it?")
    False
    >>> about_someone_else("The find was by Joseph Priestley.", s, "When did Scheele find it?")
    True
    """
    in_question, in_claim = names(question), names(claim)
    asked = {n for n in in_question if n in support}
    if not asked or not in_claim - in_question:
        return False
    if _ASKS_WHO.search(question) or _PRONOUN.search(claim):
        return False
    return not asked & in_claim


@dataclass(frozen=True)
class ClaimCheck:
    ok: bool
    reason: str = ""  # why not, for the verifier's report


def check_claim(claim: str, support: str, passage: str, question: str = "") -> ClaimCheck:
    """Does `support` (the passage sentence that supports `claim`) back its specifics? What the
    claim repeats from the `question` (a number the passage also states, a name, a negation) is
    the question's premise, not the answer's claim, and is not checked.

    >>> check_claim("The maximum is 100 mg.", "Do not take more than 4,000 mg in 24 hours.", "").ok
    False
    >>> check_claim("最多可以服用4克。", "24小时内不得超过 4,000 mg。", "").ok
    True
    >>> check_claim("生鲜食品可以无理由退货。", "生鲜食品不适用无理由退货。", "").reason
    'negation differs'
    """
    if _SELF_CONTRADICTION.search(claim):
        return ClaimCheck(False, "contradicts itself")
    # A number the question gave is the premise, unless the passage gives another of its kind:
    # "2021年…1186万人" from a passage on 2020 moves the passage's figure to the asked year, while
    # "第 50 届超级碗上…" over a passage that names no edition only repeats the question.
    given = quantities(question)
    in_passage = quantities(passage or support) if given else []
    premise = [
        q
        for q in given
        if any(q.matches(p) for p in in_passage) or not any(p.unit == q.unit for p in in_passage)
    ]
    stated = [*quantities(support), *premise]
    for q in quantities(claim):
        if not any(q.matches(s) for s in stated):
            return ClaimCheck(False, f"number {q.value:g}{q.unit} not in the supporting sentence")
    wrong_days = other_days(claim, support)
    if wrong_days:
        return ClaimCheck(False, f"{wrong_days} is for other days in the supporting sentence")
    if negation_differs(claim, support, question):
        return ClaimCheck(False, "negation differs")
    if opposite(claim, support, passage):
        return ClaimCheck(False, "says the opposite of the supporting sentence")
    if about_someone_else(claim, support, question):
        return ClaimCheck(False, "about another name than the question's")
    lowered = f"{passage or support} {question}".lower()
    missing = [n for n in names(claim) if n.lower() not in lowered]
    if missing:
        return ClaimCheck(False, f"name {missing[0]} not in the passage")
    return ClaimCheck(True)
