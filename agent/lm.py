"""Pick the LM backend a spec names: an http(s) URL is a server, anything else a local model."""

from __future__ import annotations

from typing import Any

from agent.protocols import LM

_LOCAL_ONLY = ("cache_dir", "device", "dtype", "lookup", "fast_cpu", "batch_size", "backend")
BACKENDS = ("auto", "llama.cpp", "transformers")
# Left to transformers by "auto": the default SmolLM2-135M prefills a 990-token prompt in 1.0 s
# there (float32, oneDNN-packed) and in 2.3 s on llama.cpp (its Q4_1 weights), and time to first
# token is what a chat user waits for (benchmarks/bench_gguf.py; README, "llama.cpp backend").
TRANSFORMERS_FIRST = frozenset({"bundled:smollm2"})


def load_lm(spec: str, **opts: Any) -> LM:
    """Build the LM for `spec`; options meant for the other kind of backend are dropped.

    "http://host:8000/v1", "https://..." or "openai:http://..." -> OpenAICompatibleLM (options
    model, api_key, timeout, max_workers); a folder, a .gguf or "bundled:smollm2" -> LocalLM
    (options cache_dir, device, dtype, lookup, fast_cpu, batch_size), or, for a GGUF on CPU with
    llama-cpp-python installed, GGUFLM (agent/lm_gguf.py), except the default SmolLM2
    (TRANSFORMERS_FIRST). `backend` = "auto" (that rule),
    "llama.cpp" (a GGUF through llama.cpp, or an error saying how to install it) or
    "transformers" (always LocalLM).

    Several server URLs separated by commas (a TOML list in a config file) -> LMPool over them,
    each with the same options (agent/lm_pool.py: least busy first, failed ones skipped).

    >>> load_lm("http://127.0.0.1:8000/v1", model="qwen", cache_dir=None).name
    'http://127.0.0.1:8000/v1#qwen'
    >>> load_lm("http://a:8000/v1, http://b:8000/v1", model="qwen").name
    'pool:http://a:8000/v1#qwen,http://b:8000/v1#qwen'
    """
    if "," in spec:
        from agent.lm_http import OpenAICompatibleLM
        from agent.lm_pool import LMPool

        urls = [u.strip().removeprefix("openai:") for u in spec.split(",") if u.strip()]
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(
                f"lm: a pool lists OpenAI-compatible server URLs (http://host:8000/v1), "
                f"not {bad[0]!r}"
            )
        remote = {k: v for k, v in opts.items() if k not in _LOCAL_ONLY}
        return LMPool([OpenAICompatibleLM(u, **remote) for u in urls])
    url = spec.removeprefix("openai:")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme and scheme not in ("http", "https"):
        raise ValueError(
            f"lm {url!r}: {scheme}:// is not a server URL kind; write http://host:8000/v1 (or "
            "https://) for an OpenAI-compatible server, or give a local folder or .gguf"
        )
    if url.startswith(("http://", "https://")):
        from agent.lm_http import OpenAICompatibleLM

        remote = {k: v for k, v in opts.items() if k not in _LOCAL_ONLY}
        return OpenAICompatibleLM(url, **remote)
    if spec.startswith("openai:"):
        raise ValueError(
            f"{spec!r}: after 'openai:' give the server's URL, e.g. openai:http://host:8000/v1"
        )
    if opts.pop("model", None):
        raise ValueError(
            "model= names the model on an OpenAI-compatible server; for a local model pass its "
            "folder or .gguf file as the spec"
        )
    backend = opts.pop("backend", "auto") or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"lm_backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "transformers" and opts.get("device") != "cuda":
        gguf = _llama_cpp_model(spec, opts.get("cache_dir"), required=backend == "llama.cpp")
        if gguf is not None:
            from agent.lm_gguf import GGUFLM

            return GGUFLM(gguf, name=spec)
    from agent.lm_local import LocalLM

    return LocalLM(spec, **opts)


def _llama_cpp_model(spec: str, cache_dir: Any, *, required: bool) -> Any:
    """The GGUF file llama.cpp should run for `spec`, or None for transformers."""
    from agent.lm_gguf import llama_cpp_installed
    from retrieval.embedders import default_cache_dir
    from retrieval.models import gguf_file

    if not required and spec in TRANSFORMERS_FIRST:
        return None
    installed = llama_cpp_installed()
    if required and not installed:
        raise ValueError(
            "lm_backend = 'llama.cpp' but llama-cpp-python is not installed: run `make llama` "
            "(it builds llama.cpp for this CPU, about 12 minutes on 2 cores)"
        )
    if not installed:
        return None
    gguf = gguf_file(spec, cache_dir or default_cache_dir() / "models")
    if gguf is None and required:
        raise ValueError(f"lm_backend = 'llama.cpp' runs .gguf models; {spec} is not one")
    return gguf
