"""Run a sentence-transformers encoder through ONNX Runtime: exported once, fused, cached.

Why: on CPU, ONNX Runtime with fused attention, GELU and layer-norm kernels embeds the same passages
several times faster than PyTorch, with the same vectors. The export is cached per model and version
(`build_once`), is checked against PyTorch before it is kept, and needs no hub access. Only the
common pipeline Transformer -> Pooling (mean or CLS) [-> Normalize] is handled; anything else
reports None from `st_pipeline` and the caller stays on PyTorch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.models import build_once, file_key

PRECISIONS = ("fp32", "int8")
# The bert fusions of onnxruntime's optimizer cover these; other encoders run unfused.
_FUSABLE = ("bert", "roberta", "xlm-roberta", "camembert")
_PROBE = [
    "The court held that the contract was void.",
    "依法成立的合同，受法律保护。",
    "Aspirin " * 60,
]
_MIN_PROBE_COSINE = {"fp32": 0.9999, "int8": 0.999}


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


class OnnxEncoder:
    """Embed texts with an exported, cached ONNX copy of a sentence-transformers model."""

    def __init__(
        self, pipeline: StPipeline, cache_dir: Path, precision: str = "fp32", threads: int = 0
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.pipeline = pipeline
        self.tokenizer = AutoTokenizer.from_pretrained(pipeline.transformer_dir)
        # A fast tokenizer used from two threads at once can fail with "Already borrowed".
        self._tokenizer_lock = threading.Lock()
        model_dir = export_onnx(pipeline, cache_dir, precision, self.tokenizer)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        # Spinning worker threads steal the CPU from whatever else runs (the chat model, other
        # users); waking them costs microseconds per batch.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
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
            return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _forward(self, texts: list[str]) -> np.ndarray:
        # sentence-transformers strips (and may lowercase) before tokenizing; do the same.
        texts = [t.strip().lower() if self.pipeline.do_lower_case else t.strip() for t in texts]
        with self._tokenizer_lock:
            enc = self.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.pipeline.max_seq_length,
                return_tensors="np",
            )
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return _pool(hidden, mask, self.pipeline.pooling)


def _pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "cls":
        vecs = hidden[:, 0]
    else:
        m = mask[..., None].astype(np.float32)
        vecs = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)


def export_onnx(pipeline: StPipeline, cache_dir: Path, precision: str, tokenizer: Any) -> Path:
    """The cached folder holding model.onnx for `pipeline` at `precision`, exported on first use."""
    import onnxruntime as ort
    import torch

    weights = sorted(pipeline.transformer_dir.glob("*.safetensors")) or sorted(
        pipeline.transformer_dir.glob("*.bin")
    )
    parts = [file_key(w) for w in weights] + [ort.__version__, torch.__version__, precision, "v1"]
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    final = Path(cache_dir).expanduser() / "onnx" / f"{pipeline.transformer_dir.name}-{key}"
    return build_once(final, lambda tmp: _export(pipeline, tmp, precision, tokenizer))


def _export(pipeline: StPipeline, out: Path, precision: str, tokenizer: Any) -> None:
    import onnx
    import torch
    from transformers import AutoModel

    # Eager attention exports as the MatMul/Softmax pattern that onnxruntime fuses into Attention.
    model = AutoModel.from_pretrained(pipeline.transformer_dir, attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = tokenizer(_PROBE[:2], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    raw = out / "raw.onnx"
    # A fresh Module starts in training mode, and export restores that mode on the wrapped model.
    wrapper = LastHidden(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; the check below decides
        torch.onnx.export(
            wrapper,
            (sample["input_ids"], sample["attention_mask"]),
            str(raw),
            input_names=["input_ids", "attention_mask"],
            output_names=["hidden"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter's graph is the one the fusions recognise
        )
    onnx_model = _optimize(raw, model.config)
    if precision == "int8":
        onnx_model = _quantize_int8(onnx_model)
    onnx.save(onnx_model, str(out / "model.onnx"))
    raw.unlink()
    _check_against_torch(out / "model.onnx", model, tokenizer, pipeline, precision)


def _optimize(raw: Path, config: Any) -> Any:
    import onnx

    if config.model_type not in _FUSABLE:
        return onnx.load(str(raw))
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    return fused.model


def _quantize_int8(model: Any) -> Any:
    """8-bit weights in blocks of 32 with int8 compute on 32-wide activation blocks.

    Per-tensor dynamic int8 (quantize_dynamic) loses too much on MiniLM (cosine 0.98 on some
    passages); blockwise scales keep it above 0.999 and still run on the int8 dot-product units.
    """
    with _root_logging_kept():  # this module calls logging.basicConfig(level=INFO) on import
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

    config = DefaultWeightOnlyQuantConfig(
        block_size=32, is_symmetric=True, accuracy_level=4, bits=8
    )
    quantizer = MatMulNBitsQuantizer(
        model, bits=8, block_size=32, is_symmetric=True, accuracy_level=4, algo_config=config
    )
    quantizer.process()
    return quantizer.model.model


@contextlib.contextmanager
def _root_logging_kept() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _check_against_torch(
    path: Path, model: Any, tokenizer: Any, pipeline: StPipeline, precision: str
) -> None:
    """Refuse an export whose vectors drift from PyTorch's (a tracing or fusion bug)."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for texts in (_PROBE, _PROBE[:1]):
        enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        got = _pool(session.run(None, {"input_ids": ids, "attention_mask": mask})[0], mask, "mean")
        with torch.inference_mode():
            ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        want = _pool(ref.last_hidden_state.numpy(), mask, "mean")
        worst = float((got * want).sum(axis=1).min())
        if worst < _MIN_PROBE_COSINE[precision]:
            raise RuntimeError(
                f"the ONNX export of {pipeline.transformer_dir} drifts from PyTorch "
                f"(cosine {worst:.4f}); use backend='torch'"
            )
