"""Knowledge-base search on Milvus: `store = "milvus:///path/kb.db"` (Milvus Lite, embedded) or
`store = "milvus://host:19530"` (a Milvus Lite server, Milvus Standalone or Distributed; with
`user:password@` for a token and `/name` for a database), same code for all.

What lives where, and why. Documents and passages (text, offsets, headings, metadata) and their
vectors stay in the relational store (citewise.db), the one place with transactions: a document
is replaced or deleted there whole or not at all. Milvus holds what a search needs, one collection
per knowledge base: the chunk id, its vector, the passage's words as retrieval/lexical.py segments
them and FTS5 stems them (jieba for Chinese; so BM25 ranks the same words as the embedded
backend's, whatever analyzers the server has) and the filter fields. Hits are read back from the
store by id. So the collection is an index derived from the store, as a FAISS file is
(retrieval/kbindex.py): written after each commit, and rebuilt from the stored vectors when it is
behind.

A `citewise_meta` collection records which (created_at, generation) each collection holds; it is
written last, so a process that died between the store's commit and Milvus leaves a mismatch, and
the next one to use that knowledge base rebuilds its collection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from retrieval import lexical
from retrieval.errors import KnowledgeBaseNotFoundError, ManifestMismatchError
from retrieval.milvus_client import (
    META,
    collection_name,
    connect,
    create_collection,
    ensure_meta,
    entity,
    filter_expr,
    parse_store,
)
from retrieval.store import KBInfo, KBState, Store
from retrieval.types import Filters, Hit

log = logging.getLogger(__name__)

INSERT_BATCH = 1000
# Rows still in Milvus Lite's memtable are searched row by row (10k: 250 ms a dense search, 8 ms
# once flushed into a segment): flush after a delete, at the end of an ingest, and every
# FLUSH_EVERY_S during a long one.
FLUSH_EVERY_S = 10.0


@dataclass(frozen=True)
class MilvusSlot:
    """A knowledge base's collection and the store generation it holds."""

    collection: str
    created_at: str
    generation: int
    dim: int

    def matches(self, state: KBState | KBInfo) -> bool:
        return (self.created_at, self.generation) == (state.created_at, state.generation)


