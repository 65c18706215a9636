"""Pick the LM backend a spec names: an http(s) URL is a server, anything else a local model."""

from __future__ import annotations

from typing import Any

from agent.protocols import LM

_LOCAL_ONLY = ("cache_dir", "device", "dtype", "lookup", "fast_cpu", "batch_size")


def load_lm(spec: str, **opts: Any) -> LM:
    """Build the LM for `spec`; options meant for the other kind of backend are dropped.

    "http://host:8000/v1", "https://..." or "openai:http://..." -> OpenAICompatibleLM (options
    model, api_key, timeout, max_workers); a folder, a .gguf or "bundled:smollm2" -> LocalLM
    (options cache_dir, device, dtype, lookup, fast_cpu, batch_size).

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
    from agent.lm_local import LocalLM

    return LocalLM(spec, **opts)
