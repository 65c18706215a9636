"""One conversation turn, as a path with no back and forth: state, rewrite, route, retrieve, answer, verify, store."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

from agent.citations import SupportScorer, Verified, verify
from agent.gate import DEFAULT_THRESHOLD, gate
from agent.policy import notices as domain_notices
from agent.protocols import LM, CancelToken, GenerationStats
from agent.rewrite import rewrite
from agent.router import Router, kbs_for
from agent.state import DialogueStore, EvidenceRecord, TurnRecord
from agent.types import (
    Citation,
    Done,
    Event,
    Notice,
    Reply,
    Retrieved,
    Rewritten,
    Route,
    Routed,
    Token,
)
from prompts import fence, render
from retrieval.lang import detect_lang
from retrieval.search import HybridSearcher
from retrieval.types import Filters, Hit

REFUSAL = {"en": "The documents do not say.", "zh": "资料中没有提到。"}
_NOT_COVERED = {
    "en": "The knowledge base does not cover this. The closest sources are listed below.",
    "zh": "知识库中没有涉及这个问题的内容。下面列出了最接近的资料。",
}
_QUOTE = {"en": "The documents say: {text} [{n}]", "zh": "资料中写道：{text} [{n}]"}


@dataclass(frozen=True)
class TurnConfig:
    k: int = 5
    max_new_tokens: int = 256
    time_limit_s: float | None = 60.0
    history_turns: int = 3
    gate_threshold: float = DEFAULT_THRESHOLD
    # Show only sentences a passage supports; unsupported ones are dropped (and reported).
    strict: bool = True


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
        kb_domains: Mapping[str, str],
        config: TurnConfig | None = None,
    ) -> None:
        self.lm = lm
        self.searcher = searcher
        self.router = router
        self.store = store
        self.scorer = scorer
        self.kb_domains = dict(kb_domains)
        self.config = config or TurnConfig()

    def turn(
        self,
        session_id: str,
        message: str,
        *,
        kbs: Sequence[str] | None = None,
        filters: Filters | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[Event]:
        """Stream one turn's events; the turn is stored at the end, also when the stream stops early."""
        cfg = self.config
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        lang = detect_lang(message)
        history = [
            (role, text)
            for t in self.store.history(session_id, limit=cfg.history_turns)
            for role, text in (("user", t.rewritten_query or t.user_text), ("assistant", t.answer))
        ]
        state = _TurnState(message=message, query=message, lang=lang)
        try:
            state.query, used_lm = rewrite(self.lm, message, history)
            timings["rewrite_ms"] = _ms(t0)
            yield Rewritten(state.query, used_lm)

            route = self.router.route(state.query)
            chosen = tuple(kbs) if kbs else tuple(kbs_for(route.domain, self.kb_domains))
            state.route = Route(
                route.intent,
                route.domain,
                route.intent_confidence,
                route.domain_confidence,
                route.method,
                chosen,
            )
            yield Routed(state.route)

            if route.intent == "knowledge":
                yield from self._answer(state, history, filters, cancel, timings, t0)
            elif route.intent == "chitchat":
                messages = [{"role": "system", "content": render("chitchat", lang)}]
                messages += [{"role": r, "content": t} for r, t in history]
                messages.append({"role": "user", "content": message})
                yield from self._generate(state, messages, cancel, timings, t0)
                state.final = state.streamed.strip()
            else:
                state.final = render(route.intent, lang)
                state.refused = route.intent == "out_of_scope"
                yield Token(state.final)
            state.completed = True
        finally:
            timings["total_ms"] = _ms(t0)
            reply = self._store(session_id, state, timings)
        yield Done(reply)

    def _answer(
        self,
        state: _TurnState,
        history: list[tuple[str, str]],
        filters: Filters | None,
        cancel: CancelToken | None,
        timings: dict[str, float],
        t0: float,
    ) -> Iterator[Event]:
        cfg = self.config
        assert state.route is not None  # set by turn() before it calls here
        hits = self.searcher.search(state.query, state.route.kbs, k=cfg.k, filters=filters)
        state.hits = tuple(hits)
        timings["retrieve_ms"] = _ms(t0)
        yield Retrieved(state.hits)
        decision = gate(state.query, hits, self.scorer, cfg.gate_threshold)
        timings["gate_strength"] = round(decision.strength, 4)
        if not decision.passed:
            state.refused = True
            state.final = _NOT_COVERED[state.lang]
            yield Token(state.final)
            return
        passages = [
            {"n": i + 1, "title": fence(h.title), "text": fence(h.text)} for i, h in enumerate(hits)
        ]
        system = render("answer", state.lang, state.route.domain, passages=passages)
        messages = [{"role": "system", "content": system}]
        messages += [{"role": r, "content": t} for r, t in history]
        messages.append({"role": "user", "content": state.query})
        yield from self._generate(state, messages, cancel, timings, t0)
        state.final, state.citations, state.refused = self._ground(state, hits, decision.best)

    def _generate(
        self,
        state: _TurnState,
        messages: list[dict[str, str]],
        cancel: CancelToken | None,
        timings: dict[str, float],
        t0: float,
    ) -> Iterator[Event]:
        stats: list[GenerationStats] = []
        for piece in self.lm.stream(
            messages,
            max_new_tokens=self.config.max_new_tokens,
            time_limit_s=self.config.time_limit_s,
            cancel=cancel,
            stats=stats,
        ):
            if not state.streamed:
                timings["ttft_ms"] = _ms(t0)
            state.streamed += piece
            yield Token(piece)
        if stats:
            timings["new_tokens"] = stats[0].new_tokens
            state.interrupted = stats[0].stopped == "cancelled"

    def _ground(
        self, state: _TurnState, hits: Sequence[Hit], best: int
    ) -> tuple[str, tuple[Citation, ...], bool]:
        """The answer to show: verified sentences only (strict), else an extractive quote."""
        text = state.streamed.strip()
        if any(marker in text for marker in REFUSAL.values()):
            return REFUSAL[state.lang], (), True
        checked: Verified = verify(text, hits, self.scorer)
        if not self.config.strict:
            return checked.text, checked.citations, False
        if checked.grounded:
            kept = tuple(c for c in checked.citations if c.verified)
            return checked.grounded, kept, False
        # Nothing the LM wrote is supported: quote the passage sentence that answers best.
        quote = verify(
            _best_sentence(self.scorer, state.query, hits[best]), [hits[best]], self.scorer
        )
        text = _QUOTE[state.lang].format(text=quote.grounded.rsplit(" [", 1)[0], n=best + 1)
        cites = tuple(
            Citation(**{**asdict(c), "n": best + 1}) for c in quote.citations if c.verified
        )
        return text, cites, False

    def _store(self, session_id: str, state: _TurnState, timings: dict[str, float]) -> Reply:
        route = state.route or Route("knowledge", "general")
        interrupted = state.interrupted or not state.completed
        answer = state.final if state.completed else state.streamed
        notes = domain_notices(route.domain, state.message, state.hits, state.lang)
        if state.refused and route.intent == "knowledge":
            notes = (Notice("refusal", _NOT_COVERED[state.lang]), *notes)
        record = TurnRecord(
            user_text=state.message,
            answer=answer,
            rewritten_query=state.query,
            intent=route.intent,
            domain=route.domain,
            route=asdict(route),
            citations=tuple(asdict(c) for c in state.citations),
            refused=state.refused,
            interrupted=interrupted,
            notices=tuple(n.text for n in notes),
            latencies=timings,
            model=getattr(self.lm, "name", ""),
            evidence=tuple(EvidenceRecord.from_hit(h) for h in state.hits),
        )
        turn_id = self.store.append_turn(session_id, record)
        return Reply(
            session_id=session_id,
            turn_id=turn_id,
            message=state.message,
            answer=answer,
            rewritten_query=state.query,
            route=route,
            refused=state.refused,
            interrupted=interrupted,
            citations=state.citations,
            sources=state.hits,
            notices=notes,
            timings=timings,
            model=record.model,
            lang=state.lang,
        )


@dataclass
class _TurnState:
    """What one turn has produced so far; stored as is when the turn stops early."""

    message: str
    query: str
    lang: str
    route: Route | None = None
    hits: tuple[Hit, ...] = ()
    streamed: str = ""
    final: str = ""
    citations: tuple[Citation, ...] = ()
    refused: bool = False
    interrupted: bool = False
    completed: bool = False


def _best_sentence(scorer: SupportScorer, query: str, hit: Hit) -> str:
    return scorer.support(query, hit.text)[1]


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)
