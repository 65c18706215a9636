"""The retrieval error hierarchy: every message says what went wrong and what to do."""


class RetrievalError(Exception):
    """Base class for errors raised by the retrieval package."""


class ModelNotFoundError(RetrievalError):
    """A model spec did not resolve to weights on this machine."""


class KnowledgeBaseNotFoundError(RetrievalError):
    """A knowledge base name that does not exist in the data directory."""


class ManifestMismatchError(RetrievalError):
    """A stored index does not match what the database or the embedder says it should be."""


class UnsupportedInputError(RetrievalError):
    """A file that cannot be ingested; the message is the one-line reason shown to the user."""


class DocumentNotFoundError(RetrievalError):
    """A document id that is not in the knowledge base named."""
