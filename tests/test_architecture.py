"""The layering `make check` enforces (import-linter contracts in pyproject.toml) holds, and
breaks when someone imports upward; front-ends reach the agent only through its facade."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("agent", "retrieval", "prompts", "ui", "evals")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "pyproject.toml", "--no-cache"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_the_code_keeps_the_contracts():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def skeleton(root: Path) -> None:
    """Empty packages with every module the contracts name, and the contracts."""
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    for name in PACKAGES:
        (root / name).mkdir()
        (root / name / "__init__.py").write_text("")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for contract in config["tool"]["importlinter"]["contracts"]:
        for module in contract.get("forbidden_modules", []):
            (root / (module.replace(".", "/") + ".py")).write_text("")


def test_an_upward_import_breaks_the_layers(tmp_path):
    skeleton(tmp_path)
    (tmp_path / "agent" / "api.py").write_text("import retrieval.search\n")
    (tmp_path / "retrieval" / "search.py").write_text("")
    assert lint(tmp_path).returncode == 0  # downward is fine
    (tmp_path / "retrieval" / "search.py").write_text("from agent import api\n")  # upward
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "Layers: ui above evals above agent" in result.stdout and "BROKEN" in result.stdout


def test_an_internal_import_from_a_front_end_breaks_the_facade(tmp_path):
    skeleton(tmp_path)
    (tmp_path / "ui" / "chat.py").write_text("from agent.dialogue import *\n")
    result = lint(tmp_path)
    assert result.returncode != 0 and "Front-ends use the facade" in result.stdout


# An Agent's parts are not for front-ends: they call its methods (agent/api.py).
_REACH_IN = re.compile(r"\bagent\.(library|store|manager|searcher|router)\b")


@pytest.mark.parametrize("folder", ["ui", "evals"])
def test_front_ends_do_not_reach_into_the_agent(folder):
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _REACH_IN.search(line) and not line.lstrip().startswith(("#", "from ", "import "))
    ]
    assert not found, "use the Agent's methods instead:\n" + "\n".join(found)


def test_the_network_is_blocked_in_tests():
    import socket

    with pytest.raises(OSError, match="must not use the network"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1, never routed
