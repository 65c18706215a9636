"""Run the `citewise` command as a user would: a real subprocess of this checkout's CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`citewise ARGS...` offline, from the repository root; `env` adds to the environment."""
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args],
        cwd=ROOT,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def serving_ui(argv: list[str], log: Path, timeout_s: float = 600) -> Iterator[str]:
    """`citewise ARGV... ui --port P` as a user starts it; yield its URL once it answers, stop it
    with Ctrl-C after. Output goes to `log` (a full pipe would block the server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ui.cli",
            *argv[: argv.index("ui") + 1],
            "--port",
            str(port),
            *argv[argv.index("ui") + 1 :],
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, log, timeout_s)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"citewise ui exited with {proc.returncode}: {log.read_text()}")
        try:
            # 503 while the loading page holds the port (ui/loading.py); 200 from the real server.
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise AssertionError(f"citewise ui did not answer on {url} within {timeout_s:.0f} s")
