"""SIGKILL a process that is appending turns, many times: the store must stay whole every time.

A real writer (tests/state_writer.py) runs in a subprocess and prints each turn's id after the
commit. After each kill the store must pass integrity_check, hold every turn it reported, hold
every stored turn with all of its evidence rows, and number each session's turns without gaps.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.state import DialogueStore

ROOT = Path(__file__).resolve().parent.parent
WRITER = Path(__file__).with_name("state_writer.py")
KILLS = 15
BUDGET_S = 40.0


def _run_and_kill(
    db: Path, seed: int, delay_s: float, synchronous: str
) -> dict[int, tuple[str, int]]:
    """Run the writer, SIGKILL it `delay_s` after it opened the store; return what it committed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(WRITER), str(db), str(seed), synchronous]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    ready = proc.stdout.readline()
    if ready != b"ready\n":
        proc.kill()
        proc.wait()
        pytest.fail(f"writer did not start: {proc.stderr.read().decode()[-2000:]}")
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # A line cut off by the kill has no newline; it was never reported, so it is dropped.
    lines = proc.stdout.read().split(b"\n")[:-1]
    proc.stdout.close()
    proc.stderr.close()
    committed = {}
    for line in lines:
        turn_id, session_id, n = line.decode().split()
        committed[int(turn_id)] = (session_id, int(n))
    return committed


def _check_store(db: Path, reported: dict[int, tuple[str, int]]) -> int:
    """Assert every invariant a crash must not break; return how many turns the store holds."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        torn = conn.execute(
            "SELECT t.id, t.evidence_count, COUNT(e.turn_id), MIN(e.rank), MAX(e.rank) "
            "FROM turns t LEFT JOIN evidence e ON e.turn_id = t.id GROUP BY t.id "
            "HAVING COUNT(e.turn_id) != t.evidence_count OR MIN(e.rank) != 0 "
            "OR MAX(e.rank) != t.evidence_count - 1"
        ).fetchall()
        assert torn == [], f"turns with missing evidence rows: {torn[:5]}"
        gaps = conn.execute(
            "SELECT session_id, COUNT(*), MIN(idx), MAX(idx) FROM turns GROUP BY session_id "
            "HAVING MIN(idx) != 0 OR MAX(idx) != COUNT(*) - 1"
        ).fetchall()
        assert gaps == [], f"sessions with gaps in turn numbers: {gaps}"
        stored = {
            row[0]: (row[1], row[2])
            for row in conn.execute("SELECT id, session_id, evidence_count FROM turns")
        }
    finally:
        conn.close()
    lost = {i: v for i, v in reported.items() if stored.get(i) != v}
    assert lost == {}, f"{len(lost)} turns reported as committed are missing or changed"
    # The store itself opens after the crash and reads every session back whole.
    with DialogueStore(db) as store:
        for info in store.sessions():
            history = store.history(info.id)
            assert [t.idx for t in history] == list(range(info.turns))
            assert all(len(t.evidence) == stored[t.id or 0][1] for t in history)
    return len(stored)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_mid_append_never_loses_or_tears_a_turn(tmp_path: Path) -> None:
    db = tmp_path / "dialogue.db"
    rng = random.Random(20240611)
    reported: dict[int, tuple[str, int]] = {}
    deadline = time.monotonic() + BUDGET_S
    kills = 0
    while kills < KILLS and time.monotonic() < deadline:
        # Delays up to 0.3 s land anywhere in the append loop: inside a transaction, in the
        # commit's fsync, or between the commit and the report.
        synchronous = ("FULL", "NORMAL")[kills % 2]
        reported |= _run_and_kill(db, kills, rng.uniform(0.0, 0.3), synchronous)
        kills += 1
        stored = _check_store(db, reported)
    assert kills >= 10, f"only {kills} kills fit in {BUDGET_S:.0f} s; the machine is overloaded"
    assert len(reported) > kills, "the writer committed too little for the kills to test anything"
    assert stored >= len(reported)