class MilvusIndexes:
    """Every knowledge base's search index in Milvus (retrieval/protocols.Indexes)."""

    def __init__(self, store: Store, location: str, lock_dir: Path) -> None:
        self.store = store
        self.target = parse_store(location)
        self.where = self.target.shown
        lock_dir.mkdir(parents=True, exist_ok=True)
        self._writer = store.write_lock(lock_dir)
        self._loaded: dict[str, MilvusSlot] = {}
        self._flushed: dict[str, float] = {}
        self._client = connect(self.target)
        ensure_meta(self._client)

    def writing(self) -> AbstractContextManager[None]:
        return self._writer.held()

    def current(self, kb: str, state: KBState | KBInfo) -> MilvusSlot | None:
        slot = self._loaded.get(kb)
        if slot is not None and slot.matches(state):
            return slot
        with self.writing():
            return self.sync(kb)

    def sync(self, kb: str) -> MilvusSlot | None:
        """Attach to or rebuild the collection of `kb` if it is behind the store (lock held)."""
        info = self.store.kb(kb)
        if info is None:
            raise KnowledgeBaseNotFoundError(f"knowledge base {kb!r} was dropped meanwhile")
        slot = self._loaded.get(kb)
        if not info.embedder or (slot is not None and slot.matches(info)):
            return slot
        name = collection_name(kb)
        held = self._held(name)
        if held == (info.created_at, info.generation) and self._client.has_collection(name):
            self._client.load_collection(name)
            slot = MilvusSlot(name, info.created_at, info.generation, info.dim)
            self._loaded[kb] = slot
            return slot
        if held is None:
            log.info(
                "knowledge base %s: building its Milvus collection from the stored vectors", kb
            )
        else:
            log.warning(
                "knowledge base %s: Milvus holds generation %d, the store %d (a write was "
                "interrupted); rebuilding the collection from the stored vectors",
                kb, held[1], info.generation,
            )  # fmt: skip
        return self.rebuild(info)

    def rebuild(self, info: KBInfo) -> MilvusSlot:
        """A fresh collection from the vectors the store holds (write lock held)."""
        name = collection_name(info.name)
        if self._client.has_collection(name):
            self._client.drop_collection(name)
        create_collection(self._client, name, info.dim)
        from tqdm import tqdm

        # A bar only where it is worth watching (a migration, a large knowledge base).
        with tqdm(total=info.chunks, desc=f"indexing {info.name} in Milvus", unit="passage",
                  disable=info.chunks < 5000) as bar:  # fmt: skip
            for rows in self.store.index_rows(info.name, batch=INSERT_BATCH):
                self._client.insert(name, [entity(r) for r in rows])
                bar.update(len(rows))
        self._client.flush(name)
        self._set_held(name, info)
        self._client.load_collection(name)
        self._loaded[info.name] = MilvusSlot(name, info.created_at, info.generation, info.dim)
        return self._loaded[info.name]

    def apply(
        self,
        kb: str,
        slot: MilvusSlot | None,
        generation: int,
        removed: Sequence[int],
        added: Sequence[int] = (),
        vectors: np.ndarray | None = None,
        *,
        save: bool | None = None,
    ) -> None:
        """Bring the collection to the generation just committed (write lock held): deletes,
        inserts (read back from the store, which holds them now), then the generation."""
        if slot is None:
            return
        try:
            if removed:
                self._client.delete(slot.collection, ids=[int(i) for i in removed])
            for rows in self.store.index_rows(kb, list(added), batch=INSERT_BATCH):
                self._client.insert(slot.collection, [entity(r) for r in rows])
            info = self.store.kb(kb)
            if info is None:
                raise KnowledgeBaseNotFoundError(f"knowledge base {kb!r} was dropped meanwhile")
            if save is None:
                save = time.monotonic() - self._flushed.get(kb, 0.0) >= FLUSH_EVERY_S
            if save:
                self._flush(kb, slot.collection)
            self._set_held(slot.collection, info)
        except BaseException:
            # The store is ahead of the collection; the next use rebuilds it.
            self._loaded.pop(kb, None)
            raise
        self._loaded[kb] = replace(slot, generation=generation)

    def flush(self, kb: str) -> None:
        """Seal what an ingest wrote into segments (its end; apply writes through already)."""
        slot = self._loaded.get(kb)
        if slot is not None:
            self._flush(kb, slot.collection)

    def _flush(self, kb: str, collection: str) -> None:
        self._client.flush(collection)
        self._flushed[kb] = time.monotonic()

    def forget(self, kb: str, *, files: bool = False) -> None:
        self._loaded.pop(kb, None)
        if files:
            name = collection_name(kb)
            if self._client.has_collection(name):
                self._client.drop_collection(name)
            self._client.delete(META, ids=[name])

    def close(self) -> None:
        self._client.close()

    def dense(
        self, kb: str, slot: MilvusSlot, query: np.ndarray, k: int, filters: Filters
    ) -> list[Hit]:
        if len(query) != slot.dim:  # the slot's generation is the store's: so is its dim
            raise ManifestMismatchError(
                f"knowledge base {kb!r} stores {slot.dim}-dimensional vectors but its embedder "
                f"now makes {len(query)}-dimensional ones (the model changed); run "
                f"`citewise kb reindex {kb}` to embed its passages again"
            )
        found = self._client.search(
            slot.collection,
            data=[np.asarray(query, dtype=np.float32).tolist()],
            anns_field="vector",
            limit=k,
            search_params={"metric_type": "IP"},
            **_filtered(filters),
            output_fields=["id"],
        )
        return self._hits(kb, found, "dense")

    def lexical(self, kb: str, query: str, k: int, filters: Filters) -> list[Hit]:
        """BM25 over the query's content words, as the embedded backend's FTS5 query ORs them."""
        state = self.store.state(kb)
        if state is None:
            raise KnowledgeBaseNotFoundError(f"no knowledge base named {kb!r}")
        slot = self.current(kb, state)
        words = list(dict.fromkeys(lexical.stemmed(lexical.content_words(query))))
        if slot is None or not words:
            return []
        found = self._client.search(
            slot.collection,
            data=[" ".join(words)],
            anns_field="sparse",
            limit=k,
            search_params={"metric_type": "BM25"},
            **_filtered(filters),
            output_fields=["id"],
        )
        return self._hits(kb, found, "lexical")

    # --- internals -------------------------------------------------------------------------

    def _hits(self, kb: str, found: Any, side: str) -> list[Hit]:
        ranked = list(found[0]) if found else []
        ids = [int(h["id"]) for h in ranked]
        return self.store.hits(kb, ids, [float(h["distance"]) for h in ranked], side)

    def _held(self, name: str) -> tuple[str, int] | None:
        rows = self._client.get(META, ids=[name], output_fields=["created_at", "generation"])
        return (rows[0]["created_at"], int(rows[0]["generation"])) if rows else None

    def _set_held(self, name: str, info: KBInfo) -> None:
        row = {"name": name, "kb": info.name, "created_at": info.created_at}
        self._client.upsert(META, [{**row, "generation": info.generation, "unused": [0.0, 0.0]}])


def _filtered(filters: Filters) -> dict[str, str]:
    expr = filter_expr(filters)
    return {"filter": expr} if expr else {}  # an empty filter still costs Milvus Lite a pass
