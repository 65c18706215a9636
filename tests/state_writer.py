"""Append turns to a dialogue store until killed; run by test_state_crash.py as a subprocess.

Usage: python tests/state_writer.py DB_PATH SEED [SYNCHRONOUS]. Prints "ready" once the store is
open, then "TURN_ID SESSION_ID EVIDENCE_COUNT" for each turn, only after append_turn committed it.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from agent.state import DialogueStore, EvidenceRecord, TurnRecord

SESSIONS = ("alpha", "beta", "gamma")


def main() -> None:
    path, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    store = DialogueStore(path)
    if len(sys.argv) > 3:
        # With FULL, ~90% of an append is the commit's fsync, so most kills land there; NORMAL
        # skips it, putting most kills inside the transaction. Atomicity must hold under both.
        store._sql.db.execute(f"PRAGMA synchronous={sys.argv[3]}")
    print("ready", flush=True)
    while True:
        session_id = rng.choice(SESSIONS)
        # Passages of ~1.5 KB make each turn span several pages, so a kill can land mid-write.
        evidence = tuple(
            EvidenceRecord("kb", f"doc{rank}", rng.randrange(10**6), rng.random(), "证据" * 750)
            for rank in range(rng.randint(2, 8))
        )
        turn = TurnRecord(user_text=f"question {seed}", answer="a" * 3000, evidence=evidence)
        turn_id = store.append_turn(session_id, turn)
        print(turn_id, session_id, len(evidence), flush=True)


if __name__ == "__main__":
    main()
