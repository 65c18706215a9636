"""Search latency and ingest speed of the two knowledge-base backends, at 10k and 100k passages, in
one run: the embedded FAISS + SQLite FTS5 files (the baseline) and Milvus (`store = "milvus://..."`;
Milvus Lite embedded in this process unless `--milvus` names a server), and with `--postgres`
Milvus over rows on PostgreSQL (`database_url`, a fresh database on that server per run).

Passages are pairs of sentences of the shipped demo corpus (English and Chinese) with a counter
word, so each is distinct. Vectors come from a hashing stand-in for the embedder (384-d unit
vectors seeded by the text): this measures the backends, not the model, and both get the same
vectors. Ingest is `Library.ingest_documents` over one-passage documents (SQLite rows + the
backend's index), passages per second of the whole call. Search is dense and lexical at k = 50,
as HybridSearcher asks each side, one query at a time; p50 / p95 wall ms over `--queries`.

    python -m benchmarks.bench_backends [--sizes 10000,100000] [--queries 200] [--milvus URL]
        [--postgres postgresql://user@host:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks.bench_qwen import cpu_summary
from retrieval.kb import Library
from retrieval.sentences import split_sentences
from retrieval.types import Document

CORPUS = Path(__file__).resolve().parents[1] / "retrieval" / "demo_corpus"
DIM = 384
K = 50


class HashEmbedder:
    """Deterministic unit vectors from the text's CRC: the same text, the same vector."""

    name = "bench:hash"
    dim = DIM
    max_tokens = 512

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.embed_query(t) for t in texts]) if texts else np.zeros((0, DIM))

    def embed_query(self, text: str) -> np.ndarray:
        v = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(DIM)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + len(text) // 4


def passages(n: int) -> list[str]:
    sentences = [
        s
        for path in (CORPUS / f"{name}.jsonl" for name in ("education", "legal", "medical"))
        for line in path.open(encoding="utf-8")
        for s in split_sentences(json.loads(line)["text"])
        if 20 <= len(s) <= 300
    ]
    m = len(sentences)
    return [f"{sentences[i % m]} {sentences[(i * 7 + 3) % m]} item{i}" for i in range(n)]


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on `server` ("" for none), dropped afterwards."""
    if not server:
        yield ""
        return
    import psycopg

    name = f"bench_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def measure(
    store: str, texts: list[str], queries: list[str], postgres: str = ""
) -> dict[str, float]:
    embedder = HashEmbedder()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(postgres) as url:
        if store == "milvus-lite":
            store = f"milvus://{Path(tmp) / 'milvus' / 'kb.db'}"
        lib = Library(Path(tmp) / "data", embedder_loader=lambda _: embedder, store=store,
                      database_url=url)  # fmt: skip
        lib.create("bench", embedder="bench:hash", lang="multi", chunk_tokens=512)
        docs = [Document(f"d{i}", t) for i, t in enumerate(texts)]
        start = time.perf_counter()
        lib.ingest_documents("bench", docs, progress=False)
        ingest_s = time.perf_counter() - start
        chunks = lib.info("bench").chunks
        figures = {"passages": chunks, "ingest_per_s": chunks / ingest_s}
        for side in ("dense", "lexical"):
            search = lib.dense_search if side == "dense" else lib.lexical_search
            search("bench", queries[0], K)  # warm: load the index, the analyzer
            times = []
            for q in queries:
                t = time.perf_counter()
                search("bench", q, K)
                times.append((time.perf_counter() - t) * 1000)
            figures[f"{side}_p50"] = statistics.median(times)
            figures[f"{side}_p95"] = float(np.percentile(times, 95))
        lib.close()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="passages per run")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--milvus", default="milvus-lite", help="a milvus:// server to measure")
    parser.add_argument("--postgres", default="", help="also Milvus over rows on this server")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"CPU: {cpu_summary()}; load average {os.getloadavg()[0]:.1f}")
    print("| backend | passages | ingest passages/s | dense p50 / p95 ms | lexical p50 / p95 ms |")
    print("|---|---|---|---|---|")
    for n in sizes:
        texts = passages(n)
        rng = np.random.default_rng(0)
        queries = [" ".join(texts[i].split()[:8]) for i in rng.integers(0, n, args.queries)]
        runs = [("FAISS + FTS5 (embedded)", "", ""), ("Milvus", args.milvus, "")]
        if args.postgres:
            runs.append(("Milvus + PostgreSQL", args.milvus, args.postgres))
        for label, store, postgres in runs:
            f = measure(store, texts, queries, postgres)
            print(
                f"| {label} | {f['passages']:,.0f} | {f['ingest_per_s']:,.0f} | "
                f"{f['dense_p50']:.1f} / {f['dense_p95']:.1f} | "
                f"{f['lexical_p50']:.1f} / {f['lexical_p95']:.1f} |",
                flush=True,
            )
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\npeak RSS {peak_gib:.2f} GiB")


if __name__ == "__main__":
    main()
