"""Frozen data types of one conversation turn: what the agent API returns and streams."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from retrieval.types import Hit

INTENTS = ("chitchat", "knowledge", "clarify", "out_of_scope")


@dataclass(frozen=True)
class Route:
    intent: str
    domain: str
    intent_confidence: float = 1.0
    domain_confidence: float = 1.0
    method: str = "rule"  # "trained" | "prototype" | "rule"
    kbs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Citation:
    """One [n] in the answer, checked against the passage it points to."""

    n: int
    doc_id: str
    kb: str
    chunk_id: int
    title: str
    snippet: str
    sentence: str  # the answer sentence that cites it
    support: float  # 0..1, see agent/citations.py
    supporting_text: str  # the passage sentence that supports it best (for highlighting)
    verified: bool


@dataclass(frozen=True)
class Notice:
    kind: str  # "medical" | "emergency" | "legal" | "refusal" | "note"
    text: str


@dataclass(frozen=True)
class Reply:
    session_id: str
    turn_id: int
    message: str
    answer: str
    rewritten_query: str
    route: Route
    refused: bool
    interrupted: bool
    citations: tuple[Citation, ...]
    sources: tuple[Hit, ...]  # the evidence retrieved for this turn, in rank order
    notices: tuple[Notice, ...]
    # "*_ms": milliseconds from the start of the turn to the end of each step ("lm_ttft_ms" is
    # the model's own prefill); also "gate_strength" and "new_tokens".
    timings: dict[str, float] = field(default_factory=dict)
    model: str = ""
    lang: str = "en"

    def to_json(self) -> dict[str, Any]:
        """The reply as plain JSON-able data (sources trimmed to what a citation needs)."""
        data = asdict(self)
        data["sources"] = [
            {k: h[k] for k in ("kb", "doc_id", "chunk_id", "title", "score", "text")}
            for h in data["sources"]
        ]
        return data


@dataclass(frozen=True)
class Rewritten:
    query: str
    used_lm: bool


@dataclass(frozen=True)
class Routed:
    route: Route


@dataclass(frozen=True)
class Retrieved:
    hits: tuple[Hit, ...]


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Done:
    reply: Reply


Event = Rewritten | Routed | Retrieved | Token | Done
