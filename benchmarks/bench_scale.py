"""Dense index latency and recall at scale: exact flat at 100k, IVF (and optionally HNSW) at 1M.

The exact flat index scans a float16 copy first and rescores exactly (retrieval/half_scan.py); the
"float32 scan only" row is the same index without that first pass, for comparison.

Vectors are synthetic unit vectors in 384 dimensions drawn from a clustered mixture (points
scattered around ~1,000-point cluster centres, cosine ≈ 0.6 to their centre), because uniform
random vectors have no neighbourhoods and make approximate search look worse than it is on real
embeddings. Queries come from the same mixture but are not in the index. Recall@10 is measured
against exact inner-product search over the same vectors. Queries run one at a time, as a chat
turn issues them.

    python -m benchmarks.bench_scale [--n 1000000] [--flat-n 100000] [--queries 200] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import faiss
import numpy as np

from retrieval.dense import DenseIndex

DIM = 384
K = 10
CLUSTER_SIZE = 1000
CLUSTERS_PER_TOPIC = 10
# Noise norms relative to the centre's (before normalizing): a point has cosine 1/sqrt(1 + 1.3²)
# ≈ 0.61 to its cluster centre, and sibling clusters of one topic have cosine 1/(1 + 0.5²) = 0.8,
# so a query's true neighbours spill into nearby clusters as they do between related documents.
NOISE = 1.3
TOPIC_NOISE = 0.5
CHUNK = 100_000


class Mixture:
    """Deterministic clustered unit vectors: rows [start, stop) are the same on every call."""

    def __init__(self, n: int, seed: int = 0) -> None:
        n_clusters = max(1, n // CLUSTER_SIZE)
        rng = np.random.default_rng(seed)
        topics = rng.standard_normal((-(-n_clusters // CLUSTERS_PER_TOPIC), DIM), dtype=np.float32)
        topic_of = np.arange(n_clusters) // CLUSTERS_PER_TOPIC
        spread = rng.standard_normal((n_clusters, DIM), dtype=np.float32) * TOPIC_NOISE
        self.centres = unit(unit(topics)[topic_of] + spread / np.sqrt(DIM))
        self.seed = seed

    def rows(self, start: int, stop: int, salt: int = 0) -> np.ndarray:
        rng = np.random.default_rng((self.seed, salt, start))
        which = rng.integers(0, len(self.centres), stop - start)
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32)
        return unit(self.centres[which] + noise * (NOISE / np.sqrt(DIM)))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def p50_ms(
    index: DenseIndex, queries: np.ndarray, allowed: np.ndarray | None = None
) -> tuple[float, float]:
    """Median wall and CPU ms per query (CPU time is what load from others cannot inflate)."""
    wall, cpu = [], []
    for q in queries:
        start, start_cpu = time.perf_counter(), time.process_time()
        index.search(q, K, allowed_ids=allowed)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def recall_at_k(index: DenseIndex, queries: np.ndarray, truth: np.ndarray) -> float:
    found = [set(index.search(q, K)[0].tolist()) for q in queries]
    return float(np.mean([len(f & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)]))


def build(
    kind: str, mixture: Mixture, n: int, queries: np.ndarray, **params: int
) -> tuple[DenseIndex, np.ndarray, float]:
    """Add n vectors chunk by chunk (train on the first), tracking exact top-k on the way.

    Never holds more than one chunk beside the index, so peak memory is the index itself.
    """
    index = DenseIndex(DIM, kind, **params)
    heap = faiss.ResultHeap(len(queries), K, keep_max=True)
    seconds = 0.0
    for start in range(0, n, CHUNK):
        x = mixture.rows(start, min(n, start + CHUNK))
        ids = np.arange(start, start + len(x), dtype=np.int64)
        t0 = time.perf_counter()
        index.add(ids, x)
        seconds += time.perf_counter() - t0
        scores, rows = faiss.knn(queries, x, K, metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(scores, rows + start)
    heap.finalize()
    return index, heap.I, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="size of the large index")
    parser.add_argument("--flat-n", type=int, default=100_000, help="size of the exact index")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw", action="store_true", help="also build HNSW at --n (slow)")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--threads", type=int, default=0, help="FAISS threads (0: its default)")
    args = parser.parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    if args.quick:
        args.n, args.flat_n, args.queries = 100_000, 20_000, 50

    started = time.perf_counter()
    rows: list[tuple[str, int, float, tuple[float, float], float, str]] = []

    mixture = Mixture(args.flat_n)
    queries = mixture.rows(0, args.queries, salt=1)
    flat, truth, build_s = build("flat", mixture, args.flat_n, queries)
    allowed = np.arange(0, args.flat_n, 10, dtype=np.int64)
    flat.half_scan_from = 0  # the float16 first pass at every size (the default from 50,000)
    exact = recall_at_k(flat, queries, truth)
    rows.append(("flat (exact)", args.flat_n, build_s, p50_ms(flat, queries), exact, "≤ 10 ms"))
    rows.append(
        ("flat, filter to 10%", args.flat_n, 0.0, p50_ms(flat, queries, allowed), exact, "")
    )
    flat.half_scan_from = args.flat_n + 1
    plain = recall_at_k(flat, queries, truth)
    rows.append(("flat, float32 scan only", args.flat_n, 0.0, p50_ms(flat, queries), plain, ""))
    del flat

    mixture = Mixture(args.n)
    queries = mixture.rows(0, args.queries, salt=1)
    kinds = ["ivf", "hnsw"] if args.hnsw else ["ivf"]
    for kind in kinds:
        # sqrt(n) lists of ~sqrt(n) vectors: k-means and assignment stay cheap on two cores.
        params = {"nlist": int(np.sqrt(args.n))} if kind == "ivf" else {}
        index, truth, build_s = build(kind, mixture, args.n, queries, **params)
        default = (index.nprobe or 0) if kind == "ivf" else index.ef_search
        for knob in sorted({8, 16, 32, 64, 128, default}):
            if kind == "ivf":
                index.nprobe = knob
            else:
                index.ef_search = knob
            name = "nprobe" if kind == "ivf" else "efSearch"
            label = f"{kind}, {name} {knob}" + (" (default)" if knob == default else "")
            recall = recall_at_k(index, queries, truth)
            target = "≤ 30 ms, ≥ 0.97" if knob == default else ""
            rows.append((label, args.n, build_s, p50_ms(index, queries), recall, target))
            build_s = 0.0  # reported once per index
        del index

    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(
        f"\nDenseIndex, {DIM}-d synthetic clustered unit vectors (~{CLUSTER_SIZE} per cluster), "
        f"{args.queries} single queries, k={K}, faiss {faiss.__version__}, "
        f"{faiss.omp_get_max_threads()} threads\n"
    )
    print("| index | vectors | build s | p50 ms | CPU ms/query | recall@10 | target |")
    print("|---|---|---|---|---|---|---|")
    for label, n, build_s, (p50, cpu), recall, target in rows:
        built = f"{build_s:.1f}" if build_s else "–"
        print(f"| {label} | {n:,} | {built} | {p50:.2f} | {cpu:.2f} | {recall:.3f} | {target} |")
    total = time.perf_counter() - started
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\npeak RSS {peak_gib:.2f} GiB; total {total:.0f} s; load average {load}")


if __name__ == "__main__":
    main()
