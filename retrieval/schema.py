"""The knowledge-base schema: ordered migrations applied once each (retrieval/sqlite.py), and
the frozen row types the store returns.

A migration is registered with `@migration` and never edited once released: a schema change is a
new function at the end. Each knowledge base also gets its own FTS5 table (`create_fts`), so its
BM25 statistics (document frequencies, average length) do not shift when another knowledge base
is added, and a query never scans other knowledge bases' postings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from retrieval import lexical
from retrieval.sqlite import Migrations

if TYPE_CHECKING:
    from sqlite_utils import Database

MIGRATIONS = Migrations()
migration = MIGRATIONS.register


@migration
def m001_knowledge_bases(db: Database) -> None:
    db.execute(
        """CREATE TABLE kbs (
            name TEXT PRIMARY KEY,
            domain TEXT NOT NULL,
            lang TEXT NOT NULL DEFAULT '',      -- en | zh | multi; '' until the first ingest
            embedder TEXT NOT NULL DEFAULT '',  -- model spec; '' until the first ingest
            dim INTEGER NOT NULL DEFAULT 0,
            chunk_tokens INTEGER NOT NULL,
            overlap_tokens INTEGER NOT NULL DEFAULT 0,
            lexical TEXT NOT NULL,              -- lexical.VERSION the FTS table was filled with
            generation INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE documents (
            kb TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            domain TEXT NOT NULL,
            lang TEXT NOT NULL,
            grp TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,
            n_chunks INTEGER NOT NULL,
            added_at TEXT NOT NULL,
            PRIMARY KEY (kb, doc_id)
        )"""
    )
    # AUTOINCREMENT: a chunk id is also its FAISS id, and an id handed out twice could make a
    # stale index entry point at someone else's text.
    db.execute(
        """CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kb TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            ord INTEGER NOT NULL,
            text TEXT NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            vector BLOB NOT NULL
        )"""
    )
    db.execute("CREATE UNIQUE INDEX idx_chunks_doc ON chunks (kb, doc_id, ord)")


@migration
def m002_chunk_headings(db: Database) -> None:
    # The heading path above a passage (retrieval/sections.py); older passages have none.
    db.execute("ALTER TABLE chunks ADD COLUMN heading TEXT NOT NULL DEFAULT ''")


def fts_table(kb: str) -> str:
    """The quoted name of a knowledge base's FTS5 table (kb names are checked to be word chars)."""
    return f'"chunks_fts_{kb}"'


def create_fts(db: Database, kb: str) -> None:
    """Create the lexical table of `kb`: rowid = chunk id, `tokens` = its words (lexical.py)."""
    db.execute(
        f"CREATE VIRTUAL TABLE {fts_table(kb)} USING fts5(tokens, "
        f"tokenize='{lexical.FTS_TOKENIZER}')"
    )


@dataclass(frozen=True)
class KBInfo:
    """A knowledge base: its settings and how much it holds."""

    name: str
    domain: str
    lang: str
    embedder: str
    dim: int
    chunk_tokens: int
    overlap_tokens: int
    generation: int
    created_at: str
    documents: int
    chunks: int
    lexical: str = lexical.VERSION


@dataclass(frozen=True)
class KBState:
    """Identity and version of a knowledge base's contents."""

    created_at: str  # tells apart a knowledge base dropped and created again under its name
    generation: int  # bumped by every committed change
    lexical: str  # lexical.VERSION of its FTS table
    embedder: str = ""  # what a search embeds the query with, read in the same row


@dataclass(frozen=True)
class DocInfo:
    """One stored document, as `citewise kb show` lists it."""

    doc_id: str
    title: str
    domain: str
    lang: str
    group: str
    source: str
    content_hash: str
    n_chunks: int
    added_at: str
