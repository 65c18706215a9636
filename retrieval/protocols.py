"""The seams of retrieval: what an embedder and a reranker must provide."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from retrieval.types import Hit


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
