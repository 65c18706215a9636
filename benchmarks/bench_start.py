"""Second start of the local LM: a fresh process, converted model cached, until the first token.

    python -m benchmarks.bench_start [--runs 5] [--spec bundled:smollm2]
        [--backends transformers,llama.cpp] [--ui]

One untimed run first makes sure the GGUF conversion is cached (that is the first start). Each
timed run is a new Python process that imports LocalLM, builds it and streams a one-line chat
until its first piece of text: the wall time from launching the process to that piece arriving
is "first token ready". The child also reports where its time went (imports, LocalLM(...), the
first token itself) and its CPU time, which a loaded machine inflates less than wall time;
medians over the runs are printed. With several --backends (agent/lm.py's `backend`: the
baseline transformers first, then llama.cpp), their processes alternate, one run each in turn.
With --ui, each run is `citewise ui` instead: launch to the first page served at "/" (the loading
page, ui/loading.py) and to the chat itself (/openapi.json answering 200).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from retrieval.embedders import default_cache_dir

REPO = Path(__file__).resolve().parents[1]
PHASES = ("import_s", "load_s", "first_token_s", "cpu_s")

# Runs in the child; prints one JSON line the moment the first piece of the answer exists.
CHILD = """
import importlib, json, resource, sys, time
t0 = time.perf_counter()
backend = sys.argv[3]
importlib.import_module("agent.lm_gguf" if backend == "llama.cpp" else "agent.lm_local")
from agent.lm import load_lm
t1 = time.perf_counter()
lm = load_lm(sys.argv[1], cache_dir=sys.argv[2], device="cpu", backend=backend)
t2 = time.perf_counter()
piece = next(iter(lm.stream([{"role": "user", "content": "Say hello."}], max_new_tokens=8)))
t3 = time.perf_counter()
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_token_s": t3 - t2,
                  "cpu_s": use.ru_utime + use.ru_stime,
                  "kind": type(lm).__name__, "piece": piece}), flush=True)
"""


def one_start(spec: str, cache_dir: Path, backend: str = "transformers") -> dict[str, Any]:
    """Launch a child and time it to its first token; its own phase times come back too."""
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, spec, str(cache_dir), backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    ready = time.perf_counter() - start
    if child.wait() != 0 or not line:
        raise RuntimeError(f"the child process failed (exit {child.returncode}); run it by hand")
    return {"ready_s": ready, **json.loads(line)}


def ui_start(spec: str) -> dict[str, float]:
    """Seconds from launching `citewise ui` to a page at "/" and to the real server."""
    import socket
    import tempfile
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "ui.cli", "--data-dir", tmp, "ui", "--port", str(port),
             "--lm", spec],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO,
        )  # fmt: skip
        marks: dict[str, float] = {}
        try:
            while "ready_s" not in marks and time.perf_counter() - start < 300:
                for key, path in (("page_s", "/"), ("ready_s", "/openapi.json")):
                    if key in marks:
                        continue
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                            marks[key] = time.perf_counter() - start
                    except (urllib.error.URLError, ConnectionError, TimeoutError):
                        pass
                time.sleep(0.05)
        finally:
            child.terminate()
            child.wait(timeout=60)
    return marks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--spec", default="bundled:smollm2")
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir() / "models")
    ap.add_argument("--backends", default="transformers", help="comma-separated, in order")
    ap.add_argument("--ui", action="store_true", help="time `citewise ui` to a page instead")
    args = ap.parse_args()
    if args.ui:
        starts = [ui_start(args.spec) for _ in range(args.runs + 1)][1:]  # the first warms caches
        for key, label in (("page_s", "a page at /"), ("ready_s", "the chat and API")):
            times = [r[key] for r in starts if key in r]
            print(f"citewise ui --lm {args.spec}: launch to {label}: median "
                  f"{statistics.median(times):.2f} s over {len(times)} runs")  # fmt: skip
        return

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in backends:  # the first start: converts the model if not cached
        one_start(args.spec, args.cache_dir, backend)
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    for n in range(1, args.runs + 1):
        for backend in backends:
            runs[backend].append(one_start(args.spec, args.cache_dir, backend))
            print(f"run {n}/{args.runs} {backend}: {runs[backend][-1]['ready_s']:.2f} s",
                  file=sys.stderr)  # fmt: skip
    print(f"second start of {args.spec}, {args.runs} fresh processes per backend, load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    for backend, done in runs.items():
        ready = [r["ready_s"] for r in done]
        print(
            f"{backend} ({done[0]['kind']}): first token ready median "
            f"{statistics.median(ready):.2f} s (min {min(ready):.2f}, max {max(ready):.2f}); "
            + ", ".join(f"{p} {statistics.median(r[p] for r in done):.2f}" for p in PHASES)
        )
    print("(cpu_s: the child's CPU time, all threads; on a busy machine it says more than wall "
          "time; the rest of the wall time is the interpreter's own start)")  # fmt: skip


if __name__ == "__main__":
    main()
