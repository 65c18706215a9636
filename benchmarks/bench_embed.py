"""Embedding speed and fidelity of our MiniLM backends against LangChain's HuggingFaceEmbeddings.

Same model folder, same passages (XQuAD-en + PubMedQA chunked to the model's window), same run.
Runs alternate between the baseline and each backend so that load from other processes on a shared
machine falls on all of them alike; the table reports medians over the rounds. Fidelity is the
lowest cosine, over every passage and query, between a backend's vector and the fp32
sentence-transformers vector.

    python -m benchmarks.bench_embed [--passages 500] [--queries 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EVALSETS = Path(
    os.environ.get("CITEWISE_EVALSETS", Path(__file__).resolve().parents[2] / "shared" / "evalsets")
)
BACKENDS = ("openvino", "openvino-f32", "torch")


def load_texts(
    n_passages: int, n_queries: int, count_tokens: Callable[[str], int], max_tokens: int
) -> tuple[list[str], list[str]]:
    """Passages chunked to `max_tokens` and single-sentence queries, shuffled with a fixed seed."""
    from retrieval.chunking import chunk_text

    passages: list[str] = []
    queries: list[str] = []
    for name in ("xquad-en", "pubmedqa"):
        with (EVALSETS / name / "corpus.jsonl").open(encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)["text"]
                spans = chunk_text(text, count_tokens=count_tokens, max_tokens=max_tokens)
                passages += [s.text for s in spans]
        with (EVALSETS / name / "cases.jsonl").open(encoding="utf-8") as f:
            queries += [json.loads(line)["question"] for line in f]
    rng = random.Random(0)
    rng.shuffle(passages)
    rng.shuffle(queries)
    return passages[:n_passages], queries[:n_queries]


def query_p50_ms(embed_query: Callable[[str], object], queries: list[str]) -> float:
    times = []
    for q in queries:
        start = time.perf_counter()
        embed_query(q)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=500)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default=",".join(BACKENDS[:2]), help="comma-separated")
    parser.add_argument("--cache-dir", type=Path, default=None, help="ONNX export cache")
    args = parser.parse_args(argv)

    from langchain_huggingface import HuggingFaceEmbeddings
    from sentence_transformers import SentenceTransformer

    from retrieval.embedders import SentenceTransformerEmbedder
    from retrieval.models import resolve_model

    ref = resolve_model("bundled:minilm")
    ours = {
        b: SentenceTransformerEmbedder(ref, "cpu", backend=b, cache_dir=args.cache_dir)
        for b in args.backends.split(",")
    }
    first = next(iter(ours.values()))
    passages, queries = load_texts(
        args.passages, args.queries, first.count_tokens, first.max_tokens
    )
    baseline = HuggingFaceEmbeddings(model_name=str(ref.path), model_kwargs={"device": "cpu"})
    exact = SentenceTransformer(str(ref.path), device="cpu")
    want = exact.encode(passages + queries, normalize_embeddings=True, batch_size=32)

    systems: dict[str, tuple[Callable[[list[str]], object], Callable[[str], object]]] = {
        "langchain HuggingFaceEmbeddings": (baseline.embed_documents, baseline.embed_query)
    }
    systems |= {f"citewise {b}": (e.embed_documents, e.embed_query) for b, e in ours.items()}
    for docs, query in systems.values():  # warm up: first calls allocate and page in weights
        docs(passages[:8])
        query(queries[0])
    rates: dict[str, list[float]] = {name: [] for name in systems}
    p50s: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(args.rounds):
        for name, (docs, query) in systems.items():
            start = time.perf_counter()
            docs(passages)
            rates[name].append(len(passages) / (time.perf_counter() - start))
            p50s[name].append(query_p50_ms(query, queries))

    fidelity = {"langchain HuggingFaceEmbeddings": 1.0}
    for b, e in ours.items():
        got = np.vstack([e.embed_documents(passages), *[e.embed_query(q) for q in queries]])
        fidelity[f"citewise {b}"] = float((got * want).sum(axis=1).min())

    base = "langchain HuggingFaceEmbeddings"
    base_rate, base_p50 = statistics.median(rates[base]), statistics.median(p50s[base])
    print(
        f"\nall-MiniLM-L6-v2, {len(passages)} passages (≤{first.max_tokens} tokens), "
        f"{len(queries)} queries, median of {args.rounds} alternating rounds, "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| system | passages/s | × baseline | query p50 ms | × baseline | min cosine |")
    print("|---|---|---|---|---|---|")
    for name in systems:
        rate, p50 = statistics.median(rates[name]), statistics.median(p50s[name])
        print(
            f"| {name} | {rate:.1f} | {rate / base_rate:.2f} | {p50:.2f} | "
            f"{p50 / base_p50:.2f} | {fidelity[name]:.5f} |"
        )
    print(f"\nper-round passages/s: { {k: [round(r, 1) for r in v] for k, v in rates.items()} }")


if __name__ == "__main__":
    main()
