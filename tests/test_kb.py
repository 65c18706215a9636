"""Knowledge bases end to end with the real MiniLM embedder, real FAISS and real SQLite files:
what only the files backend has (manifests, checksums, FTS tables, embedders, loaders). Search,
replace, delete, failures and threads run on both backends in tests/test_kb_contract.py.

One small knowledge base (six XQuAD and four PubMedQA documents) is built once per module; each
test works on its own copy of that data directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval import lexical
from retrieval.errors import (
    DocumentNotFoundError,
    KnowledgeBaseNotFoundError,
    ManifestMismatchError,
)
from retrieval.ingest import default_embedder, majority_lang
from retrieval.kb import Library
from retrieval.store import fts_table
from retrieval.types import Document

pytestmark = pytest.mark.slow  # the module fixture embeds with MiniLM (seconds on a laptop CPU)


class Counting:
    """The real embedder, counting passage-embedding calls; optionally failing on the n-th."""

    def __init__(self, inner: Any, fail_on: int = 0) -> None:
        self.inner, self.fail_on, self.calls = inner, fail_on, 0
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("embedder failed")
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def _open(path: Path, embedder: Any, **kwargs: Any) -> Library:
    def load(spec: str) -> Any:
        assert spec == "bundled:minilm", f"these tests embed with MiniLM only, not {spec}"
        return embedder

    return Library(path, embedder_loader=load, **kwargs)


@pytest.fixture(scope="module")
def base_docs(english_docs: list[Document]) -> list[Document]:
    return english_docs[:6] + english_docs[40:44]


@pytest.fixture(scope="module")
def base_dir(
    tmp_path_factory: pytest.TempPathFactory, base_docs: list[Document], minilm_embedder: Any
) -> Path:
    path = tmp_path_factory.mktemp("base")
    lib = _open(path, minilm_embedder)
    report = lib.ingest_documents("kb", base_docs, progress=False)
    assert report.added == len(base_docs)
    lib.close()
    return path


@pytest.fixture()
def data_dir(base_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(base_dir, tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture()
def library(data_dir: Path, minilm_embedder: Any) -> Iterator[Library]:
    lib = _open(data_dir, minilm_embedder)
    yield lib
    lib.close()


def _chunk_ids(lib: Library, doc_id: str) -> set[int]:
    rows = lib.store.db.execute("SELECT id FROM chunks WHERE kb = 'kb' AND doc_id = ?", [doc_id])
    return {r[0] for r in rows}


def _ids(hits: Sequence[Any]) -> list[str]:
    return [h.doc_id for h in hits]


def test_document_text_is_put_back_together_from_the_chunks(
    tmp_path: Path, english_docs: list[Document], minilm_embedder: Any
) -> None:
    lib = _open(tmp_path, minilm_embedder)
    lib.create("small", domain="medical", lang="en", chunk_tokens=40, overlap_tokens=8)
    doc = english_docs[40]  # a PubMedQA abstract: many chunks at 40 tokens, overlapping
    lib.ingest_documents("small", [doc], progress=False)
    assert lib.info("small").chunks > 3
    rebuilt = lib.document_text("small", doc.id)
    assert (rebuilt.title, rebuilt.domain, rebuilt.source) == (doc.title, doc.domain, doc.source)
    assert rebuilt.text.split() == doc.text.strip().split()  # only whitespace may differ
    for hit in lib.lexical_search("small", doc.text[:200], 50):
        assert rebuilt.text[hit.start : hit.end] == hit.text
    with pytest.raises(DocumentNotFoundError, match="citewise kb show small"):
        lib.document_text("small", "nope")


def test_unknown_kb_error_names_the_existing_ones(library: Library) -> None:
    for call in (
        lambda: library.dense_search("nope", "query", 3),
        lambda: library.lexical_search("nope", "query", 3),
        lambda: library.delete_doc("nope", "x"),
        lambda: library.info("nope"),
    ):
        with pytest.raises(KnowledgeBaseNotFoundError, match=r"'nope' \(existing: kb\)"):
            call()


def test_reingesting_unchanged_documents_is_a_noop(
    data_dir: Path, base_docs: list[Document], minilm_embedder: Any
) -> None:
    counting = Counting(minilm_embedder)
    lib = _open(data_dir, counting)
    manifest = lib.indexes.manifest_path("kb").read_text()
    before = lib.info("kb")
    report = lib.ingest_documents("kb", base_docs, progress=False)
    assert (report.unchanged, report.added, report.replaced, report.chunks_added) == (10, 0, 0, 0)
    assert counting.calls == 0
    assert lib.info("kb").generation == before.generation
    assert lib.indexes.manifest_path("kb").read_text() == manifest


def test_a_document_repeated_in_the_next_batch_is_compared_with_what_the_last_one_wrote(
    tmp_path: Path,
    english_docs: list[Document],
    minilm_embedder: Any,
    check_kb: Callable[..., None],
) -> None:
    # Batches of 2: batch n+1 is chunked while batch n is still being embedded, not yet written.
    a, b, c, d = english_docs[20:24]
    changed = dataclasses.replace(a, text=a.text + " The quokka ate marmalade in Zanzibar.")
    lib = _open(tmp_path, minilm_embedder, batch_docs=2)
    report = lib.ingest_documents("kb", [a, b, c, changed, b, d], progress=False)
    assert (report.added, report.replaced, report.unchanged) == (4, 1, 1)
    assert [h.doc_id for h in lib.lexical_search("kb", "quokka marmalade Zanzibar", 1)] == [a.id]
    assert sorted(doc.doc_id for doc in lib.documents("kb")) == sorted(x.id for x in (a, b, c, d))
    check_kb(lib, "kb")


def test_drop_removes_rows_tables_and_files(library: Library, data_dir: Path) -> None:
    faiss_file, manifest = library.indexes.faiss_path("kb"), library.indexes.manifest_path("kb")
    assert faiss_file.exists() and manifest.exists()
    old_max = library.store.db.execute("SELECT max(id) FROM chunks").fetchone()[0]
    library.drop("kb")
    assert not faiss_file.exists() and not manifest.exists()
    assert library.list() == []
    assert library.store.db.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    assert fts_table("kb").strip('"') not in library.store.db.table_names()
    with pytest.raises(KnowledgeBaseNotFoundError, match="none yet"):
        library.dense_search("kb", "anything", 3)
    # Recreated under the same name, its chunk ids continue past the dropped ones.
    library.ingest_documents("kb", [Document("d", "A new beginning.")], progress=False)
    assert library.store.db.execute("SELECT min(id) FROM chunks").fetchone()[0] > old_max


def test_a_kb_dropped_and_created_again_elsewhere_is_not_mistaken_for_the_old_one(
    library: Library, data_dir: Path, base_docs: list[Document], minilm_embedder: Any
) -> None:
    other = _open(data_dir, minilm_embedder)  # another process, with the old index loaded
    assert other.dense_search("kb", base_docs[0].text, 1)[0].doc_id == base_docs[0].id
    generation = library.info("kb").generation
    library.drop("kb")
    library.ingest_documents(
        "kb", [Document("new", "Volcanoes erupt molten rock.")], progress=False
    )
    assert library.info("kb").generation == generation  # same name, same generation
    assert _ids(other.dense_search("kb", "volcano eruption", 5)) == ["new"]


def test_a_new_kb_takes_domain_language_and_embedder_from_its_documents(
    tmp_path: Path, base_docs: list[Document], minilm_embedder: Any
) -> None:
    lib = _open(tmp_path, minilm_embedder)
    lib.ingest_documents("med", base_docs[6:8], progress=False)
    info = lib.info("med")
    assert (info.domain, info.lang, info.embedder, info.dim) == (
        "medical",
        "en",
        "bundled:minilm",
        384,
    )
    assert (info.documents, info.generation) == (2, 1)
    # Created without a language, the first ingest decides.
    lib.create("later", domain="education")
    assert lib.info("later").embedder == ""
    assert lib.dense_search("later", "anything", 3) == []
    lib.ingest_documents("later", base_docs[:1], progress=False)
    assert (lib.info("later").lang, lib.info("later").embedder) == ("en", "bundled:minilm")


def test_default_embedder_follows_the_language() -> None:
    assert default_embedder("en") == "bundled:minilm"
    assert default_embedder("zh") == default_embedder("multi") == "bundled:e5"
    with pytest.raises(ValueError, match="use one of"):
        default_embedder("fr")
    zh = Document("z", "依法成立的合同，受法律保护。")
    en = Document("e", "The contract is valid and binding.")
    assert majority_lang([zh] * 9 + [en]) == "zh"
    assert majority_lang([zh] * 5 + [en] * 5) == "multi"
    assert majority_lang([en] * 8 + [zh] * 2) == "multi"  # MiniLM would fail the Chinese fifth


def test_create_rejects_bad_names_and_settings(library: Library) -> None:
    for name in ("", "../x", "a b", "_x", "x" * 129, 'a"b'):
        with pytest.raises(ValueError, match="not allowed"):
            library.create(name)
    with pytest.raises(ValueError, match="unknown domain"):
        library.create("x", domain="sports")
    with pytest.raises(ValueError, match="unknown language"):
        library.create("x", lang="fr")
    with pytest.raises(ValueError, match="exists already"):
        library.create("kb")
    assert [i.name for i in library.list()] == ["kb"]


def test_a_wrong_embedder_in_the_manifest_is_reported(
    data_dir: Path, minilm_embedder: Any, check_kb: Callable[..., None]
) -> None:
    lib = _open(data_dir, minilm_embedder)
    path = lib.indexes.manifest_path("kb")
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "embedder": "bundled:e5"}))
    with pytest.raises(
        ManifestMismatchError, match=r"built with bundled:e5 .* uses bundled:minilm"
    ):
        lib.dense_search("kb", "query", 3)
    lib.reindex("kb")
    check_kb(lib, "kb")


def test_a_corrupt_index_file_is_reported_and_reindex_repairs_it(
    data_dir: Path, base_docs: list[Document], minilm_embedder: Any, check_kb: Callable[..., None]
) -> None:
    lib = _open(data_dir, minilm_embedder)
    path = lib.indexes.faiss_path("kb")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestMismatchError, match=r"corrupt.*run `citewise kb reindex kb`"):
        lib.open("kb")
    lib.reindex("kb")
    check_kb(lib, "kb")
    assert _ids(_open(data_dir, minilm_embedder).dense_search("kb", base_docs[0].text, 1)) == [
        base_docs[0].id
    ]


def test_an_index_behind_the_database_is_rebuilt_on_open(
    data_dir: Path,
    base_docs: list[Document],
    minilm_embedder: Any,
    check_kb: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lib = _open(data_dir, minilm_embedder)
    # What a process that died right after its commit leaves: the database moved, the files not.
    with lib.store.write() as db:
        lib.store.delete_document(db, "kb", base_docs[0].id)
        lib.store.bump_generation(db, "kb")
    lib.close()
    with caplog.at_level(logging.WARNING, logger="retrieval.kbindex"):
        lib = _open(data_dir, minilm_embedder)
        assert base_docs[0].id not in _ids(lib.dense_search("kb", base_docs[0].text, 20))
    assert "rebuilding the index from the stored vectors" in caplog.text
    check_kb(lib, "kb")
    # Files lost altogether are rebuilt the same way.
    lib.indexes.faiss_path("kb").unlink()
    lib.indexes.manifest_path("kb").unlink()
    check_kb(_open(data_dir, minilm_embedder), "kb")


def test_ingest_paths_skips_bad_files_and_ingests_the_rest(
    tmp_path: Path, base_docs: list[Document], minilm_embedder: Any, check_kb: Callable[..., None]
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "good.txt").write_text(base_docs[0].text, encoding="utf-8")
    (folder / "notes.md").write_text("# Notes\n\n" + base_docs[6].text, encoding="utf-8")
    (folder / "table.xyz").write_text("not a supported type")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (folder / "empty.txt").write_text("   \n")
    lib = _open(tmp_path / "data", minilm_embedder)
    report = lib.ingest_paths("files", [folder, tmp_path / "missing"], progress=False)
    assert (report.added, report.chunks_added > 0) == (2, True)
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(skipped) == {"table.xyz", "broken.pdf", "empty.txt", "missing"}
    assert all(skipped.values())
    check_kb(lib, "files")
    assert _ids(lib.dense_search("files", base_docs[0].text[:200], 1)) == ["good.txt"]


def test_prune_removes_documents_whose_files_are_gone(tmp_path: Path, minilm_embedder: Any) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.txt").write_text("Apples grow on trees in orchards.")
    (folder / "b.txt").write_text("Bananas grow in tropical plantations.")
    lib = _open(tmp_path / "data", minilm_embedder)
    lib.ingest_paths("fruit", [folder], progress=False)
    (folder / "b.txt").unlink()
    report = lib.ingest_paths("fruit", [folder], prune=True, progress=False)
    assert (report.unchanged, report.removed) == (1, 1)
    assert [d.doc_id for d in lib.documents("fruit")] == ["a.txt"]


def test_the_lexical_index_is_resegmented_when_segmentation_changes(
    library: Library, base_docs: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexical, "VERSION", "next")
    assert _ids(library.lexical_search("kb", base_docs[4].text[:200], 1)) == [base_docs[4].id]
    assert library.info("kb").lexical == "next"


def test_an_embedder_with_another_dimension_is_reported_and_reindex_reembeds(
    data_dir: Path, base_docs: list[Document], minilm_embedder: Any, check_kb: Callable[..., None]
) -> None:
    lib = _open(data_dir, minilm_embedder)
    ids, before = lib.store.vectors("kb", 384)
    # As if the kb had been built by a 128-d model and the spec now loads a 384-d one.
    with lib.store.write() as db:
        lib.store.update_kb(db, "kb", dim=128)
    with pytest.raises(
        ManifestMismatchError, match=r"128-dimensional .* 384-dimensional .* reindex"
    ):
        lib.dense_search("kb", "query", 3)
    info = lib.reindex("kb")
    assert info.dim == 384
    ids_after, after = lib.store.vectors("kb", 384)
    # Embedded again from the stored text by the same model: the same vectors, to rounding.
    assert ids_after.tolist() == ids.tolist()
    np.testing.assert_allclose(after, before, atol=1e-4)
    check_kb(lib, "kb")
    assert _ids(lib.dense_search("kb", base_docs[5].text, 1)) == [base_docs[5].id]
