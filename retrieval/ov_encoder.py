"""Run a sentence-transformers encoder through OpenVINO: converted once from PyTorch, cached.

Why: on CPU, OpenVINO's fused transformer kernels, in bfloat16 where the CPU has bf16 dot products,
embed the same passages several times faster than PyTorch, with vectors at cosine ≥ 0.9999 to the
fp32 ones (benchmarks/bench_embed.py). The converted model is cached per model and version
(`build_once`), checked against PyTorch before it is kept, and needs no hub access. Only the
common pipeline Transformer -> Pooling (mean or CLS) [-> Normalize] is handled; anything else
reports None from `st_pipeline` and the caller stays on PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.models import build_once, file_key

PRECISIONS = ("auto", "f32")
_PROBE = [
    "The court held that the contract was void.",
    "依法成立的合同，受法律保护。",
    "Aspirin " * 60,
]
_MIN_PROBE_COSINE = 0.9999  # fp32 against fp32: anything lower is a conversion bug


@dataclass(frozen=True)
class StPipeline:
    """What a sentence-transformers folder does after the transformer, read from its configs."""

    transformer_dir: Path
    dim: int
    max_seq_length: int
    pooling: str  # "mean" | "cls"
    do_lower_case: bool


def st_pipeline(folder: Path) -> StPipeline | None:
    """Read `folder`'s modules.json; None when its modules are not ones this encoder reproduces."""
    modules = json.loads((folder / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    transformer_dir = folder / modules[0]["path"]
    pool = json.loads((folder / modules[1]["path"] / "config.json").read_text())
    modes = [k for k, on in pool.items() if k.startswith("pooling_mode_") and on]
    pooling = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
    if len(modes) != 1 or modes[0] not in pooling:
        return None
    st_config = transformer_dir / "sentence_bert_config.json"
    cfg = json.loads(st_config.read_text()) if st_config.is_file() else {}
    hf_config = json.loads((transformer_dir / "config.json").read_text())
    return StPipeline(
        transformer_dir=transformer_dir,
        dim=int(pool.get("word_embedding_dimension") or hf_config["hidden_size"]),
        max_seq_length=int(cfg.get("max_seq_length") or 512),
        pooling=pooling[modes[0]],
        do_lower_case=bool(cfg.get("do_lower_case", False)),
    )


class FastTokenizer:
    """The model's tokenizer.json run by `tokenizers` itself: the same ids as transformers' fast
    tokenizer, without importing transformers, which imports torch (most of a second of every
    `citewise ingest`; benchmarks/bench_ingest_process.py)."""

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self._count = Tokenizer.from_file(str(path))  # whole texts, as a chunk budget counts them
        self._count.no_truncation()
        self._count.no_padding()
        self._batch = Tokenizer.from_file(str(path))  # the model's window, padded to the longest
        pad = self._batch.padding or {}
        self._batch.enable_truncation(max_length)
        self._batch.enable_padding(
            pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]")
        )

    def ids(self, text: str) -> list[int]:
        """Token ids of `text` without special tokens."""
        return list(self._count.encode(text, add_special_tokens=False).ids)

    def batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) int64 arrays for the model: specials added, padded."""
        encoded = self._batch.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        return ids, np.array([e.attention_mask for e in encoded], dtype=np.int64)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return int(self._count.num_special_tokens_to_add(pair))


def open_tokenizer(pipeline: StPipeline) -> FastTokenizer:
    path = pipeline.transformer_dir / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"{pipeline.transformer_dir} has no tokenizer.json; use backend='torch'")
    return FastTokenizer(path, pipeline.max_seq_length)


class OpenVinoEncoder:
    """Embed texts with a converted, cached OpenVINO copy of a sentence-transformers model.

    precision "auto" lets OpenVINO choose: bfloat16 on CPUs with native bf16 instructions
    (AVX512_BF16, AMX), fp32 elsewhere; "f32" always runs fp32 (the same vectors as PyTorch, at
    about half the speed where bf16 exists).
    """

    def __init__(self, pipeline: StPipeline, cache_dir: Path, precision: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        import openvino as ov

        self.pipeline = pipeline
        self.tokenizer = open_tokenizer(pipeline)
        xml = convert_to_openvino(pipeline, cache_dir) / "model.xml"
        config = {
            "PERFORMANCE_HINT": "LATENCY",  # one request at a time, all cores on it
            "CACHE_DIR": str(xml.parent.parent / "compiled"),  # compiles in ms after the first
        }
        if precision == "f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        core = ov.Core()
        self._model = core.compile_model(str(xml), "CPU", config)
        self.precision = self._model.get_property("INFERENCE_PRECISION_HINT").to_string()
        self._request = self._model.create_infer_request()
        # Neither the infer request nor the fast tokenizer may be used by two threads at once, but
        # each may run beside the other: an ingest chunks (counting tokens) while it embeds.
        self._tokenizer_lock = threading.Lock()
        self._request_lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        """L2-normalized float32 embeddings, batched longest-first so batches pad little."""
        out = np.empty((len(texts), self.pipeline.dim), np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for i in range(0, len(texts), batch_size):
            rows = order[i : i + batch_size]
            out[rows] = self._forward([texts[j] for j in rows])
        return out

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without special tokens."""
        with self._tokenizer_lock:
            return len(self.tokenizer.ids(text))

    def _forward(self, texts: list[str]) -> np.ndarray:
        # sentence-transformers strips (and may lowercase) before tokenizing; do the same.
        texts = [t.strip().lower() if self.pipeline.do_lower_case else t.strip() for t in texts]
        with self._tokenizer_lock:
            ids, mask = self.tokenizer.batch(texts)
        with self._request_lock:
            result = self._request.infer({"input_ids": ids, "attention_mask": mask})
            hidden = result[self._model.output(0)]
        return _pool(hidden, mask, self.pipeline.pooling)


