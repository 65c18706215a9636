"""SIGKILL a real ingest at many points: every time, the knowledge base must load whole.

tests/crash_ingest.py ingests 200 English documents with MiniLM in forked children, four per
commit, writing the FAISS file and manifest after every commit, into a knowledge base that already
holds a committed state. The first child is killed while it starts up; each of the others once it
has made its n-th commit (seen by polling the generation) plus a short delay, with n and the delay
spread so that kills land right after a commit, in the index writes and while embedding, early
and late in the run, on a slow machine or a fast one. After each kill a fresh Library must load
the knowledge base (repairing the index if needed), pass check_kb (every chunk has its vector, its
lexical row and its index entry; every document is whole or absent) and still find passages of
the state before. A rerun then finishes the ingest. Run for both backends: the FAISS files, and a
Milvus Lite server the killed processes were writing to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retrieval.kb import Library
from retrieval.store import DB_NAME
from retrieval.types import Document

ROOT = Path(__file__).resolve().parent.parent
HELPER = Path(__file__).with_name("crash_ingest.py")
N_DOCS = 200
TEXT_CHARS = 300  # short documents: what is under test is the writing, not the embedding
DEADLINE_S = 300.0
# Per child: (commits to wait for, then seconds to wait). 29 of the 48 batches get committed in
# all, so the last child still has work left and every child dies mid-ingest.
KILLS = ((0, 0.05), (1, 0.0), (1, 0.01), (2, 0.03), (4, 0.0), (8, 0.05), (13, 0.02))


def _open(path: Path, embedder: Any, store: str = "") -> Library:
    return Library(path, embedder_loader=lambda spec: embedder, store=store)


class Helper:
    """The crash_ingest.py process: forks an ingesting child on demand and reports how it ended."""

    def __init__(self, data: Path, corpus: Path, log: Path, store: str = "") -> None:
        paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(paths),
            "TOKENIZERS_PARALLELISM": "false",
            "CITEWISE_STORE": store,
        }
        self.log = log.open("w")
        cmd = [sys.executable, str(HELPER), str(data), "kb", str(corpus)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env
        )
        self.log_path = log
        self.child = 0
        # A hung child or helper must fail the test, not hang it: kill both after a deadline.
        self.watchdog = threading.Timer(DEADLINE_S, self._abort)
        self.watchdog.start()
        assert self._line() == "ready"

    def _abort(self) -> None:
        if self.child:
            _kill(self.child)
        self.proc.kill()

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail(
                f"crash_ingest.py died or passed the {DEADLINE_S} s deadline: "
                + self.log_path.read_text()[-3000:]
            )
        return line.strip()

    def start(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        kind, pid = self._line().split()
        assert kind == "pid"
        self.child = int(pid)
        return self.child

    def outcome(self) -> tuple[int, list[int] | None]:
        """(exit status, [added, unchanged] if the child finished its ingest)."""
        done = None
        while True:
            kind, *rest = self._line().split()
            if kind == "done":
                done = [int(x) for x in rest]
            elif kind == "exit":
                return int(rest[0]), done

    def close(self) -> None:
        self.watchdog.cancel()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # still waiting for a child that did not finish
            self._abort()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


def _generation(data: Path) -> int:
    uri = f"file:{data / DB_NAME}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
        return int(db.execute("SELECT generation FROM kbs WHERE name = 'kb'").fetchone()[0])


def _wait_for_commits(data: Path, target: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _generation(data) < target:
        if time.monotonic() > deadline:
            pytest.fail(f"the ingest did not reach generation {target} in {timeout_s} s")
        time.sleep(0.002)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the child had already finished
        os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["files", "milvus"])
def test_ingest_survives_sigkill_at_any_point(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    english_docs: list[Document],
    minilm_embedder: Any,
    check_kb: Callable[..., None],
) -> None:
    # Milvus: a Milvus Lite server process, which the killed ingests leave running, as a Milvus
    # server outlives the citewise processes that die while writing to it.
    store = request.getfixturevalue("milvus_server") if backend == "milvus" else ""
    docs = [dataclasses.replace(d, text=d.text[:TEXT_CHARS]) for d in english_docs[:N_DOCS]]
    assert len(docs) == N_DOCS
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(dataclasses.asdict(d)) + "\n" for d in docs))
    data = tmp_path / "data"
    lib = _open(data, minilm_embedder, store)
    lib.ingest_documents("kb", docs[:8], progress=False)  # the committed state before any crash
    lib.close()
    # Probes: documents whose text is unique in the corpus (XQuAD and PubMedQA, not PolicyQA).
    by_id = {d.id: d for d in docs[:120]}
    present = [docs[0].id, docs[7].id]

    helper = Helper(data, corpus, tmp_path / "helper.log", store)
    killed = 0
    try:
        for commits, delay_s in KILLS:
            generation = _generation(data)
            pid = helper.start()
            _wait_for_commits(data, generation + commits)
            time.sleep(delay_s)
            _kill(pid)
            status, _ = helper.outcome()
            killed += status == -signal.SIGKILL

            lib = _open(data, minilm_embedder, store)
            check_kb(lib, "kb")
            for doc_id in present:
                text = by_id[doc_id].text
                assert [h.doc_id for h in lib.dense_search("kb", text, 1)] == [doc_id]
                assert [h.doc_id for h in lib.lexical_search("kb", text, 1)] == [doc_id]
            stored = [d.doc_id for d in lib.documents("kb") if d.doc_id in by_id]
            present = [present[0], max(stored, key=lambda i: docs.index(by_id[i]))]
            lib.close()
        assert killed == len(KILLS), "every child should have died mid-ingest"

        helper.start()
        status, done = helper.outcome()
        assert status == 0 and done is not None and sum(done) == N_DOCS
    finally:
        helper.close()
    lib = _open(data, minilm_embedder, store)
    check_kb(lib, "kb")
    assert sorted(d.doc_id for d in lib.documents("kb")) == sorted(d.id for d in docs)
