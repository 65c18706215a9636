"""What a finished answer becomes: a refusal, the model's verified sentences, or the evidence.

Evidence first: the sentence the trained scorer (agent/evidence.py) ranks most likely to answer
is always part of the answer, quoted and cited after the model's verified sentences (unless one
of them copies it word for word); when nothing the model wrote verifies it is the whole answer,
and so it is when the question asks for a number and the model's verified sentences state none.
The quote stands also when the model's sentence rests on it: SmolLM2's sentences that verified alone
held the key fact in 3 of 10 xquad-en answers ("It was a work of his own that was published in 1520"
over the sentence naming the work), the quotes in 65 of 77. A verified sentence resting on a passage
sentence the scorer finds unlikely to answer is true but beside the question, and is left out. A
model reply that declines in any wording is a refusal (agent/refusal.py), unless the scorer is
confident (`overrule`) that its best sentence answers: then that sentence is quoted. The 1.5B model
declined 27 of 60 answerable newcomer questions whose passage held the answer; on the dev runs every
such decline with a best sentence at 0.4 or more was answerable and the quote held the key fact
(docs/EVALS.md).

The scorer's runner-up is quoted too when its probability is at least `second` times the best's:
the answering sentence is quoted in 0.89 / 0.86 of held-out xquad-en / zh cases against 0.81 / 0.77
for the best one alone (docs/EVALS.md, "A second quote"), and a reader checks two cited sentences at
a glance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.citations import SupportScorer, citation, verify
from agent.evidence import Evidence, asks_number
from agent.gate import GateDecision
from agent.markers import strip_markers, with_markers
from agent.quantities import quantities
from agent.refusal import REFUSAL, is_refusal
from agent.span import ShortAnswer, asks_fact, concise, rate
from agent.types import Citation
from retrieval.sentences import split_sentences
from retrieval.types import Hit

QUOTE = {"en": "The documents say: {text}", "zh": "资料中写道：{text}"}
Reader = Callable[[str, str], ShortAnswer | None]  # (question, sentence) -> its answer span


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
    second: float = 1.0,
    reader: Reader | None = None,
    short: float = 1.0,
) -> tuple[str, tuple[Citation, ...], bool]:
    """(answer, citations, refused) for the model's usable `text` (module docstring); `raw` is
    everything it wrote, where the exact refusal sentence counts even when `text` lost it.
    `reader` / `short`: a factual question's answer span when the reader's probability is at
    least `short` (agent/span.py)."""
    if is_refusal(text) or any(r in raw for r in REFUSAL.values()):
        confident = overrule < 1 and decision.strength >= overrule
        if not (confident and decision.evidence and decision.best >= 0):
            return REFUSAL[lang], (), True
        return _quoted("", (), hits, decision, lang, second, (query, reader, short))
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
    return _quoted(grounded, kept, hits, decision, lang, second, (query, reader, short))


def _short(
    query: str, hits: Sequence[Hit], decision: GateDecision, lang: str, reader: Reader, short: float
) -> tuple[str, tuple[Citation, ...], bool] | None:
    """The best sentence's answer span, cited to it ("Kawann Short [1]."), when the question
    asks for a fact, the reader is sure enough and the span is not a rate cut from its "per";
    None otherwise."""
    if short >= 1 or not asks_fact(query):
        return None
    got = reader(query, decision.evidence)
    if got is None or got.score < short or not concise(got.text):
        return None
    if rate(got.text, decision.evidence):
        # "2.5元" read out of "每月每平方米2.5元" is not what the fee is: the sentence says it.
        return None
    end = "。" if lang == "zh" else "."
    answer = with_markers(got.text.rstrip("。.") + end, [decision.best + 1])
    cite = citation(decision.best + 1, hits[decision.best], answer, 1.0, decision.evidence, True)
    return answer, (cite,), False


def _quoted(
    grounded: str,
    kept: tuple[Citation, ...],
    hits: Sequence[Hit],
    decision: GateDecision,
    lang: str,
    second: float,
    span: tuple[str, Reader | None, float] = ("", None, 1.0),
) -> tuple[str, tuple[Citation, ...], bool]:
    """`grounded` followed by the quoted, cited evidence sentence, with the sentences beside it
    in its passage that are likely answers too ("The library opens 9:00 to 19:00 Monday to
    Friday … It is closed on Sunday." for "Is the library open on Sunday?"), and the runner-up.
    With no runner-up, a factual question's answer span (`span`: query, reader, the probability
    it needs) replaces them all."""
    quote = _with_neighbours(decision, hits[decision.best], lang)
    best = Evidence(decision.best, quote, decision.strength)
    held = " ".join([quote, *(c.supporting_text for c in kept)])
    runner_up = _runner_up(decision, hits, lang, second, held)
    query, reader, short = span
    if runner_up is None and reader is not None:
        # Only where the scorer has one sentence in mind: when the runner-up comes close, the
        # answer may be in either, and a span read from the wrong one would be confidently wrong.
        answered = _short(query, hits, decision, lang, reader, short)
        if answered:
            return answered
    # The model's sentence copied the evidence word for word: quoting it again adds nothing.
    copied = _squash(decision.evidence) in _squash(strip_markers(grounded))
    return _quote(grounded, kept, hits, [None if copied else best, runner_up], lang)


def _quote(
    grounded: str,
    kept: tuple[Citation, ...],
    hits: Sequence[Hit],
    quotes: Sequence[Evidence | None],
    lang: str,
) -> tuple[str, tuple[Citation, ...], bool]:
    """`grounded` followed by the quoted `quotes`, each cited to its passage."""
    shown = [e for e in quotes if e is not None]
    if not shown:
        return grounded, kept, False
    cites = tuple(
        citation(e.hit + 1, hits[e.hit], e.sentence, 1.0, e.sentence, True) for e in shown
    )
    joiner = "" if lang == "zh" else " "
    text = joiner.join(with_markers(e.sentence, [e.hit + 1]) for e in shown)
    answer = joiner.join(part for part in (grounded, QUOTE[lang].format(text=text)) if part)
    return answer, (*kept, *cites), False


def _runner_up(
    decision: GateDecision,
    hits: Sequence[Hit],
    lang: str,
    share: float,
    held: str,
) -> Evidence | None:
    """The next most likely answer sentence in the question's language, when its probability is
    at least `share` of the best's and the answer's passage sentences (`held`) do not hold it."""
    if share >= 1:
        return None
    for e in decision.ranked:
        readable = (hits[e.hit].lang or lang) == lang
        if readable and e.sentence != decision.evidence and e.sentence not in held:
            return e if e.score >= share * decision.strength else None
    return None


def _squash(text: str) -> str:
    return "".join(text.lower().split()).rstrip("。.!！?？")


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