def _pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "cls":
        vecs = hidden[:, 0]
    else:
        m = mask[..., None].astype(np.float32)
        vecs = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)


def convert_to_openvino(pipeline: StPipeline, cache_dir: Path) -> Path:
    """The cached folder holding model.xml/.bin for `pipeline`, converted on first use."""
    from importlib.metadata import version

    import openvino as ov

    weights = sorted(pipeline.transformer_dir.glob("*.safetensors")) or sorted(
        pipeline.transformer_dir.glob("*.bin")
    )
    # torch's version from its metadata: importing torch for a cache key costs most of a second.
    parts = [file_key(w) for w in weights] + [ov.__version__, version("torch"), "v1"]
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    final = Path(cache_dir).expanduser() / "openvino" / f"{pipeline.transformer_dir.name}-{key}"
    return build_once(final, lambda tmp: _convert(pipeline, tmp))


def _convert(pipeline: StPipeline, out: Path) -> None:
    import openvino as ov
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(pipeline.transformer_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(pipeline.transformer_dir)

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = tokenizer(_PROBE[:2], padding=True, return_tensors="pt")
    dynamic = ov.PartialShape([-1, -1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter; the check below decides
        converted = ov.convert_model(
            LastHidden(model).eval(),  # a fresh Module starts in training mode
            example_input={k: sample[k] for k in ("input_ids", "attention_mask")},
            input=[("input_ids", dynamic, ov.Type.i64), ("attention_mask", dynamic, ov.Type.i64)],
        )
    # Keep fp32 weights on disk; the precision is chosen at compile time, per CPU.
    ov.save_model(converted, str(out / "model.xml"), compress_to_fp16=False)
    _check_against_torch(out / "model.xml", model, tokenizer, pipeline)


def _check_against_torch(xml: Path, model: Any, tokenizer: Any, pipeline: StPipeline) -> None:
    """Refuse a conversion whose vectors drift from PyTorch's (a tracing bug)."""
    import openvino as ov
    import torch

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    for texts in (_PROBE, _PROBE[:1]):
        enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        hidden = compiled({"input_ids": ids, "attention_mask": mask})[compiled.output(0)]
        got = _pool(hidden, mask, "mean")
        with torch.inference_mode():
            ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        want = _pool(ref.last_hidden_state.numpy(), mask, "mean")
        worst = float((got * want).sum(axis=1).min())
        if worst < _MIN_PROBE_COSINE:
            raise RuntimeError(
                f"the OpenVINO conversion of {pipeline.transformer_dir} drifts from PyTorch "
                f"(cosine {worst:.4f}); use backend='torch'"
            )
