"""Knowledge bases: ingest, update, delete and search documents in one data directory.

A relational store holds every row and vector: citewise.db in the data directory
(retrieval/store.py, with the FTS5 lexical index), or PostgreSQL (retrieval/store_pg.py); the
search index follows it: FAISS files (retrieval/kbindex.py, recovered after a crash) or Milvus
(retrieval/milvus_index.py). Ingesting
commits documents in batches, so an interrupted ingest keeps what it committed and a rerun skips it.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from retrieval import lexical
from retrieval.errors import DocumentNotFoundError, KnowledgeBaseNotFoundError, RetrievalError
from retrieval.ingest import (
    KB_LANGS,
    IngestReport,
    default_embedder,
    embed_texts,
    ingest,
    ingest_files,
)
from retrieval.kbindex import KBIndexes
from retrieval.loaders import DEFAULT_MAX_BYTES
from retrieval.postgres import is_database_url
from retrieval.protocols import Embedder, Indexes
from retrieval.store import DocInfo, KBInfo, KBState, Store, utc_now
from retrieval.types import DOMAINS, Document, Filters, Hit

__all__ = ["DocInfo", "IngestReport", "KBInfo", "Library", "default_embedder"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[^\W_][\w-]{0,127}")
DEFAULT_CHUNK_TOKENS = 256


class Library:
    """Every knowledge base in one data directory; one per process, safe to search from threads."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        embedder_loader: Callable[[str], Embedder] | None = None,
        batch_docs: int = 32,
        save_every_s: float = 10.0,
        store: str = "",
        database_url: str = "",
    ) -> None:
        """`batch_docs` documents commit together. During a long ingest the FAISS file is written
        at most every `save_every_s` seconds, and at the end: a crash in between costs a rebuild
        from the stored vectors, while writing the whole index after every batch costs O(n²).

        `store`: "" searches FAISS files + SQLite FTS5 in the data directory; a `milvus://` URL
        searches Milvus instead (retrieval/milvus_index.py). Both are built from what the
        relational store holds, so switching rebuilds the index and loses nothing.

        `database_url`: with a Milvus `store`, a PostgreSQL URL keeps the knowledge bases'
        documents, passages and vectors on that server (retrieval/store_pg.py), so citewise
        processes on several machines share them; otherwise they stay in the data directory's
        citewise.db (FAISS and FTS5 files are one machine's, so their rows are too)."""
        if batch_docs < 1 or save_every_s < 0:
            raise ValueError("batch_docs must be >= 1 and save_every_s >= 0")
        if store:
            from retrieval.milvus_index import parse_store

            parse_store(store)  # a wrong setting fails before anything is created
        self.data_dir = Path(data_dir)
        self.store: Store
        if store and is_database_url(database_url):
            from retrieval.store_pg import PgStore

            self.store = PgStore(database_url)
        else:
            self.store = Store(self.data_dir)
        self.batch_docs = batch_docs
        self._embedder_loader = embedder_loader
        self._embedders: dict[str, Embedder] = {}
        self._embedder_lock = threading.Lock()
        self.indexes: Indexes
        if store:
            from retrieval.milvus_index import MilvusIndexes

            self.indexes = MilvusIndexes(self.store, store, self.data_dir / "indexes")
        else:
            self.indexes = KBIndexes(
                self.store, self.data_dir / "indexes", self.embedder_for, save_every_s
            )

    def close(self) -> None:
        self.indexes.close()
        self.store.close()

    # --- knowledge bases -------------------------------------------------------------------

    def create(
        self,
        kb: str,
        domain: str = "general",
        lang: str | None = None,
        embedder: str | None = None,
        *,
        chunk_tokens: int | None = None,
        overlap_tokens: int = 0,
    ) -> KBInfo:
        """Add an empty knowledge base. Without `embedder` or `lang`, the first documents
        ingested decide both (see `default_embedder`)."""
        if not _NAME.fullmatch(kb):
            raise ValueError(
                f"knowledge base name {kb!r} is not allowed: use letters, digits, '_' and '-', "
                "starting with a letter or digit, at most 128 characters"
            )
        if domain not in DOMAINS:
            raise ValueError(f"unknown domain {domain!r}; use one of {', '.join(DOMAINS)}")
        if lang is not None and lang not in KB_LANGS:
            raise ValueError(f"unknown language {lang!r}; use one of {', '.join(KB_LANGS)}")
        spec = embedder or (default_embedder(lang) if lang else "")
        dim, max_tokens = 0, DEFAULT_CHUNK_TOKENS
        if spec:
            emb = self.embedder_for(spec)
            dim, max_tokens = emb.dim, emb.max_tokens
        tokens = chunk_tokens or min(DEFAULT_CHUNK_TOKENS, max_tokens)
        if not 0 < tokens <= max_tokens or not 0 <= overlap_tokens < tokens:
            raise ValueError(
                f"chunk_tokens must be in 1..{max_tokens} (the embedder's limit) and "
                f"overlap_tokens in 0..chunk_tokens-1; got {chunk_tokens} and {overlap_tokens}"
            )
        info = KBInfo(kb, domain, lang or "", spec, dim, tokens, overlap_tokens, 0, utc_now(), 0, 0)
        with self.indexes.writing():
            if self.store.kb(kb) is not None:
                raise ValueError(f"knowledge base {kb!r} exists already; pick another name")
            self.indexes.forget(kb, files=True)  # files left by a drop that died midway
            with self.store.write() as db:
                self.store.insert_kb(db, info)
        return self.info(kb)

    def list(self) -> builtins.list[KBInfo]:
        return self.store.kbs()

    def info(self, kb: str) -> KBInfo:
        info = self.store.kb(kb)
        if info is None:
            raise self._missing(kb)
        return info

    def documents(self, kb: str) -> builtins.list[DocInfo]:
        self.info(kb)
        return self.store.documents(kb)

    def document_text(self, kb: str, doc_id: str) -> Document:
        """A stored document with its text put back together from its chunks.

        Chunks cover every non-whitespace character, so only the whitespace between them is
        guessed (a newline for a gap of two or more, else a space); offsets stay those of the
        original, so `text[hit.start:hit.end] == hit.text` for every hit of this document.
        """
        self.info(kb)
        found = self.store.document(kb, doc_id)
        if found is None:
            raise DocumentNotFoundError(
                f"no document {doc_id!r} in knowledge base {kb!r}; list them with "
                f"`citewise kb show {kb}`"
            )
        doc, spans = found
        parts: builtins.list[str] = []
        end = 0
        for span in spans:
            if span.start > end:
                gap = span.start - end
                parts.append("\n" * gap if gap > 1 else " ")
            # Overlapping chunks repeat the end of the previous one; keep only what is new.
            parts.append(span.text[max(0, end - span.start) :])
            end = max(end, span.end)
        return Document(
            id=doc.doc_id,
            text="".join(parts),
            title=doc.title,
            domain=doc.domain,
            lang=doc.lang,
            group=doc.group,
            source=doc.source,
        )

    def open(self, kb: str) -> KBInfo:
        """Load (or repair) a knowledge base's indexes now rather than at its first search."""
        self._ensure_lexical(kb)
        self.indexes.current(kb, self._state(kb))
        return self.info(kb)

    def embedder(self, kb: str) -> Embedder:
        """The knowledge base's embedder, loaded once per spec and shared across knowledge bases."""
        spec = self.info(kb).embedder
        if not spec:
            raise RetrievalError(
                f"knowledge base {kb!r} has no embedder yet: it is chosen from the language of "
                "the first documents ingested"
            )
        return self.embedder_for(spec)

    def embedder_for(self, spec: str) -> Embedder:
        """The embedder for a spec, loaded on first use and then shared."""
        with self._embedder_lock:
            if spec not in self._embedders:
                if self._embedder_loader is None:
                    from retrieval.embedders import load_embedder

                    self._embedder_loader = load_embedder
                self._embedders[spec] = self._embedder_loader(spec)
            return self._embedders[spec]

    def delete_doc(self, kb: str, doc_id: str) -> bool:
        """Remove a document from SQLite, the lexical index and FAISS; False if it was not there."""
        self.info(kb)
        with self.indexes.writing():
            slot = self.indexes.sync(kb)
            with self.store.write() as db:
                ids = self.store.delete_document(db, kb, doc_id)
                if ids is None:
                    return False
                generation = self.store.bump_generation(db, kb)
            self.indexes.apply(kb, slot, generation, ids, save=True)
        return True

    def drop(self, kb: str) -> None:
        """Delete a knowledge base: its rows, its lexical table and its index files."""
        self.info(kb)
        with self.indexes.writing():
            with self.store.write() as db:
                self.store.delete_kb(db, kb)
            self.indexes.forget(kb, files=True)

    def reindex(self, kb: str, *, reembed: bool = False) -> KBInfo:
        """Rebuild the FAISS file and the lexical table from what SQLite stores.

        With `reembed` (implied when the embedder's dimension changed) every chunk is embedded
        again first, for when the model behind the knowledge base's embedder spec changed.
        """
        info = self.info(kb)
        if not info.embedder:
            return info
        emb = self.embedder_for(info.embedder)
        reembed = reembed or emb.dim != info.dim
        rows = self.store.chunk_texts(kb) if reembed else []
        vectors = embed_texts(emb, [text for _, text in rows])
        with self.indexes.writing():
            with self.store.write() as db:
                if reembed:
                    # Written only if the chunks did not change while they were being embedded.
                    if [r[0] for r in self.store.chunk_texts(kb)] != [r[0] for r in rows]:
                        raise RetrievalError(f"{kb} changed during reindex; run it again")
                    self.store.set_vectors(db, [r[0] for r in rows], vectors)
                    self.store.update_kb(db, kb, dim=emb.dim)
                self.store.refill_fts(db, kb)
                generation = self.store.bump_generation(db, kb)
            self.indexes.forget(kb)
            self.indexes.rebuild(self.info(kb))
        log.info("reindexed %s at generation %d", kb, generation)
        return self.info(kb)

    # --- ingest ----------------------------------------------------------------------------

    def ingest_documents(
        self, kb: str, docs: Iterable[Document], *, progress: bool = True
    ) -> IngestReport:
        """Add new documents, replace changed ones and skip unchanged ones (by content hash).

        Documents commit in batches of `batch_docs`; an interrupted ingest keeps the batches
        committed so far, and running it again carries on where it stopped. A knowledge base
        that does not exist is created, its domain and language (so its embedder) decided by the
        first documents (see `retrieval.ingest.majority_lang`).
        """
        return ingest(self, kb, docs, progress=progress)

    def rechunk(self, kb: str, *, progress: bool = True) -> IngestReport:
        """Cut every stored document of `kb` into passages again (retrieval/sections.py) and
        re-embed them: how a knowledge base built under an older passage version gets passages a
        citation can point at. Each batch of documents commits as in any ingest, so an
        interrupted rechunk leaves every document wholly old or wholly new; run it again to
        finish."""
        docs = [self.document_text(kb, d.doc_id) for d in self.documents(kb)]
        return ingest(self, kb, docs, progress=progress)

    def ingest_paths(
        self,
        kb: str,
        paths: Sequence[str | os.PathLike[str]],
        *,
        domain: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        prune: bool = False,
        progress: bool = True,
    ) -> IngestReport:
        """Ingest files and folders (see `load_paths`); unreadable ones are reported in `skipped`.

        With `prune`, documents that came from under `paths` but whose files are gone are removed.
        """
        return ingest_files(
            self, kb, paths, domain=domain, max_bytes=max_bytes, prune=prune, progress=progress
        )

    # --- search primitives (fusion is retrieval/search.py) ---------------------------------

    def dense_search(
        self, kb: str, query: str, k: int, filters: Filters | None = None
    ) -> builtins.list[Hit]:
        """Top `k` chunks by cosine similarity; filters are applied inside the index."""
        state = self._state(kb)  # one row read per search: the kb's counts are not needed
        slot = self.indexes.current(kb, state)
        if slot is None or k < 1 or not query.strip():
            return []
        q = self.embedder_for(state.embedder).embed_query(query)
        return self.indexes.dense(kb, slot, q, k, filters or Filters())

    def lexical_search(
        self, kb: str, query: str, k: int, filters: Filters | None = None
    ) -> builtins.list[Hit]:
        """Top `k` chunks by BM25 (SQLite FTS5, or Milvus) over words segmented by
        retrieval/lexical.py."""
        self._ensure_lexical(kb)
        if k < 1:
            return []
        return self.indexes.lexical(kb, query, k, filters or Filters())

    # --- internals -------------------------------------------------------------------------

    def _state(self, kb: str) -> KBState:
        """One cheap lookup per search, so that changes made by other processes are seen."""
        state = self.store.state(kb)
        if state is None:
            raise self._missing(kb)
        return state

    def _missing(self, kb: str) -> KnowledgeBaseNotFoundError:
        names = ", ".join(i.name for i in self.store.kbs()) or "none yet"
        return KnowledgeBaseNotFoundError(
            f"no knowledge base named {kb!r} (existing: {names}); create it with "
            f"`citewise ingest --kb {kb} PATH...`"
        )

    def _ensure_lexical(self, kb: str) -> None:
        """Re-segment the lexical index of `kb` if it was built by another lexical.VERSION."""
        if self._state(kb).lexical == lexical.VERSION:
            return
        with self.indexes.writing(), self.store.write() as db:
            if self._state(kb).lexical != lexical.VERSION:
                log.warning("knowledge base %s: re-segmenting text for the lexical index", kb)
                self.store.refill_fts(db, kb)
