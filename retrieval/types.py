"""Frozen data types that cross module boundaries in retrieval and above."""

from __future__ import annotations

from dataclasses import dataclass, field

DOMAINS = ("legal", "medical", "education", "general")
LANGS = ("en", "zh")


@dataclass(frozen=True)
class Document:
    """One source document as loaded, before chunking."""

    id: str
    text: str
    title: str = ""
    domain: str = "general"
    lang: str = ""  # "en" | "zh"; empty means detect from the text
    group: str = ""
    source: str = ""  # file path, or dataset name for corpus .jsonl lines


@dataclass(frozen=True)
class Span:
    """A piece of a document's text: characters [start, end)."""

    text: str
    start: int
    end: int
    heading: str = ""  # the heading path above it ("Leaflet › Dosage"), shown and embedded with it


@dataclass(frozen=True)
class Filters:
    """Metadata constraints applied inside the search, not after it."""

    domain: str | None = None
    lang: str | None = None
    group: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with the metadata a citation needs."""

    chunk_id: int
    doc_id: str
    kb: str
    score: float
    text: str
    title: str = ""
    domain: str = "general"
    lang: str = ""
    group: str = ""
    source: str = ""
    start: int = 0
    end: int = 0
    heading: str = ""  # the passage's heading path in its document
    ranks: dict[str, int] = field(default_factory=dict, compare=False)  # e.g. {"dense": 0}
