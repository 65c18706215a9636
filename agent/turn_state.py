"""The state of one turn while it runs, and how it is stored and returned when it ends."""

from __future__ import annotations

import time
from dataclasses import dataclass

from agent.policy import notices as domain_notices
from agent.state import DialogueStore, EvidenceRecord, TurnRecord
from agent.types import Citation, Notice, Reply, Route, Token
from retrieval.types import Hit

NOT_COVERED = {
    "en": "The knowledge base does not cover this. The closest sources are listed below.",
    "zh": "知识库中没有涉及这个问题的内容。下面列出了最接近的资料。",
}


@dataclass
class TurnState:
    """What one turn has produced so far; stored as is when the turn stops early."""

    message: str
    query: str
    lang: str
    route: Route | None = None
    hits: tuple[Hit, ...] = ()
    streamed: str = ""  # every Token's text so far: what the user has seen
    final: str = ""
    citations: tuple[Citation, ...] = ()
    refused: bool = False
    interrupted: bool = False
    truncated: bool = False  # the model hit its token or time budget mid-answer
    completed: bool = False
    kbs_given: bool = False  # the caller chose the knowledge bases, not the router


def record_turn(
    store: DialogueStore, model: str, session_id: str, state: TurnState, timings: dict[str, float]
) -> Reply:
    """Store the turn as it stands (interrupted unless it completed) and build its Reply."""
    route = state.route or Route("knowledge", "general")
    interrupted = state.interrupted or not state.completed
    answer = state.streamed.strip() if interrupted else state.final
    citations = () if interrupted else state.citations
    notes = domain_notices(route.domain, state.message, state.hits, state.lang)
    if state.refused and route.intent == "knowledge":
        notes = (Notice("refusal", NOT_COVERED[state.lang]), *notes)
    record = TurnRecord(
        user_text=state.message,
        answer=answer,
        rewritten_query=state.query,
        intent=route.intent,
        domain=route.domain,
        route=route,
        citations=citations,
        refused=state.refused,
        interrupted=interrupted,
        notices=notes,
        latencies=timings,
        model=model,
        evidence=tuple(EvidenceRecord.from_hit(h) for h in state.hits),
    )
    turn_id = store.append_turn(session_id, record)
    return Reply(
        session_id=session_id,
        turn_id=turn_id,
        message=state.message,
        answer=answer,
        rewritten_query=state.query,
        route=route,
        refused=state.refused,
        interrupted=interrupted,
        citations=citations,
        sources=state.hits,
        notices=notes,
        timings=timings,
        model=record.model,
        lang=state.lang,
    )


def shown(state: TurnState, text: str) -> Token:
    """Show `text` to the user: it is part of what an interrupted turn stores."""
    state.streamed += text
    return Token(text)


def elapsed_ms(t0: float) -> float:
    """Milliseconds since `t0` (a `time.perf_counter()` reading), as a turn's timings hold them."""
    return round((time.perf_counter() - t0) * 1000, 1)
