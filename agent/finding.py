"""Search a turn's knowledge bases and weigh what comes back with the evidence gate and, for an
open question, the span reader (its "no answer here", its answer where the scorer missed one,
and its pick of the evidence sentence); when the router's choice does not answer, search the
other knowledge bases before refusing ("How many DVDs can a child borrow?" reads as legal, the
library rules are filed under education)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agent.config import TurnConfig
from agent.evidence import Evidence, EvidenceFinder
from agent.gate import DEFAULT_THRESHOLD, GateDecision, weigh
from agent.span import opens
from agent.turn_state import TurnState, elapsed_ms
from agent.types import Route
from retrieval.lang import detect_lang
from retrieval.search import HybridSearcher
from retrieval.types import Filters


@dataclass(frozen=True)
class Search:
    searcher: HybridSearcher
    finder: EvidenceFinder
    config: TurnConfig
    kb_domains: Callable[[], Mapping[str, str]]  # every knowledge base, read per turn
    # (question, sentences) -> P(no answer) of each (agent/span.py SpanReader.none)
    no_answer: Callable[[str, Sequence[str]], Sequence[float]] | None = None
    read: int = 3  # the likeliest sentences the reader reads

    def find(
        self,
        state: TurnState,
        route: Route,
        filters: Filters | None,
        timings: dict[str, float],
        t0: float,
    ) -> GateDecision:
        """Search the route's knowledge bases into `state.hits` and weigh them; when they do not
        answer and the router (not the user) chose them, search the other knowledge bases."""
        k = self.config.k
        state.hits = tuple(self.searcher.search(state.query, route.kbs, k=k, filters=filters))
        timings["retrieve_ms"] = elapsed_ms(t0)
        domains = self.kb_domains()  # read once a turn: every knowledge base and its domain
        decision = self.weigh(state, timings, domains)
        every = tuple(domains)
        others = tuple(kb for kb in every if kb not in route.kbs)
        if decision.passed or state.kbs_given or not others:
            return decision
        # The route's own knowledge bases were searched and did not answer: not again.
        wide = tuple(self.searcher.search(state.query, others, k=k, filters=filters))
        timings["widened_ms"] = elapsed_ms(t0)
        widened = self.weigh(dataclasses.replace(state, hits=wide), timings, domains)
        if widened.passed or (widened.on_topic and not decision.on_topic):
            state.hits = wide
            state.route = dataclasses.replace(route, kbs=every, method=f"{route.method}+widened")
            return widened
        timings["gate_strength"] = round(decision.strength, 4)
        return decision

    def weigh(
        self, state: TurnState, timings: dict[str, float], domains: Mapping[str, str]
    ) -> GateDecision:
        """The evidence gate's verdict on `state.hits` (`domains`: each knowledge base's)."""
        cfg = self.config
        decision = weigh(
            state.query,
            state.hits,
            self.finder,
            DEFAULT_THRESHOLD if cfg.gate_threshold is None else cfg.gate_threshold,
            cfg.evidence_threshold,
        )
        timings["gate_strength"] = round(decision.strength, 4)
        if self.no_answer is None or not decision.ranked or not opens(state.query):
            return decision
        if not decision.passed:
            return self.rescue(state, decision, timings)
        if cfg.no_answer >= 1 and cfg.reader_picks >= 1:
            return decision
        if domains.get(state.hits[decision.best].kb) == "legal":
            # Statutes answer in clauses the reader was not trained on: given the gold article,
            # it read 9 of 15 open STARD questions as unanswered (docs/EVALS.md, "No answer here").
            return decision
        # The scorer weighs features of a sentence; RGB's negatives (the same event, another
        # year's figure) look as likely as the answer to it. The reader reads each sentence.
        sentences = self.likeliest(decision)
        nones = dict(zip(sentences, self.no_answer(state.query, sentences), strict=True))
        none = min(nones.values(), default=0.0)
        timings["no_answer"] = round(none, 4)
        if none >= cfg.no_answer:
            return dataclasses.replace(decision, passed=False)  # on topic: a refusal, sources
        return self.pick(state, decision, nones)

    def pick(
        self, state: TurnState, decision: GateDecision, nones: Mapping[str, float]
    ) -> GateDecision:
        """The reader's choice of evidence among the scorer's likeliest sentences (`nones`: each
        one's P(no answer)), in the question's language, when it reads the scorer's choice as
        holding no answer more likely by over `reader_picks`: it goes first, as likely as the
        scorer's choice, which stays second and is quoted too ("How long do you keep my
        prescription…?" read "2 working days" out of the sentence on when it is ready, over
        "…kept for 4 weeks"; the reader has been sure and wrong as well: docs/EVALS.md)."""
        if self.config.reader_picks >= 1 or decision.evidence not in nones:
            return decision
        own = {s: e for s, e in self.readable(state, decision).items() if s in nones}
        best = min(own, key=nones.__getitem__, default=decision.evidence)
        if nones[decision.evidence] - nones[best] <= self.config.reader_picks:
            return decision
        return _first(decision, own[best], decision.strength)

    def rescue(
        self, state: TurnState, decision: GateDecision, timings: dict[str, float]
    ) -> GateDecision:
        """The scorer's refusal, overruled when the reader is sure one of its likeliest sentences
        in the question's language answers: the scorer weighs words a question shares with a
        sentence, and a person's paraphrase shares few ("When do you close on Fridays?" put
        "…Friday 7:30-16:00" at 0.007). That sentence becomes the evidence, as likely as the
        scorer's cut. The reader learnt from pairs in one language: across two it finds answers
        anywhere ("一个班有多少个孩子？" read "3 miles" out of a pharmacy's delivery sentence)."""
        if self.config.read_answers <= 0 or self.no_answer is None:
            return decision
        own = self.readable(state, decision)
        sentences = list(own)[: self.read]
        if not sentences:
            return decision
        nones = list(self.no_answer(state.query, sentences))
        i = min(range(len(nones)), key=nones.__getitem__)
        timings["read_answers"] = round(nones[i], 4)
        if nones[i] >= self.config.read_answers:
            return decision
        found = _first(decision, own[sentences[i]], decision.cut)
        return dataclasses.replace(found, passed=True, on_topic=True)

    def likeliest(self, decision: GateDecision) -> list[str]:
        """The scorer's likeliest distinct sentences, the ones the reader reads."""
        return list(dict.fromkeys(e.sentence for e in decision.ranked))[: self.read]

    @staticmethod
    def readable(state: TurnState, decision: GateDecision) -> dict[str, Evidence]:
        """The ranked sentences in the question's language, most likely first, each once: the
        reader learnt from pairs in one language."""
        lang = detect_lang(state.query)
        own: dict[str, Evidence] = {}
        for e in decision.ranked:
            if (state.hits[e.hit].lang or detect_lang(e.sentence)) == lang:
                own.setdefault(e.sentence, e)
        return own


def _first(decision: GateDecision, e: Evidence, score: float) -> GateDecision:
    """`decision` with `e` first among the ranked sentences, as the evidence, at least `score`."""
    top = Evidence(e.hit, e.sentence, max(e.score, score))
    ranked = (top, *(r for r in decision.ranked if r is not e))
    return dataclasses.replace(
        decision, strength=top.score, best=e.hit, evidence=e.sentence, ranked=ranked
    )
