"""Helper for tests/test_crash.py: ingests documents in child processes that the test SIGKILLs.

Usage: crash_ingest.py DATA_DIR KB CORPUS.jsonl

Loading torch and MiniLM takes seconds, so this process loads the embedder once (without running
it, which keeps fork safe) and forks a fresh child for every "go" line read from stdin. The child
ingests the corpus with small batches, writing the index after every commit, so a kill can land
in any step. Lines written: "ready", then per child "pid N", the child's own "done ADDED
UNCHANGED" when it finishes, and "exit STATUS" (negative: killed by that signal).
"""

from __future__ import annotations

import json
import os
import sys

from retrieval.embedders import load_embedder
from retrieval.kb import Library
from retrieval.types import Document


def main(data_dir: str, kb: str, corpus: str) -> None:
    embedder = load_embedder("bundled:minilm")
    with open(corpus, encoding="utf-8") as f:
        docs = [Document(**json.loads(line)) for line in f]
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            continue
        pid = os.fork()
        if pid == 0:
            library = Library(
                data_dir, embedder_loader=lambda spec: embedder, batch_docs=4, save_every_s=0
            )
            report = library.ingest_documents(kb, docs, progress=False)
            print(f"done {report.added} {report.unchanged}", flush=True)
            os._exit(0)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"exit {code}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
