"""Where citewise keeps its data: one directory, given explicitly, by CITEWISE_HOME, or per user."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data directory: `explicit`, else $CITEWISE_HOME, else the per-user data dir."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("CITEWISE_HOME")
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_data_dir

    return Path(user_data_dir("citewise", appauthor=False))


def store_setting(explicit: str | None = None) -> str:
    """Where knowledge bases are searched: `explicit`, else $CITEWISE_STORE, else "" (the FAISS
    files in the data directory); a `milvus://` URL searches Milvus (retrieval/milvus_index.py)."""
    return explicit or os.environ.get("CITEWISE_STORE", "")


def database_setting(explicit: str | None = None) -> str:
    """Where conversations (and, with a Milvus store, knowledge bases) live: `explicit`, else
    $CITEWISE_DATABASE_URL, else "" (SQLite files in the data directory)."""
    return explicit or os.environ.get("CITEWISE_DATABASE_URL", "")
