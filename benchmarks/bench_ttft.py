"""Time to first token of whole agent turns: 10 English and 10 Chinese demo questions.

    python -m benchmarks.bench_ttft [--data-dir DIR] [--max-new-tokens 16] [--context-tokens N]
        [--lm bundled:qwen1.5b] [--lm-backend llama.cpp]

Each question from the demo corpus cases (retrieval/demo_corpus/cases.jsonl, spread over the legal,
medical and education knowledge bases) is asked in a new session of a real Agent: SmolLM2 on CPU
(or --lm, run as --lm-backend says: agent/lm.py), hybrid retrieval on the demo kbs, the gate and
verification. Time to first token is measured the way a user sees it, from `Agent.stream` to
the first Token event (an answer's first piece, or a refusal's text), after one warm-up turn.
Reported: p50 / p95 over the 20 turns, and the median of where the time goes (rewrite + route,
retrieval, gate, the model's own time to first token).
The demo kbs are ingested first (not timed) into --data-dir, or a temporary folder without it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from agent.api import Agent
from agent.config import AgentConfig, TurnConfig
from agent.types import Done, Retrieved, Routed, Token
from retrieval.demo import DEMO_CASES, demo_corpus_files
from retrieval.kb import Library

WARM_UP = "When did Carl Wilhelm Scheele discover oxygen?"


def questions(per_lang: int = 10) -> list[tuple[str, str]]:
    """(lang, question): `per_lang` per language, taken in turn from each knowledge base."""
    cases = [json.loads(line) for line in DEMO_CASES.open(encoding="utf-8")]
    out = []
    for lang in ("en", "zh"):
        kbs = sorted({c["kb"] for c in cases})
        by_kb = {kb: [c for c in cases if (c["lang"], c["kb"]) == (lang, kb)] for kb in kbs}
        picked: list[str] = []
        while len(picked) < per_lang and any(by_kb.values()):
            for pool in by_kb.values():
                if pool and len(picked) < per_lang:
                    picked.append(pool.pop(0)["question"])
        out += [(lang, q) for q in picked]
    return out


def ingest_demo(folder: Path) -> None:
    library = Library(folder)
    for kb, path in demo_corpus_files().items():
        library.ingest_paths(kb, [path], domain=kb, progress=False)
    library.close()


def timed_turn(agent: Agent, question: str) -> dict[str, float | bool | str]:
    """Milliseconds from the call to each step of one turn, its intent and whether it refused."""
    start = time.perf_counter()
    marks: dict[str, float | bool | str] = {}
    for event in agent.stream(question):
        now = (time.perf_counter() - start) * 1000
        if isinstance(event, Routed):
            marks["routed"] = now
            marks["intent"] = event.route.intent
        elif isinstance(event, Retrieved):
            marks["retrieved"] = now
        elif isinstance(event, Token) and "first_token" not in marks:
            marks["first_token"] = now
        elif isinstance(event, Done):
            marks["refused"] = event.reply.refused
            marks["lm_ttft"] = event.reply.timings.get("lm_ttft_ms", 0.0)
            marks["total"] = now
    return marks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data-dir", help="keep the demo kbs here between runs")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument(
        "--context-tokens",
        type=int,
        default=TurnConfig.context_tokens,
        help="passage tokens in the answer prompt (a large value puts every passage in whole)",
    )
    ap.add_argument("--lm", default=AgentConfig.lm)
    ap.add_argument("--lm-backend", default="auto", choices=("auto", "llama.cpp", "transformers"))
    ap.add_argument("--time-limit-s", type=float, default=TurnConfig.time_limit_s)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data_dir) if args.data_dir else Path(tmp)
        ingest_demo(folder)  # unchanged documents are skipped, so a second run starts at once
        config = AgentConfig.load(
            data_dir=str(folder),
            device="cpu",
            max_new_tokens=args.max_new_tokens,
            context_tokens=args.context_tokens,
            lm=args.lm,
            lm_backend=args.lm_backend,
            time_limit_s=args.time_limit_s,
        )
        agent = Agent(config)
        timed_turn(agent, WARM_UP)
        rows = []
        for lang, question in questions():
            marks = timed_turn(agent, question)
            rows.append((lang, marks))
            print(
                f"{lang} ttft {marks['first_token']:7.0f} ms  {marks['intent']:9} "
                f"refused {marks['refused']!s:5}  {question[:50]!r}",
                flush=True,
            )
        agent.close()

    def column(key: str, lang: str | None = None) -> list[float]:
        return [float(m[key]) for lg, m in rows if lang in (None, lg)]

    print("\n| turns | TTFT p50 (ms) | TTFT p95 (ms) |")
    print("|---|---|---|")
    for which in (None, "en", "zh"):
        ttft = column("first_token", which)
        p50, p95 = percentile(ttft, 0.5), percentile(ttft, 0.95)
        print(f"| {which or 'all'} ({len(ttft)}) | {p50:.0f} | {p95:.0f} |")
    # Turns the model answered from retrieved passages (not refused, not a canned clarification).
    answered = [m for _, m in rows if "retrieved" in m and not m["refused"]]
    print(f"\n{len(answered)} of {len(rows)} answered from the kbs; their medians (ms):")
    for key, label in (
        ("routed", "call to Routed (rewrite + route)"),
        ("retrieved", "call to Retrieved (+ hybrid search)"),
        ("first_token", "call to first token (+ gate, prompt, model prefill)"),
        ("lm_ttft", "the model's own time to first token (prefill)"),
        ("total", "call to Done (+ decoding, verification, store)"),
    ):
        print(f"- {label}: {statistics.median(float(m[key]) for m in answered):.0f}")


if __name__ == "__main__":
    main()
