"""Keep each knowledge base's FAISS file in step with SQLite, and recover it after a crash.

Write order, which makes a crash at any instant recoverable: (1) one SQLite transaction changes the
rows, the lexical index and bumps the knowledge base's generation; (2) the FAISS file is replaced
atomically; (3) the manifest, which records the generation the FAISS file holds, is replaced
atomically. A process that dies after (1) leaves a manifest whose generation differs from the
database's, and the next load rebuilds FAISS from the vectors stored with the chunks. A checksum
mismatch at an equal generation cannot come from a crash, so it is reported as corruption.
(Generation here always goes with the knowledge base's created_at, so one dropped and created
again under the same name never passes for the old one.)

Writers take turns (retrieval/write_lock.py), from before the transaction until the manifest is
written. Searches take no write lock. retrieval/milvus_index.py is the same contract on Milvus.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from retrieval import lexical
from retrieval.atomic import atomic_write_text
from retrieval.errors import KnowledgeBaseNotFoundError, ManifestMismatchError
from retrieval.protocols import Embedder
from retrieval.store import KBInfo, KBState, Store
from retrieval.types import Filters, Hit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """A knowledge base's FAISS index in memory and the database generation it reflects."""

    index: Any  # retrieval.dense.DenseIndex, imported lazily because it pulls in faiss
    created_at: str  # of the knowledge base: one dropped and created again is another
    generation: int
    saved: bool  # whether the files on disk hold this generation

    def matches(self, state: KBState | KBInfo) -> bool:
        return (self.created_at, self.generation) == (state.created_at, state.generation)


