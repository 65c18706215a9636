"""Load on the HTTP API: concurrent `openai` clients on loopback against the real server.

    python -m benchmarks.bench_load [--clients 10] [--seconds 60] [--max-new-tokens 16]
                                    [--data-dir DIR] [--json-out FILE]

The app `citewise ui` serves (ui/server.py: API + Gradio chat) runs under uvicorn on a free
loopback port over the demo knowledge bases (ingested first, not timed, into --data-dir or a
temporary folder), with the real Agent: SmolLM2 on CPU, hybrid retrieval, gate, verification.
Each client asks its own demo question, streaming, again and again in one session of its own
until the time is up (requests started before the end are finished). Checked: no request fails;
every reply names the client's session; afterwards every session holds exactly its client's turns,
and each reply's answer is the one stored under its turn id. Reported, as JSON and a table: time
to first token (request sent to the first content chunk, the wait for the shared model included),
whole-request time, answers per minute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai

from agent.api import Agent
from agent.config import AgentConfig
from benchmarks.bench_ttft import ingest_demo, questions
from ui.server import background_server, create_app
from ui.settings import ServerSettings


@dataclass
class ClientLog:
    question: str
    session_id: str = ""
    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)  # final chunks' citewise fields
    errors: list[str] = field(default_factory=list)


def run_client(base_url: str, log: ClientLog, deadline: float) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=900)
    while time.monotonic() < deadline:
        extra = {"session_id": log.session_id} if log.session_id else None
        start = time.perf_counter()
        first: float | None = None
        final: dict[str, Any] = {}
        try:
            stream = client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": log.question}],
                stream=True,
                extra_body=extra,
            )
            for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter()
                if chunk.choices and chunk.choices[0].finish_reason:
                    tokens = chunk.usage.completion_tokens if chunk.usage else 0
                    final = {**(chunk.model_extra or {}), "new_tokens": tokens}
        except Exception as e:  # counted and reported; the run goes on after a pause
            log.errors.append(f"{type(e).__name__}: {e}")
            time.sleep(1.0)
            continue
        if not final:
            log.errors.append("the stream ended without its final chunk")
            continue
        log.session_id = log.session_id or final["session_id"]
        if final["session_id"] != log.session_id:
            log.errors.append(f"reply for session {final['session_id']}, not {log.session_id}")
        log.replies.append(final)
        end = time.perf_counter()
        log.ttft_ms.append(((first or end) - start) * 1000)
        log.total_ms.append((end - start) * 1000)


def check_sessions(agent: Agent, logs: list[ClientLog]) -> list[str]:
    """Cross-talk check: each session holds only its client's turns, each reply its own answer."""
    problems = []
    for log in logs:
        turns = {t.id: t for t in agent.history(log.session_id)} if log.session_id else {}
        if len(turns) != len(log.replies):
            problems.append(f"{log.session_id}: {len(turns)} turns stored, {len(log.replies)} sent")
        if any(t.user_text != log.question for t in turns.values()):
            problems.append(f"{log.session_id}: holds another client's question")
        for reply in log.replies:
            stored = turns.get(reply["turn_id"])
            if stored is None or stored.answer != reply["answer"]:
                problems.append(f"{log.session_id}: turn {reply['turn_id']} is not its reply")
    return problems


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return round(values[0], 1) if values else float("nan")
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--data-dir", help="reuse (or fill) this data dir; default: a temporary one")
    p.add_argument("--json-out", help="also write the results here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data_dir or tmp)
        if not (data / "citewise.db").is_file():
            ingest_demo(data)
        # The time limit covers the wait for the shared model, so it is set far above the run.
        config = AgentConfig.load(
            data_dir=str(data), max_new_tokens=args.max_new_tokens, time_limit_s=3600
        )
        agent = Agent(config)
        settings = ServerSettings(rate_limit_per_minute=100_000, max_queue=max(64, args.clients))
        asked = questions(per_lang=(args.clients + 1) // 2)
        logs = [ClientLog(q) for _, q in asked[: args.clients]]
        with background_server(create_app(agent, settings)) as url:
            agent.ask("When did Carl Wilhelm Scheele discover oxygen?")  # warm-up, not timed
            t0 = time.monotonic()
            deadline = t0 + args.seconds
            threads = [
                threading.Thread(target=run_client, args=(url, log, deadline)) for log in logs
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - t0
        problems = check_sessions(agent, logs)
        agent.close()

    ttft = [v for log in logs for v in log.ttft_ms]
    # Refusals and fixed replies skip the model; answers wait for it and generate.
    generated = [
        v for log in logs for v, r in zip(log.ttft_ms, log.replies, strict=True) if r["new_tokens"]
    ]
    total = [v for log in logs for v in log.total_ms]
    errors = [e for log in logs for e in log.errors]
    result = {
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "max_new_tokens": args.max_new_tokens,
        "requests": len(ttft),
        "errors": len(errors),
        "session_problems": len(problems),
        "answers_per_min": round(len(ttft) / elapsed * 60, 1),
        "ttft_ms": {
            "p50": pct(ttft, 50),
            "p95": pct(ttft, 95),
            "max": round(max(ttft, default=0.0), 1),
        },
        "generated_answers": len(generated),
        "ttft_generated_ms": {"p50": pct(generated, 50), "p95": pct(generated, 95)},
        "total_ms": {
            "p50": pct(total, 50),
            "p95": pct(total, 95),
            "max": round(max(total, default=0.0), 1),
        },
        "per_client_requests": [len(log.ttft_ms) for log in logs],
        "error_samples": errors[:5],
        "problem_samples": problems[:5],
        "clients_detail": [
            {k: v for k, v in asdict(log).items() if k != "replies"} for log in logs
        ],
    }
    print(f"{args.clients} clients, {elapsed:.0f} s, max_new_tokens={args.max_new_tokens}")
    print(
        "| requests | errors | cross-session | answers/min | TTFT p50 | TTFT p95 "
        "| model answers | their TTFT p50 | p95 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    gen = result["ttft_generated_ms"]
    print(
        f"| {result['requests']} | {result['errors']} | {result['session_problems']} "
        f"| {result['answers_per_min']} | {result['ttft_ms']['p50']:.0f} ms "
        f"| {result['ttft_ms']['p95']:.0f} ms | {len(generated)} | {gen['p50']:.0f} ms "
        f"| {gen['p95']:.0f} ms |"
    )
    summary = {k: v for k, v in result.items() if k != "clients_detail"}
    print(json.dumps(summary, ensure_ascii=False))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    if errors or problems or not ttft:
        raise SystemExit("load run failed: see errors / session problems above")


if __name__ == "__main__":
    main()
