"""What the dialogue store keeps (sessions, turns, evidence, feedback) and how a turn becomes
table rows and back: shared by the SQLite and PostgreSQL stores (agent/state.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from agent.limits import check_text
from agent.types import Citation, Notice, Route
from retrieval.types import Hit


@dataclass(frozen=True)
class EvidenceRecord:
    """A passage the model was shown for a turn; its place in `TurnRecord.evidence` is its rank."""

    kb: str
    doc_id: str
    chunk_id: int
    score: float
    text: str
    title: str = ""

    @classmethod
    def from_hit(cls, hit: Hit) -> EvidenceRecord:
        return cls(hit.kb, hit.doc_id, int(hit.chunk_id), float(hit.score), hit.text, hit.title)


@dataclass(frozen=True)
class TurnRecord:
    """Everything a completed or interrupted turn stores.

    `id`, `session_id`, `idx` (0-based turn number within the session) and `created_at` are set
    by the store when it reads a turn back; `append_turn` ignores them.
    """

    user_text: str
    answer: str = ""  # partial when interrupted
    rewritten_query: str = ""
    intent: str = ""
    domain: str = ""
    route: Route | None = None  # None for turns seeded from history (no routing ran)
    citations: tuple[Citation, ...] = ()
    refused: bool = False
    interrupted: bool = False
    notices: tuple[Notice, ...] = ()
    latencies: Mapping[str, float] = field(default_factory=dict)  # e.g. {"ttft_ms": 412.0}
    model: str = ""
    evidence: tuple[EvidenceRecord, ...] = ()
    id: int | None = None
    session_id: str = ""
    idx: int = -1
    created_at: str = ""


@dataclass(frozen=True)
class SessionInfo:
    """A session as listed in the UI; `turns` is how many turns it holds."""

    id: str
    title: str
    created_at: str
    updated_at: str  # when the last turn was appended (or the session created)
    turns: int
    owner: str = ""  # the user it belongs to; "" when no accounts are used


@dataclass(frozen=True)
class FeedbackRecord:
    """A rating of one turn: +1 or -1, with an optional comment."""

    id: int
    turn_id: int
    rating: int
    comment: str
    created_at: str


def storable(value: object) -> bool:
    """A string both stores can bind: UTF-8 encodable, no NUL (agent/limits.check_text)."""
    if not isinstance(value, str):
        return False
    try:
        check_text(value, "")
    except ValueError:
        return False
    return True


def _json(value: Any, name: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"turn.{name} must hold only JSON values (str, numbers, bools, None, lists, dicts): {e}"
        ) from e


def turn_row(turn: TurnRecord) -> dict[str, Any]:
    """The turns-table columns for `turn`, validated before any transaction starts."""
    if not isinstance(turn, TurnRecord):
        raise TypeError(f"append_turn takes a TurnRecord, got {type(turn).__name__}")
    if not isinstance(turn.user_text, str):
        raise ValueError(f"turn.user_text must be a string, got {type(turn.user_text).__name__}")
    for name in ("user_text", "answer", "rewritten_query", "intent", "domain", "model"):
        value = getattr(turn, name)
        if isinstance(value, str):
            check_text(value, f"turn.{name}")
    return {
        "user_text": turn.user_text,
        "rewritten_query": turn.rewritten_query,
        "intent": turn.intent,
        "domain": turn.domain,
        "route_json": _json(_typed(turn.route, Route, "route") or {}, "route"),
        "answer": turn.answer,
        "citations_json": _json(
            [_typed(c, Citation, "citations") for c in turn.citations], "citations"
        ),
        "refused": int(bool(turn.refused)),
        "interrupted": int(bool(turn.interrupted)),
        "notices_json": _json([_notice(n) for n in turn.notices], "notices"),
        # float() also turns numpy scalars from timers into plain JSON numbers.
        "latencies_json": _json({str(k): float(v) for k, v in turn.latencies.items()}, "latencies"),
        "model": turn.model,
    }


def _typed(value: Any, kind: type, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, kind):
        raise TypeError(f"turn.{name} must hold {kind.__name__} items, got {type(value).__name__}")
    return asdict(cast(Any, value))


def route_of(data: Mapping[str, Any]) -> Route | None:
    """The stored route, or None for a turn stored without one (or in an older shape)."""
    if not data or not {"intent", "domain"} <= set(data):
        return None
    given = {k: v for k, v in data.items() if k in Route.__dataclass_fields__}
    return Route(**{**given, "kbs": tuple(data.get("kbs", ()))})


def citation_of(data: Mapping[str, Any]) -> Citation:
    return Citation(**{k: v for k, v in data.items() if k in Citation.__dataclass_fields__})


def _notice(notice: Notice) -> dict[str, str]:
    if not isinstance(notice, Notice):
        raise TypeError(f"turn.notices must hold Notice items, got {type(notice).__name__}")
    return {"kind": notice.kind, "text": notice.text}


def evidence_row(rank: int, ev: EvidenceRecord) -> dict[str, Any]:
    if not isinstance(ev, EvidenceRecord):
        raise TypeError(f"turn.evidence must hold EvidenceRecord items, got {type(ev).__name__}")
    # int()/float() because hits carry numpy scalars, which neither database driver binds.
    return {**asdict(ev), "rank": rank, "chunk_id": int(ev.chunk_id), "score": float(ev.score)}


def turn_of(row: dict[str, Any], evidence: tuple[EvidenceRecord, ...]) -> TurnRecord:
    """The TurnRecord of a turns-table row (as a dict) and its evidence."""
    r = dict(row)
    del r["evidence_count"]  # for crash checks; len(evidence) says the same
    r.update(
        route=route_of(json.loads(r.pop("route_json"))),
        citations=tuple(citation_of(c) for c in json.loads(r.pop("citations_json"))),
        notices=tuple(Notice(**n) for n in json.loads(r.pop("notices_json"))),
        latencies=json.loads(r.pop("latencies_json")),
        refused=bool(r["refused"]),
        interrupted=bool(r["interrupted"]),
        evidence=evidence,
    )
    return TurnRecord(**r)