class KBIndexes:
    """The in-memory FAISS index of every knowledge base that has been used, and its files."""

    def __init__(
        self,
        store: Store,
        index_dir: Path,
        embedder: Callable[[str], Embedder],
        save_every_s: float,
    ) -> None:
        self.store = store
        self.index_dir = index_dir
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.save_every_s = save_every_s
        self._embedder = embedder
        self._loaded: dict[str, Loaded] = {}
        self._last_save: dict[str, float] = {}
        self._search_lock = threading.Lock()  # indexes change in place; FAISS is not thread-safe
        self._writer = store.write_lock(self.index_dir)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive right to change any knowledge base in this data directory (re-entrant)."""
        return self._writer.held()

    def current(self, kb: str, state: KBState | KBInfo) -> Loaded | None:
        """The index of `kb` as the database `state` says; None while the kb has no embedder."""
        slot = self._loaded.get(kb)
        if slot is not None and slot.matches(state):
            return slot
        with self.writing():
            return self.sync(kb)

    def dense(
        self, kb: str, slot: Loaded, query: np.ndarray, k: int, filters: Filters
    ) -> list[Hit]:
        """Top `k` chunks of `kb` by cosine similarity; filters are applied inside FAISS."""
        allowed = self.store.allowed_ids(kb, filters)
        with self._search_lock:
            ids, scores = slot.index.search(query, k, allowed)
        return self.store.hits(kb, ids.tolist(), scores.tolist(), "dense")

    def lexical(self, kb: str, query: str, k: int, filters: Filters) -> list[Hit]:
        """Top `k` chunks by BM25 (SQLite FTS5) over words segmented by retrieval/lexical.py."""
        match = lexical.match_query(query)
        if match is None:
            return []
        return self.store.lexical(kb, match, k, filters)

    def sync(self, kb: str) -> Loaded | None:
        """Load or rebuild the index of `kb` if memory is behind the database (write lock held)."""
        info = self.store.kb(kb)
        if info is None:
            raise KnowledgeBaseNotFoundError(f"knowledge base {kb!r} was dropped meanwhile")
        slot = self._loaded.get(kb)
        if not info.embedder or (slot is not None and slot.matches(info)):
            return slot
        emb = self._embedder(info.embedder)
        if emb.dim != info.dim:
            raise ManifestMismatchError(
                f"knowledge base {kb!r} stores {info.dim}-dimensional vectors but its embedder "
                f"{info.embedder} now makes {emb.dim}-dimensional ones (the model changed); run "
                f"`citewise kb reindex {kb}` to embed its passages again"
            )
        manifest = self._read_manifest(kb)
        held = (manifest or {}).get("created_at"), (manifest or {}).get("generation")
        if manifest is None or held != (info.created_at, info.generation):
            if manifest is not None or info.chunks:
                log.warning(
                    "knowledge base %s: index files at generation %s, database at %d (a write "
                    "was interrupted); rebuilding the index from the stored vectors",
                    kb, held[1], info.generation,
                )  # fmt: skip
            return self.rebuild(info)
        slot = Loaded(self._load(info, manifest), info.created_at, info.generation, saved=True)
        self._loaded[kb] = slot
        return slot

    def apply(
        self,
        kb: str,
        slot: Loaded | None,
        generation: int,
        removed: Sequence[int],
        added: Sequence[int] = (),
        vectors: np.ndarray | None = None,
        *,
        save: bool | None = None,
    ) -> None:
        """Bring the in-memory index to the generation just committed (write lock held).

        `save`: True writes the files now, None when `save_every_s` has passed since the last write.
        """
        if slot is None:
            return
        try:
            with self._search_lock:
                slot.index.remove(np.asarray(removed, dtype=np.int64))
                if vectors is not None:
                    slot.index.add(np.asarray(added, dtype=np.int64), vectors)
        except BaseException:
            # The database is ahead of this index now; the next use rebuilds it from SQLite.
            self._loaded.pop(kb, None)
            raise
        self._loaded[kb] = replace(slot, generation=generation, saved=False)
        if save is None:
            save = time.monotonic() - self._last_save.get(kb, -1e9) >= self.save_every_s
        if save:
            self.save(kb)

    def flush(self, kb: str) -> None:
        """Write the files of `kb` if memory is ahead of them (at the end of an ingest)."""
        slot = self._loaded.get(kb)
        if slot is not None and not slot.saved:
            with self.writing():
                if self.sync(kb) is slot:
                    self.save(kb)

    def rebuild(self, info: KBInfo) -> Loaded:
        """A fresh index from the vectors SQLite stores, written to disk (write lock held)."""
        from retrieval.dense import DenseIndex

        index = DenseIndex(info.dim)
        ids, vectors = self.store.vectors(info.name, info.dim)
        index.add(ids, vectors)
        self._loaded[info.name] = Loaded(index, info.created_at, info.generation, saved=False)
        self.save(info.name)
        return self._loaded[info.name]

    def save(self, kb: str) -> None:
        """Write the FAISS file, then the manifest naming its generation (write lock held)."""
        slot = self._loaded[kb]
        info = self.store.kb(kb)
        if info is None:
            raise KnowledgeBaseNotFoundError(f"knowledge base {kb!r} was dropped meanwhile")
        sha = slot.index.save(self.faiss_path(kb))
        manifest = {
            "kb": kb,
            "embedder": info.embedder,
            "dim": info.dim,
            "chunk_count": len(slot.index),
            "created_at": slot.created_at,
            "generation": slot.generation,
            "faiss_sha256": sha,
        }
        atomic_write_text(self.manifest_path(kb), json.dumps(manifest, indent=2) + "\n")
        self._loaded[kb] = replace(slot, saved=True)
        self._last_save[kb] = time.monotonic()

    def forget(self, kb: str, *, files: bool = False) -> None:
        """Drop the in-memory index of `kb`, and with `files` its files (write lock held)."""
        self._loaded.pop(kb, None)
        if files:
            for path in (self.faiss_path(kb), self.manifest_path(kb)):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release: the indexes are memory and files, not connections."""

    def faiss_path(self, kb: str) -> Path:
        return self.index_dir / f"{kb}.faiss"

    def manifest_path(self, kb: str) -> Path:
        return self.index_dir / f"{kb}.manifest.json"

    def _load(self, info: KBInfo, manifest: dict[str, Any]) -> Any:
        from retrieval.dense import DenseIndex

        kb, fix = info.name, f"run `citewise kb reindex {info.name}`"
        if (manifest.get("embedder"), manifest.get("dim")) != (info.embedder, info.dim):
            raise ManifestMismatchError(
                f"the index of knowledge base {kb!r} was built with {manifest.get('embedder')} "
                f"({manifest.get('dim')}-d) but the knowledge base uses {info.embedder} "
                f"({info.dim}-d); {fix} to rebuild it from the stored vectors"
            )
        try:
            index = DenseIndex.load(
                self.faiss_path(kb),
                expected_sha256=manifest.get("faiss_sha256"),
                expected_dim=info.dim,
            )
        except (ManifestMismatchError, OSError) as e:
            raise ManifestMismatchError(
                f"index file for knowledge base {kb!r} is corrupt or missing ({e}); {fix}"
            ) from e
        if len(index) != info.chunks:
            raise ManifestMismatchError(
                f"index file for knowledge base {kb!r} holds {len(index)} vectors but the "
                f"database {info.chunks} chunks; {fix}"
            )
        return index

    def _read_manifest(self, kb: str) -> dict[str, Any] | None:
        path = self.manifest_path(kb)
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ManifestMismatchError(
                f"manifest {path} is unreadable ({e}); run `citewise kb reindex {kb}`"
            ) from e
        if not isinstance(manifest, dict):
            raise ManifestMismatchError(
                f"manifest {path} is not a JSON object; run `citewise kb reindex {kb}`"
            )
        return manifest
