"""A knowledge base created or dropped by another process is seen by a running agent at once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LEAFLET = """# Paracetamol 500 mg tablets

Adults and children over 16 may take one or two tablets every 4 to 6 hours.
Do not take more than 4,000 mg (8 tablets) in 24 hours.
"""
QUESTION = "How much paracetamol can an adult take in 24 hours at most?"


def _cli(data, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "ui.cli", "--data-dir", str(data), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_kb_added_and_dropped_by_the_cli_is_routed_to_and_then_not(tmp_path, scripted_lm):
    from agent import Agent
    from agent.config import AgentConfig

    data = tmp_path / "data"
    lm = scripted_lm(respond=lambda messages: "An adult can take at most 4,000 mg in 24 hours [1].")
    agent = Agent(AgentConfig(data_dir=str(data), device="cpu"), lm=lm)
    try:
        assert agent.kb_domains() == {}
        leaflet = tmp_path / "leaflet.md"
        leaflet.write_text(LEAFLET, encoding="utf-8")
        _cli(data, "ingest", "--kb", "clinic", "--domain", "medical", "--lang", "en", str(leaflet))

        assert agent.kb_domains() == {"clinic": "medical"}
        reply = agent.ask(QUESTION)  # the router chooses: no kbs named
        assert not reply.refused and "4,000 mg" in reply.answer, reply.answer
        assert {c.kb for c in reply.citations} == {"clinic"}

        _cli(data, "kb", "drop", "clinic")
        assert agent.kb_domains() == {}
        after = agent.ask(QUESTION)
        assert not after.citations and "4,000" not in after.answer, after.answer
    finally:
        agent.close()
