"""Documents in, ranked cited passages out: loading, chunking, embedding, hybrid index, kbs.

Imports here stay light; torch, faiss and sentence-transformers load in the modules that use them.
"""

from retrieval.errors import RetrievalError
from retrieval.types import Document, Filters, Hit

__all__ = ["Document", "Filters", "Hit", "RetrievalError"]
