"""Helper for tests/test_crash.py: ingests documents in child processes that the test SIGKILLs.

Usage: crash_ingest.py DATA_DIR KB CORPUS.jsonl

Importing torch, sentence-transformers and ONNX Runtime takes seconds, so this process does it
once and forks a fresh child for every "go" line read from stdin; the child loads MiniLM (well
under a second) and ingests the corpus in small batches, writing the index after every commit, so
a kill can land in any step. The model is not loaded before the fork: loading starts threads (tqdm's
monitor among them), and a lock held by one of those at fork time would hang the child.

Lines written: "ready", then per child "pid N", the child's own "done ADDED UNCHANGED" when it
finishes, and "exit STATUS" (negative: killed by that signal).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import sentence_transformers  # noqa: F401  (torch, transformers)

import retrieval.dense  # noqa: F401  (faiss)
from retrieval.embedders import load_embedder
from retrieval.kb import Library
from retrieval.paths import store_setting
from retrieval.types import Document

with contextlib.suppress(ImportError):
    import openvino  # noqa: F401


def main(data_dir: str, kb: str, corpus: str) -> None:
    with open(corpus, encoding="utf-8") as f:
        docs = [Document(**json.loads(line)) for line in f]
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            continue
        pid = os.fork()
        if pid == 0:
            library = Library(
                data_dir, embedder_loader=load_embedder, batch_docs=4, save_every_s=0,
                store=store_setting(),  # $CITEWISE_STORE: the Milvus variant of the test
            )  # fmt: skip
            report = library.ingest_documents(kb, docs, progress=False)
            print(f"done {report.added} {report.unchanged}", flush=True)
            os._exit(0)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"exit {code}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
