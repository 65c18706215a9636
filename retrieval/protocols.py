"""The seams of retrieval: what an embedder, a reranker and the search indexes must provide."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from retrieval.types import Filters, Hit


class Embedder(Protocol):
    """Turns text into L2-normalized float32 vectors; queries and passages may be encoded apart."""

    name: str  # stable identity recorded in the index manifest, e.g. "bundled:minilm"
    dim: int
    max_tokens: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of unit vectors."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Return a (dim,) float32 unit vector."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens this embedder would see for `text` as a passage (chunk sizes use this)."""
        ...


class Reranker(Protocol):
    """Second-stage rescoring of fused candidates."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """Return the hits reordered (and rescored), best first."""
        ...


class Indexes(Protocol):
    """The search side of every knowledge base, kept in step with the relational store (which
    holds every row and vector): FAISS files + SQLite FTS5 (retrieval/kbindex.py) or Milvus
    (retrieval/milvus_index.py). A slot is one knowledge base's index at one generation."""

    def writing(self) -> AbstractContextManager[None]:
        """Exclusive right to change the knowledge bases (re-entrant)."""
        ...

    def current(self, kb: str, state: Any) -> Any:
        """The slot of `kb` as the store's `state` says (synced if behind); None: no embedder."""
        ...

    def sync(self, kb: str) -> Any: ...

    def apply(
        self,
        kb: str,
        slot: Any,
        generation: int,
        removed: Sequence[int],
        added: Sequence[int] = (),
        vectors: np.ndarray | None = None,
        *,
        save: bool | None = None,
    ) -> None:
        """Bring the index to the generation just committed (write lock held)."""
        ...

    def flush(self, kb: str) -> None: ...

    def rebuild(self, info: Any) -> Any:
        """A fresh index of `info`'s knowledge base from the stored vectors (write lock held)."""
        ...

    def forget(self, kb: str, *, files: bool = False) -> None:
        """Drop what is held of `kb`; with `files`, its stored index too (write lock held)."""
        ...

    def dense(
        self, kb: str, slot: Any, query: np.ndarray, k: int, filters: Filters
    ) -> list[Hit]: ...

    def lexical(self, kb: str, query: str, k: int, filters: Filters) -> list[Hit]: ...

    def close(self) -> None: ...
