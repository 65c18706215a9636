"""What a finished answer becomes: a refusal, the model's verified sentences, or the evidence.

Evidence first: the sentence the trained scorer (agent/evidence.py) ranks most likely to answer
is always part of the answer. When the model's verified sentences already rest on it they stand
alone; otherwise it is quoted and cited after them, and when nothing the model wrote verifies it
is the whole answer, and so it is when the question asks for a number and the model's verified
sentences state none. A verified sentence resting on a passage sentence the scorer finds unlikely
to answer is true but beside the question, and is left out. A model reply that declines in any
wording is a refusal (agent/refusal.py), unless the scorer is confident (`overrule`) that its best
sentence answers: then that sentence is quoted. The 1.5B model declined 27 of 60 answerable
newcomer questions whose passage held the answer; on the dev runs every such decline with a best
sentence at 0.4 or more was answerable and the quote held the key fact (docs/EVALS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.citations import SupportScorer, citation, strip_markers, verify, with_markers
from agent.claims import quantities
from agent.evidence import asks_number
from agent.gate import GateDecision
from agent.refusal import REFUSAL, is_refusal
from agent.types import Citation
from retrieval.sentences import split_sentences
from retrieval.types import Hit

QUOTE = {"en": "The documents say: {text}", "zh": "资料中写道：{text}"}


def ground(
    text: str,
    *,
    raw: str = "",
    query: str,
    lang: str,
    hits: Sequence[Hit],
    decision: GateDecision,
    scorer: SupportScorer,
    strict: bool,
    overrule: float = 1.0,
) -> tuple[str, tuple[Citation, ...], bool]:
    """(answer, citations, refused) for the model's usable `text` (module docstring); `raw` is
    everything it wrote, where the exact refusal sentence counts even when `text` lost it."""
    if is_refusal(text) or any(r in raw for r in REFUSAL.values()):
        confident = overrule < 1 and decision.strength >= overrule
        if not (confident and decision.evidence and decision.best >= 0):
            return REFUSAL[lang], (), True
        return _quoted("", (), hits, decision, lang)
    checked = verify(text, hits, scorer, question=query)
    if not strict and checked.text:
        return checked.text, checked.citations, False
    kept = tuple(c for c in checked.citations if c.verified)
    grounded = checked.grounded
    if decision.evidence and asks_number(query) and not quantities(strip_markers(grounded)):
        # "多少天内可以换货？" answered without a number ("…在多少天之内要求换货") answers
        # nothing, however well it matches the passage: the evidence speaks instead.
        grounded, kept = "", ()
    grounded, kept = _answering(grounded, kept, decision, lang)
    if decision.best < 0 or not decision.evidence:
        return grounded, kept, False
    if any(c.supporting_text == decision.evidence for c in kept):
        return grounded, kept, False
    return _quoted(grounded, kept, hits, decision, lang)


def _quoted(
    grounded: str,
    kept: tuple[Citation, ...],
    hits: Sequence[Hit],
    decision: GateDecision,
    lang: str,
) -> tuple[str, tuple[Citation, ...], bool]:
    """`grounded` followed by the quoted, cited evidence sentence, with the sentences beside it
    in its passage that are likely answers too ("The library opens 9:00 to 19:00 Monday to
    Friday … It is closed on Sunday." for "Is the library open on Sunday?")."""
    n, quote = decision.best + 1, _with_neighbours(decision, hits[decision.best], lang)
    cite = citation(n, hits[decision.best], quote, 1.0, quote, True)
    quoted = QUOTE[lang].format(text=with_markers(quote, [n]))
    joiner = "" if lang == "zh" else " "
    answer = joiner.join(part for part in (grounded, quoted) if part)
    return answer, (*kept, cite), False


def _with_neighbours(decision: GateDecision, hit: Hit, lang: str) -> str:
    likely = {
        e.sentence for e in decision.ranked if e.score >= decision.cut and e.hit == decision.best
    }
    sentences = [strip_markers(s) for s in split_sentences(hit.text, unwrap=True)]
    if decision.evidence not in sentences:
        return decision.evidence
    i = j = sentences.index(decision.evidence)
    while i > 0 and sentences[i - 1] in likely:
        i -= 1
    while j + 1 < len(sentences) and sentences[j + 1] in likely:
        j += 1
    return ("" if lang == "zh" else " ").join(sentences[i : j + 1])


def _answering(
    grounded: str, kept: tuple[Citation, ...], decision: GateDecision, lang: str
) -> tuple[str, tuple[Citation, ...]]:
    """The verified sentences that rest on a passage sentence likely to answer the question: a
    true sentence that answers something else ("接种后须在观察区留观30分钟" asked about 取药)
    is supported, not an answer."""
    likely = {e.sentence for e in decision.ranked if e.score >= decision.cut}
    answering = {c.sentence for c in kept if c.supporting_text in likely}
    if not decision.ranked or answering == {c.sentence for c in kept}:
        return grounded, kept
    kept = tuple(c for c in kept if c.sentence in answering)
    order = dict.fromkeys(c.sentence for c in kept)
    parts = [with_markers(s, [c.n for c in kept if c.sentence == s]) for s in order]
    return ("" if lang == "zh" else " ").join(parts), kept
