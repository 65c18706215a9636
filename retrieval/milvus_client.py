"""Talking to Milvus for retrieval/milvus_index.py: what a `milvus://` setting points at and how to
connect (never showing a password), collection names and schemas, filter expressions, rows."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from retrieval.errors import RetrievalError
from retrieval.store import IndexRow
from retrieval.types import Filters

META = "citewise_meta"
_MAX_VARCHAR = 65535  # bytes: Milvus's limit for a VARCHAR field
FILTER_FIELDS = {"domain": "domain", "lang": "lang", "group": "grp", "source": "source"}


@dataclass(frozen=True)
class MilvusTarget:
    """Where a `milvus://` store setting points, and how it is shown (never with a password)."""

    uri: str
    token: str
    db_name: str
    shown: str


def parse_store(store: str) -> MilvusTarget:
    """The Milvus a `store` setting names; ValueError naming the setting for anything else."""
    if not store.startswith("milvus://"):
        raise ValueError(
            f"store {store.split('://')[0]!r}...: use milvus:///path/kb.db (Milvus Lite) or "
            "milvus://host:19530 (a Milvus server), or leave it empty for the embedded FAISS index"
        )
    rest = store[len("milvus://") :]
    store = "milvus://" + re.sub(r":[^@/]*@", ":***@", rest, count=1)  # as messages show it
    if rest.startswith("/"):
        if not rest.endswith(".db"):
            raise ValueError(
                f"store {store}: a Milvus Lite file ends in .db (milvus:///path/kb.db)"
            )
        return MilvusTarget(rest, "", "", store)
    parts = urlsplit(f"http://{rest}")
    try:
        port = parts.port or 19530
    except ValueError:
        raise ValueError(f"store {store}: the port is not a number") from None
    if not parts.hostname:
        raise ValueError(f"store {store}: no host (write milvus://host:19530)")
    token = ""
    if parts.username:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    db_name = parts.path.strip("/")
    shown = f"milvus://{parts.hostname}:{port}" + (f"/{db_name}" if db_name else "")
    return MilvusTarget(f"http://{parts.hostname}:{port}", token, db_name, shown)


def collection_name(kb: str) -> str:
    """Milvus names take ASCII letters, digits and '_': a readable part and a hash of the name."""
    readable = re.sub(r"[^A-Za-z0-9]", "_", kb)[:64]
    return f"citewise_{readable}_{hashlib.sha256(kb.encode()).hexdigest()[:10]}"


def filter_expr(filters: Filters) -> str:
    """The Milvus boolean expression for `filters` ('' for none); values quoted and escaped."""
    clauses = []
    for name, field in FILTER_FIELDS.items():
        value = getattr(filters, name)
        if value is not None:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
            clauses.append(f'{field} == "{escaped}"')
    return " and ".join(clauses)


def create_collection(client: Any, name: str, dim: int) -> None:
    """A knowledge base's collection: id, vector, tokens with their BM25 function, filters."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    # The words are segmented already (spaces between them): the standard analyzer only
    # splits on those and lowercases, on Milvus Lite and on a Milvus server alike.
    schema.add_field(
        "tokens",
        DataType.VARCHAR,
        max_length=_MAX_VARCHAR,
        enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    for field in ("doc_id", *FILTER_FIELDS.values()):
        schema.add_field(field, DataType.VARCHAR, max_length=_MAX_VARCHAR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["tokens"],
            output_field_names=["sparse"],
        )
    )
    index = client.prepare_index_params()
    # Exact inner product of unit vectors (= cosine), as the embedded FAISS index.
    index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    _create_with(client, name, schema, index)


def _create_with(client: Any, name: str, schema: Any, index: Any) -> None:
    client.create_collection(name, schema=schema, consistency_level="Strong")
    # sync=False: waiting polls a timestamp RPC Milvus Lite lacks (and sleeps 0.5 s per
    # index); loading the collection next waits for its indexes on every Milvus.
    client.create_index(name, index, sync=False)


