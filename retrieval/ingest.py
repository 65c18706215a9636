"""Ingesting: which documents changed, the knowledge base's language and embedder, each changed
document's chunks and vectors, and one transaction per batch of documents."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from retrieval import sections
from retrieval.lang import detect_lang
from retrieval.loaders import Skipped, load_paths
from retrieval.protocols import Embedder, Indexes
from retrieval.sections import passage_text
from retrieval.store import DocInfo, KBInfo, Store, utc_now
from retrieval.types import Document, Span

KB_LANGS = ("en", "zh", "multi")
# English gets the small fast MiniLM; Chinese needs a multilingual model: on STARD (legal zh)
# MiniLM reaches dense recall@5 0.12 where multilingual-e5-small reaches 0.73.
DEFAULT_EMBEDDERS: dict[str, str] = {
    "en": "bundled:minilm",
    "zh": "bundled:e5",
    "multi": "bundled:e5",
}
# A new knowledge base is one language when at least this share of its first documents (up to
# LANG_SAMPLE of them) is; else "multi". MiniLM all but fails on Chinese while E5 does well on
# English too, so a tenth of Chinese documents is reason enough to choose E5.
SINGLE_LANG_SHARE = 0.9
LANG_SAMPLE = 256
EMBED_BATCH = 32  # chunks per embedder call: the progress bar moves this often


class Library(Protocol):
    """What ingesting needs of a library (retrieval/kb.py `Library` is the one there is): its
    store and indexes, embedders by spec, and the knowledge-base operations ingest calls. A
    narrow seam, so this module does not import kb.py, which imports it."""

    store: Store
    indexes: Indexes
    batch_docs: int

    def embedder_for(self, spec: str) -> Embedder: ...

    def create(self, kb: str, domain: str = "general") -> KBInfo: ...

    def info(self, kb: str) -> KBInfo: ...

    def delete_doc(self, kb: str, doc_id: str) -> bool: ...


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did, counted in documents (and chunks added)."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_added: int = 0
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class Chunked:
    """A new or changed document, chunked, waiting for its vectors."""

    doc: Document  # as given
    lang: str  # the document's language, detected when the document names none
    content_hash: str
    spans: list[Span]


def default_embedder(lang: str) -> str:
    """The embedder spec a new knowledge base in `lang` ("en", "zh" or "multi") gets.

    >>> default_embedder("zh")
    'bundled:e5'
    """
    if lang not in DEFAULT_EMBEDDERS:
        raise ValueError(f"unknown knowledge base language {lang!r}; use one of {KB_LANGS}")
    return DEFAULT_EMBEDDERS[lang]


def doc_lang(doc: Document) -> str:
    return doc.lang or detect_lang(doc.text)


def majority_lang(docs: Sequence[Document]) -> str:
    """ "en" or "zh" when at least SINGLE_LANG_SHARE of `docs` are in it, else "multi"."""
    counts = Counter(doc_lang(d) for d in docs)
    if not counts:
        return "en"
    lang, n = counts.most_common(1)[0]
    return lang if n >= SINGLE_LANG_SHARE * len(docs) else "multi"


def majority_domain(docs: Sequence[Document]) -> str:
    counts = Counter(d.domain for d in docs)
    return counts.most_common(1)[0][0] if counts else "general"


def content_hash(doc: Document) -> str:
    """sha256 of everything stored about a document: a change to any of it means re-ingesting."""
    # The passage version too: a document cut under another version is re-cut when ingested.
    fields = [doc.text, doc.title, doc.domain, doc.lang, doc.group, doc.source, sections.VERSION]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def embed_texts(embedder: Embedder, texts: Sequence[str], progress: Any = None) -> np.ndarray:
    """Passage vectors for `texts`, EMBED_BATCH at a time, advancing an open tqdm bar if given.

    Texts go to the embedder longest first, so each call holds texts of about one length and
    pads little; the rows come back in the order given.
    """
    out = np.empty((len(texts), embedder.dim), np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for i in range(0, len(texts), EMBED_BATCH):
        rows = order[i : i + EMBED_BATCH]
        out[rows] = embedder.embed_documents([texts[j] for j in rows])
        if progress is not None:
            progress.update(len(rows))
    return out


def chunk_docs(
    docs: Sequence[Document], embedder: Embedder, *, chunk_tokens: int, overlap_tokens: int
) -> tuple[list[Chunked], list[Skipped]]:
    """Chunk `docs` for `embedder`; a document with no text to index comes back as Skipped."""
    chunked: list[Chunked] = []
    skipped: list[Skipped] = []
    for doc in docs:
        lang = doc_lang(doc)
        spans = sections.passages(
            doc.text,
            count_tokens=embedder.count_tokens,
            max_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
        )
        if spans:
            chunked.append(Chunked(doc, lang, content_hash(doc), spans))
        else:
            skipped.append(Skipped(doc.source or doc.id, f"document {doc.id!r} has no text"))
    return chunked, skipped


def ingest(lib: Library, kb: str, docs: Iterable[Document], *, progress: bool) -> IngestReport:
    """`Library.ingest_documents`: new documents added, changed ones replaced, unchanged skipped.

    A pipeline of three stages over batches of `lib.batch_docs` documents: while one thread embeds
    batch n, this one commits batch n-1 and chunks batch n+1 (embedding releases the GIL, so the
    SQLite writes, BM25 segmentation and chunking cost little extra time). Batches still commit
    one at a time and in order, so a crash keeps exactly the batches committed before it.
    """
    from tqdm import tqdm

    totals = dict.fromkeys(("added", "replaced", "unchanged", "chunks_added"), 0)
    skipped: list[Skipped] = []
    docs = iter(docs)
    info = lib.store.kb(kb)
    if info is None or not (info.embedder and info.lang):
        # Language, embedder (and domain) are decided once, on a sample read ahead.
        sample = list(itertools.islice(docs, LANG_SAMPLE))
        if not sample:
            return IngestReport()
        info = _settle(lib, kb, sample)
        docs = itertools.chain(sample, docs)
    embedder = lib.embedder_for(info.embedder)
    bar = tqdm(desc=f"embedding {kb}", unit="chunk", disable=not progress)
    pending: tuple[list[Chunked], Future[np.ndarray]] | None = None

    def commit_pending() -> None:
        nonlocal pending
        if pending is None:
            return
        chunked, vectors = pending[0], pending[1].result()
        pending = None
        replaced = _commit(lib, kb, chunked, vectors)
        totals["added"] += len(chunked) - replaced
        totals["replaced"] += replaced
        totals["chunks_added"] += len(vectors)

    pool = ThreadPoolExecutor(1, thread_name_prefix="embed")
    try:
        for raw in batched(docs, lib.batch_docs):
            batch = list({d.id: d for d in raw}.values())  # a repeated id: the last one wins
            if pending is not None and {c.doc.id for c in pending[0]} & {d.id for d in batch}:
                commit_pending()  # a document again: compare it with what the last batch wrote
            known = lib.store.doc_hashes(kb, [d.id for d in batch])
            todo = [d for d in batch if known.get(d.id) != content_hash(d)]
            totals["unchanged"] += len(batch) - len(todo)
            chunked, empty = chunk_docs(
                todo, embedder, chunk_tokens=info.chunk_tokens, overlap_tokens=info.overlap_tokens
            )
            skipped += empty
            texts = [passage_text(s) for c in chunked for s in c.spans]
            queued = (chunked, pool.submit(embed_texts, embedder, texts, bar)) if chunked else None
            commit_pending()
            pending = queued
        commit_pending()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        lib.indexes.flush(kb)
    return IngestReport(**totals, skipped=skipped)


def ingest_files(
    lib: Library,
    kb: str,
    paths: Sequence[str | os.PathLike[str]],
    *,
    domain: str | None,
    max_bytes: int,
    prune: bool,
    progress: bool,
) -> IngestReport:
    """`Library.ingest_paths`: what `load_paths` yields is ingested, what it skips is reported."""
    loaded: list[Skipped] = []
    seen: set[str] = set()

    def documents() -> Iterator[Document]:
        for item in load_paths(paths, domain=domain, max_bytes=max_bytes):
            if isinstance(item, Skipped):
                loaded.append(item)
            else:
                seen.add(item.id)
                yield item

    report = ingest(lib, kb, documents(), progress=progress)
    removed = 0
    if prune and lib.store.kb(kb) is not None:
        roots = [str(Path(p).expanduser()) for p in paths]
        failed = {s.path for s in loaded}
        for doc in lib.store.documents(kb):
            under = any(doc.source == r or doc.source.startswith(r + os.sep) for r in roots)
            if under and doc.doc_id not in seen and doc.source not in failed:
                removed += lib.delete_doc(kb, doc.doc_id)
    return replace(report, removed=removed, skipped=loaded + report.skipped)


def _settle(lib: Library, kb: str, sample: Sequence[Document]) -> KBInfo:
    """The knowledge base's row, created and given a language and embedder if it lacks them."""
    if lib.store.kb(kb) is None:
        try:
            lib.create(kb, domain=majority_domain(sample))
        except ValueError:
            if lib.store.kb(kb) is None:  # not a race with another process creating it
                raise
    info = lib.info(kb)
    if info.embedder and info.lang:
        return info
    lang = info.lang or majority_lang(sample)
    spec = info.embedder or default_embedder(lang)
    emb = lib.embedder_for(spec)
    with lib.indexes.writing():
        info = lib.info(kb)
        if not info.embedder or not info.lang:
            with lib.store.write() as db:
                tokens = min(info.chunk_tokens, emb.max_tokens)
                lib.store.update_kb(
                    db, kb, lang=lang, embedder=spec, dim=emb.dim, chunk_tokens=tokens
                )
    return lib.info(kb)


def _commit(lib: Library, kb: str, chunked: Sequence[Chunked], vectors: np.ndarray) -> int:
    """Write a batch in one transaction, then bring FAISS up to it; return how many replaced.

    `vectors` holds the rows of every chunk of `chunked`, in order.
    """
    with lib.indexes.writing():
        slot = lib.indexes.sync(kb)
        removed: list[int] = []
        added: list[int] = []
        replaced = row = 0
        now = utc_now()
        with lib.store.write() as db:
            for c in chunked:
                old = lib.store.delete_document(db, kb, c.doc.id)
                if old is not None:
                    replaced += 1
                    removed += old
                doc = DocInfo(c.doc.id, c.doc.title, c.doc.domain, c.lang, c.doc.group,
                              c.doc.source, c.content_hash, len(c.spans), now)  # fmt: skip
                n = len(c.spans)
                added += lib.store.insert_document(db, kb, doc, c.spans, vectors[row : row + n])
                row += n
            generation = lib.store.bump_generation(db, kb)
        lib.indexes.apply(kb, slot, generation, removed, added, vectors)
    return replaced
