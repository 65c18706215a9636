"""One conversation turn, as a path with no back and forth: state, rewrite, route, retrieve, answer,
verify, store.

Each step takes the previous step's value. The route is computed from the (rewritten) user query
alone, so text inside documents cannot steer it; the one exception only widens what is answered: an
unsure chit-chat or clarify verdict becomes a knowledge question when the documents support the
query past the evidence gate (the prototype router takes "Tell me about oxygen." for small talk),
and a question called small talk however surely is answered or refused with sources when the
documents are on its topic.
Retrieved text only reaches the answer prompt, fenced as quoted data, and what the model writes is
checked on the way out: sentences that reproduce the prompt's rules are dropped (and generation
stops as soon as the output starts copying them), so are sentences in another language than the
user's and one cut off by the token budget; every citation is checked against its passage
(agent/citations.py, agent/claims.py). Evidence first (agent/evidence.py): a trained scorer
ranks the passages' sentences before generation; the prompt holds the likeliest ones, the gate
refuses when none is likely to answer, and the best one is quoted when the model's verified
sentences do not rest on it (agent/grounding.py). A question the router calls out of scope is
checked against the documents too: when they are on its topic it is answered or refused with
sources, never called out of scope. The router's domain only orders the search: when the
knowledge bases of that domain do not answer, every other one is searched before refusing
(agent/finding.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from agent.citations import SupportScorer
from agent.config import TurnConfig
from agent.context import evidence_hits, fit_passages
from agent.evidence import EvidenceFinder
from agent.finding import Search
from agent.gate import GateDecision
from agent.generate import stream_answer
from agent.grounding import ground
from agent.protocols import LM, CancelToken
from agent.refusal import REFUSAL
from agent.rewrite import asks, lm_rewrite, rewrite
from agent.router import Router, kbs_for
from agent.sanitize import usable
from agent.span import read_none, read_span
from agent.span import warm as warm_reader
from agent.state import DialogueStore
from agent.turn_state import NOT_COVERED, TurnState, elapsed_ms, record_turn, shown
from agent.types import (
    Citation,
    Done,
    Event,
    Retrieved,
    Rewritten,
    Route,
    Routed,
)
from prompts import render
from retrieval.lang import detect_lang
from retrieval.search import HybridSearcher
from retrieval.types import Filters, Hit

# Below this confidence a chit-chat or clarify verdict is checked against the documents first.
PROBE_BELOW = 0.9


class DialogueManager:
    """Runs turns; model weights are shared, dialogue state lives in the store per session."""

    def __init__(
        self,
        *,
        lm: LM,
        searcher: HybridSearcher,
        router: Router,
        store: DialogueStore,
        scorer: SupportScorer,
        kb_domains: Mapping[str, str] | Callable[[], Mapping[str, str]],
        config: TurnConfig | None = None,
    ) -> None:
        self.lm = lm
        self.searcher = searcher
        self.router = router
        self.store = store
        self.scorer = scorer
        self.finder = EvidenceFinder(scorer)
        # A callable is read on every use: a knowledge base another process creates or drops is
        # routed to (or not) from the next turn on.
        self._kb_domains = kb_domains if callable(kb_domains) else (lambda: kb_domains)
        self.config = config or TurnConfig()
        self.search = Search(
            searcher, self.finder, self.config, self._kb_domains, no_answer=read_none
        )
        cfg = self.config
        if min(cfg.short_answer, cfg.no_answer, cfg.reader_picks) < 1 or cfg.read_answers > 0:
            warm_reader()

    @property
    def kb_domains(self) -> dict[str, str]:
        """Every knowledge base's domain, as stored now."""
        return dict(self._kb_domains())

    def turn(
        self,
        session_id: str,
        message: str,
        *,
        kbs: Sequence[str] | None = None,
        filters: Filters | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[Event]:
        """Stream one turn's events; the turn is stored at the end, also when the stream stops early
        (closed by the caller, cancelled, or failed), then marked interrupted with what was shown.
        """
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        history = self.history(session_id)
        state = TurnState(message, message, detect_lang(message), kbs_given=bool(kbs))
        try:
            state.query, used_lm = rewrite(self.lm, message, history)
            timings["rewrite_ms"] = elapsed_ms(t0)
            route = state.route = self.route(state.query, kbs)
            if route.intent == "clarify" and history and not used_lm:
                # Too vague alone, but said in a conversation: a follow-up that names nothing
                # it points back at ("How much notice exactly?" after a question on visits).
                state.query, used_lm = rewrite(self.lm, message, history, follow_up=True)
                timings["rewrite_ms"] = elapsed_ms(t0)
                route = state.route = self.route(state.query, kbs)
            yield Rewritten(state.query, used_lm)
            probe = None
            # A question the router takes for small talk ("Do you offer teeth whitening?" over a
            # dental practice's pages) is checked against the documents however sure it is.
            asked = route.intent == "chitchat" and asks(state.query)
            unsure = route.intent in ("chitchat", "clarify") and (
                route.intent_confidence < PROBE_BELOW or asked
            )
            if unsure or route.intent == "out_of_scope":
                if route.intent == "out_of_scope" and not kbs:
                    route = state.route = dataclasses.replace(route, kbs=tuple(self.kb_domains))
                probe = self.search.find(state, route, filters, timings, t0)
                route = state.route  # the knowledge bases searched, when widened
                # Out of scope is for questions the documents are not about at all: an unsure
                # verdict ("找人替考被抓到了会怎么处理？" over a rulebook) gets the knowledge path,
                # so at worst a refusal that shows the closest sources.
                # So does a question the router is not sure is small talk: the closest sources
                # serve the user better than the model's chat ("Can I bring my friend along?"
                # over a gym's terms got "I'm sorry for your loss, but as a document-sharing AI…").
                # And a question put to knowledge bases the user chose ("Do you offer
                # acupuncture?" to a clinic's pages) is for them, not for chat. A question the
                # router is unsure is too vague ("学校的校长是谁？" over a school notice) names what
                # it asks about: the answer or an honest refusal, not "say more".
                vague = route.intent == "clarify" and not asks(state.query)
                doubtful = (asked or (route.intent != "chitchat" and not vague)) and (
                    probe.on_topic or route.intent_confidence < PROBE_BELOW or (asked and bool(kbs))
                )
                if probe.passed or doubtful:
                    method = f"{route.method}+evidence"
                    route = state.route = dataclasses.replace(
                        route, intent="knowledge", method=method
                    )
                else:
                    state.hits = ()  # small talk shows no sources
            yield Routed(route)
            if route.intent == "knowledge":
                yield from self._answer(state, route, history, filters, cancel, timings, t0, probe)
            elif route.intent == "chitchat":
                system = render("chitchat", state.lang)
                messages = [
                    {"role": "system", "content": system},
                    *_chat(history),
                    {"role": "user", "content": message},
                ]
                yield from stream_answer(
                    self.lm, self.config, state, messages, system, cancel, timings, t0
                )
                state.final = self._usable(state, system) or render("clarify", state.lang)
            else:
                state.final = render(route.intent, state.lang)
                state.refused = route.intent == "out_of_scope"
                yield shown(state, state.final)
            state.completed = True
        finally:
            timings["total_ms"] = elapsed_ms(t0)
            reply = record_turn(
                self.store, getattr(self.lm, "name", ""), session_id, state, timings
            )
        yield Done(reply)

    def history(self, session_id: str) -> list[tuple[str, str]]:
        """The session's last turns as (role, text): the standalone query, then the answer."""
        return [
            (role, text)
            for t in self.store.history(session_id, limit=self.config.history_turns)
            for role, text in (("user", t.rewritten_query or t.user_text), ("assistant", t.answer))
        ]

    def route(self, query: str, kbs: Sequence[str] | None = None) -> Route:
        """The router's verdict on the query, with the knowledge bases to search filled in."""
        route = self.router.route(query)
        chosen = tuple(kbs) if kbs else tuple(kbs_for(route.domain, self.kb_domains))
        return dataclasses.replace(route, kbs=chosen)

    def _answer(
        self,
        state: TurnState,
        route: Route,
        history: list[tuple[str, str]],
        filters: Filters | None,
        cancel: CancelToken | None,
        timings: dict[str, float],
        t0: float,
        decision: GateDecision | None = None,
    ) -> Iterator[Event]:
        decision = decision or self.search.find(state, route, filters, timings, t0)
        if not decision.passed and history and state.query == state.message:
            decision = self._as_follow_up(state, route, history, filters, timings, t0) or decision
        hits = state.hits
        yield Retrieved(hits)
        if not decision.passed:
            state.refused = True
            state.final = NOT_COVERED[state.lang]
            yield shown(state, state.final)
            return
        shown_hits = evidence_hits(hits, decision.ranked)
        passages = fit_passages(shown_hits, self.lm.count_tokens, self.config.context_tokens)
        # The rules and the passages are separate templates: the grounding step reads the rules
        # alone, and the refusal sentence the model is told to write is agent/refusal.py's.
        rules = render("answer", state.lang, route.domain, refusal=REFUSAL[state.lang])
        system = f"{rules}\n\n{render('passages', state.lang, passages=passages)}"
        messages = [
            {"role": "system", "content": system},
            *_chat(history),
            {"role": "user", "content": state.query},
        ]
        yield from stream_answer(self.lm, self.config, state, messages, rules, cancel, timings, t0)
        if not state.interrupted:
            state.final, state.citations, state.refused = self._ground(state, hits, rules, decision)

    def _as_follow_up(
        self,
        state: TurnState,
        route: Route,
        history: list[tuple[str, str]],
        filters: Filters | None,
        timings: dict[str, float],
        t0: float,
    ) -> GateDecision | None:
        """A question the documents do not answer alone, asked in a conversation, may lean on it
        without a word that says so ("Can we pay in parts?" after the cost of a school trip): it
        is asked again as the model rewrites it, when the rewrite passes its checks and answers."""
        query = lm_rewrite(self.lm, state.message, history)
        if query is None:
            return None
        # A retry that does not answer leaves the turn, and the timings it reports, as they were.
        trial, trial_timings = dataclasses.replace(state, query=query), dict(timings)
        decision = self.search.find(trial, route, filters, trial_timings, t0)
        if not decision.passed:
            return None
        state.query, state.hits, state.route = query, trial.hits, trial.route
        timings.update(trial_timings)
        return decision

    def _ground(
        self, state: TurnState, hits: Sequence[Hit], rules: str, decision: GateDecision
    ) -> tuple[str, tuple[Citation, ...], bool]:
        """(answer, citations, refused): see agent/grounding.py."""
        return ground(
            self._usable(state, rules),
            raw=state.streamed,
            query=state.query,
            lang=state.lang,
            hits=hits,
            decision=decision,
            scorer=self.scorer,
            strict=self.config.strict,
            overrule=self.config.overrule_refusal,
            second=self.config.second_quote,
            reader=read_span,
            short=self.config.short_answer,
        )

    @staticmethod
    def _usable(state: TurnState, secret: str) -> str:
        return usable(state.streamed, secret=secret, lang=state.lang, truncated=state.truncated)


def _chat(history: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"role": role, "content": text} for role, text in history]