def ensure_meta(client: Any) -> None:
    """The citewise_meta collection: which generation each knowledge base's collection holds."""
    from pymilvus import DataType, MilvusClient

    if client.has_collection(META):
        client.load_collection(META)
        return
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("name", DataType.VARCHAR, is_primary=True, max_length=255)
    schema.add_field("kb", DataType.VARCHAR, max_length=1024)
    schema.add_field("created_at", DataType.VARCHAR, max_length=64)
    schema.add_field("generation", DataType.INT64)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs a vector field
    index = client.prepare_index_params()
    index.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
    _create_with(client, META, schema, index)
    client.load_collection(META)


def entity(row: IndexRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "vector": row.vector.tolist(),
        "tokens": _clip(row.tokens),
        "doc_id": _clip(row.doc_id),
        "domain": row.domain,
        "lang": row.lang,
        "grp": _clip(row.group),
        "source": _clip(row.source),
    }


def _clip(text: str) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= _MAX_VARCHAR else data[:_MAX_VARCHAR].decode("utf-8", "ignore")


def connect(target: MilvusTarget) -> Any:
    try:
        # pymilvus imports these on a search's or insert's first use; two threads doing that at
        # once (a search beside an ingest) deadlock on the import lock or see a half-imported
        # scipy ("no attribute 'lil_array'"), so they are imported here, before any thread runs.
        import pymilvus.client.entity_helper
        import pymilvus.client.field_data_extractors  # noqa: F401
        import scipy.sparse  # noqa: F401
        from pymilvus import MilvusClient
    except ImportError:
        raise RetrievalError(
            f"store {target.shown} needs pymilvus and milvus-lite: pip install 'citewise[milvus]'"
        ) from None
    if not target.token and target.uri.endswith(".db"):
        Path(target.uri).parent.mkdir(parents=True, exist_ok=True)
    # Each failure reaches the user once, as a RetrievalError naming the store (Guarded), not
    # also as pymilvus's own logged traceback.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    try:
        client = MilvusClient(
            uri=target.uri,
            token=target.token,
            db_name=target.db_name,
            timeout=10,
            # pymilvus pings every 10 s; gRPC servers with default settings (Milvus Lite's) answer
            # pings more often than every 5 minutes with GOAWAY "too_many_pings" mid-ingest.
            grpc_options={"grpc.keepalive_time_ms": 300_000},
        )
    except Exception as e:  # pymilvus raises MilvusException, grpc errors or OSError here
        raise RetrievalError(_connect_error(target, e)) from None
    return Guarded(client, target.shown)


class Guarded:
    """A MilvusClient whose failures (a server gone away, a request refused) are RetrievalErrors
    naming the store, which every front-end shows as one line; programming errors pass as they
    are."""

    def __init__(self, client: Any, shown: str) -> None:
        self._client, self._shown = client, shown

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            from pymilvus.exceptions import MilvusException

            try:
                return method(*args, **kwargs)
            except MilvusException as e:
                reason = (str(e.message).strip().splitlines() or [type(e).__name__])[0]
                raise RetrievalError(
                    f"store {self._shown}: Milvus did not answer {name} ({reason}); check that "
                    "the server is running, then try again"
                ) from None

        return call


def _connect_error(target: MilvusTarget, e: BaseException) -> str:
    text = str(getattr(e, "message", "") or e)  # MilvusException keeps the server's words apart
    reason = (text.strip().splitlines() or [type(e).__name__])[0]
    if target.uri.endswith(".db"):
        return (
            f"store {target.shown}: Milvus Lite cannot open it ({reason}); an embedded Milvus Lite "
            "file serves one process (is another citewise using it?): for several, serve it with "
            f"`milvus-lite server --data-dir {target.uri} --port 19530` and set "
            'store = "milvus://127.0.0.1:19530"'
        )
    return (
        f"store {target.shown}: cannot reach Milvus ({reason}); check that the server is running "
        "and reachable, and the user name, password and database name"
    )
