"""Real embedders: unit float32 vectors, meaning-aware similarity in English and Chinese, honest
token counts, and the OpenVINO backend's vectors matching PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.embedders import (
    E5Embedder,
    SentenceTransformerEmbedder,
    load_embedder,
    remembered,
)
from retrieval.errors import ModelNotFoundError

PAIRS = {
    "en": (
        "How many days of annual leave does an employee get?",
        "Employees are entitled to fifteen days of paid annual leave per year.",
        "The mitochondria produce most of the chemical energy of the cell.",
    ),
    "zh": (
        "员工每年有几天带薪年假？",
        "员工每年享有十五天带薪年假。",
        "线粒体为细胞提供大部分化学能量。",
    ),
}


def check_unit_vectors(embedder, texts: list[str]) -> np.ndarray:
    vecs = embedder.embed_documents(texts)
    assert vecs.dtype == np.float32 and vecs.shape == (len(texts), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    q = embedder.embed_query(texts[0])
    assert q.dtype == np.float32 and q.shape == (embedder.dim,)
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-3)
    assert embedder.embed_documents([]).shape == (0, embedder.dim)
    return vecs


def check_related_beats_unrelated(embedder, lang: str) -> None:
    query, related, unrelated = PAIRS[lang]
    q = embedder.embed_query(query)
    docs = embedder.embed_documents([related, unrelated])
    assert docs[0] @ q > docs[1] @ q + 0.05


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_minilm_ranks_the_related_passage_first(minilm_embedder, lang):
    check_unit_vectors(minilm_embedder, list(PAIRS[lang]))
    check_related_beats_unrelated(minilm_embedder, lang)


@pytest.mark.slow
def test_minilm_describes_itself(minilm_embedder):
    assert minilm_embedder.name == "bundled:minilm"
    assert minilm_embedder.dim == 384
    assert minilm_embedder.max_tokens == 254  # 256-token window less [CLS] and [SEP]
    assert minilm_embedder.count_tokens("hello world") == 2
    assert minilm_embedder.count_tokens("word " * 1000) == 1000  # counted whole, not truncated


@pytest.mark.slow
def test_openvino_vectors_match_pytorch(minilm_embedder, tmp_path):
    if minilm_embedder.backend == "torch":
        pytest.skip("OpenVINO is not installed; the default backend is PyTorch")
    torch_embedder = load_embedder("bundled:minilm", "cpu", backend="torch")
    exact = load_embedder("bundled:minilm", "cpu", backend="openvino-f32")
    texts = [*PAIRS["en"], *PAIRS["zh"], "  padded  ", "x" * 5000, ""]
    want = torch_embedder.embed_documents(texts)
    assert (minilm_embedder.embed_documents(texts) * want).sum(axis=1).min() >= 0.999
    assert (exact.embed_documents(texts) * want).sum(axis=1).min() >= 0.9999
    # One at a time (the query path) and batched agree.
    single = np.stack([minilm_embedder.embed_query(t) for t in texts])
    assert (single * minilm_embedder.embed_documents(texts)).sum(axis=1).min() >= 0.999


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_e5_ranks_the_related_passage_first(e5_embedder, lang):
    check_unit_vectors(e5_embedder, list(PAIRS[lang]))
    check_related_beats_unrelated(e5_embedder, lang)


def test_e5_describes_itself(e5_embedder):
    assert isinstance(e5_embedder, E5Embedder)
    assert (e5_embedder.name, e5_embedder.dim) == ("bundled:e5", 384)
    # The 512-token window less <s>, </s> and the "passage: " prefix the engine adds.
    assert e5_embedder.max_tokens == 507
    assert e5_embedder.count_tokens("") == 0
    assert e5_embedder.count_tokens("hello world") == 2


def test_e5_query_and_passage_prefixes_differ(e5_embedder):
    text = "annual leave policy"
    assert e5_embedder.embed_query(text) @ e5_embedder.embed_documents([text])[0] < 0.999


def test_load_embedder_rejects_models_that_do_not_embed():
    with pytest.raises(ModelNotFoundError, match="not an embedding model"):
        load_embedder("bundled:smollm2")
    with pytest.raises(ValueError, match="backend must be one of"):
        SentenceTransformerEmbedder("bundled:minilm", backend="tensorrt")


def test_query_vectors_are_remembered_and_read_only(e5_embedder):
    calls = []

    def encode(text):
        calls.append(text)
        return np.ones(3, np.float32)

    cached = remembered(encode)
    assert cached("a") is cached("a") and calls == ["a"]
    with pytest.raises(ValueError, match="read-only"):
        cached("a")[0] = 2.0
    first = e5_embedder.embed_query("氧气是谁发现的？")
    assert e5_embedder.embed_query("氧气是谁发现的？") is first and not first.flags.writeable


def test_the_tokenizer_gives_transformers_ids_without_importing_it():
    """retrieval/ov_encoder.FastTokenizer reads tokenizer.json with `tokenizers` alone; its ids,
    padding and masks are transformers' own, so the vectors are too."""
    from pathlib import Path

    from transformers import AutoTokenizer

    from retrieval.models import resolve_model
    from retrieval.ov_encoder import open_tokenizer, st_pipeline

    pipeline = st_pipeline(Path(resolve_model("bundled:minilm").path))
    ours, theirs = open_tokenizer(pipeline), AutoTokenizer.from_pretrained(pipeline.transformer_dir)
    texts = ["", "  The court held the contract void.  ", "依法成立的合同，受法律保护。",
             "Ünïcödé ﬁne", "aspirin " * 400]  # fmt: skip
    for text in texts:
        assert ours.ids(text) == theirs(text, add_special_tokens=False, verbose=False)["input_ids"]
    ids, mask = ours.batch(texts)
    want = theirs(texts, padding=True, truncation=True, max_length=pipeline.max_seq_length,
                  return_tensors="np")  # fmt: skip
    assert (ids == want["input_ids"]).all() and (mask == want["attention_mask"]).all()
    assert ours.num_special_tokens_to_add(pair=False) == 2


def test_an_ingest_process_never_imports_torch(tmp_path, minilm_embedder):  # converted first
    """`citewise ingest` with the default English embedder runs on OpenVINO and `tokenizers`:
    torch (and transformers, which imports it) stay out of the process once the conversion is
    cached, which is most of a second of every ingest on a 2-core machine."""
    import subprocess
    import sys

    (tmp_path / "a.txt").write_text("The quick brown fox jumps over the lazy dog.", "utf-8")
    code = (
        "import sys; from ui.cli.main import main; "
        f"rc = main(['--data-dir', {str(tmp_path / 'd')!r}, 'ingest', '--kb', 't', '--lang', "
        f"'en', '--embedder', 'bundled:minilm', {str(tmp_path / 'a.txt')!r}]); "
        "print('torch' in sys.modules, 'transformers' in sys.modules, rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:] == ["False", "False", "0"], out.stderr[-2000:]
