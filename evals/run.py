"""`citewise eval run`: every case of a set through the Agent API, recorded and scored.

Each case is one turn of a fresh session seeded with the case's history (`Agent.new_session`),
asked of the set's knowledge base only, with the case's group as a retrieval filter: the path a
user's question takes, streamed as the UI streams it. On a GPU, workers each hold an Agent and
their generations are batched (evals/batching.py); on CPU the cases run one after another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agent.api import Agent
from agent.config import AgentConfig
from agent.types import Done, Reply, Token
from evals.batching import BatchingLM
from evals.grounding import number_in, supported_sentences
from evals.metrics import dedupe
from evals.retrieval import DEPTH, check_ingested, eval_kb_name, majority_lang
from evals.runstore import CaseRecord, RunStore
from evals.scoring import aggregate, breakdown, case_scores, rescored
from evals.sets import Case, EvalSet, load_set
from retrieval.atomic import atomic_write_text
from retrieval.types import Filters


def spread(cases: Sequence[Case], limit: int | None) -> list[Case]:
    """`limit` cases evenly spaced through the file (all when None): deterministic, and it
    reaches every part of a set whose file is ordered by source or group.

    >>> [c for c in spread(list("abcdefgh"), 3)]
    ['a', 'c', 'f']
    """
    if limit is None or limit >= len(cases):
        return list(cases)
    if limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    return [cases[i * len(cases) // limit] for i in range(limit)]


def group_corpus(evalset: EvalSet, cases: Sequence[Case], folder: Path) -> EvalSet:
    """The set with only the documents of the cases' groups, when every case names one.

    Search is filtered to the case's group, so the candidates are the same and dense ranks are
    identical; BM25's document frequencies come from the smaller knowledge base, so lexical ranks
    can differ slightly. A limited run on a large set (rgb-zh: 6,330 news passages) then embeds
    tens of documents per case instead of all of them.
    """
    groups = {c.group for c in cases}
    if "" in groups:
        return evalset
    folder.mkdir(parents=True, exist_ok=True)
    subset = folder / "corpus.jsonl"
    with evalset.corpus.open(encoding="utf-8") as src:
        kept = [line for line in src if line.strip() and json.loads(line).get("group") in groups]
    atomic_write_text(subset, "".join(kept))
    return dataclasses.replace(evalset, name=f"{evalset.name}-groups", corpus=subset)


def run_case(agent: Agent, kb: str, case: Case) -> CaseRecord:
    """One case as one streamed turn; the session is deleted afterwards."""
    history = [{"role": role, "content": text} for role, text in case.history]
    sid = agent.new_session(f"eval {case.id}", history=history)
    filters = Filters(group=case.group or None)
    started = time.perf_counter()
    first = last = 0.0
    reply: Reply | None = None
    for event in agent.stream(case.question, sid, kbs=[kb], filters=filters):
        if isinstance(event, Token):
            last = time.perf_counter()
            first = first or last
        elif isinstance(event, Done):
            reply = event.reply
    total_ms = (time.perf_counter() - started) * 1000
    agent.delete_session(sid)
    if reply is None:
        raise RuntimeError(f"case {case.id}: the turn ended without a reply")
    hits = agent.search(reply.rewritten_query, [kb], k=DEPTH, filters=filters)
    timings = {**reply.timings, "total_ms": round(total_ms, 1)}
    if "new_tokens" in reply.timings:
        timings["gen_ms"] = round((last - first) * 1000, 1)
    supported, sentences = (
        (0, 0)
        if reply.refused
        else supported_sentences(
            reply.answer,
            [h.text for h in reply.sources],
            agent.scorer,
            reply.rewritten_query,
        )
    )
    passage = {
        c.n: reply.sources[c.n - 1].text for c in reply.citations if c.n <= len(reply.sources)
    }
    record = CaseRecord(
        id=case.id,
        question=case.question,
        lang=case.lang,
        domain=case.domain,
        group=case.group,
        answer_type=case.answer_type,
        gold_doc_ids=list(case.gold_doc_ids),
        answers=list(case.answers),
        reference=case.reference,
        rewritten_query=reply.rewritten_query,
        intent=reply.route.intent,
        route_domain=reply.route.domain,
        ranked_ids=dedupe(h.doc_id for h in hits),
        retrieved_ids=dedupe(h.doc_id for h in reply.sources),
        answer=reply.answer,
        citations=[
            {
                "n": c.n,
                "doc_id": c.doc_id,
                "support": c.support,
                "verified": c.verified,
                "numbers_in_passage": number_in(c.sentence, passage.get(c.n, "")),
            }
            for c in reply.citations
        ],
        refused=reply.refused,
        n_sentences=sentences,
        n_supported=supported,
        timings=timings,
        evidence=[{"doc_id": h.doc_id, "text": h.text[:600]} for h in reply.sources],
    )
    return dataclasses.replace(record, scores=case_scores(record))


def summarize(records: Sequence[CaseRecord], meta: dict[str, Any]) -> dict[str, Any]:
    """summary.json: the run's description, flat metrics, and per-domain and per-language ones."""
    return {
        **meta,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "n": len(records),
        "metrics": aggregate(records),
        "by_domain": breakdown(records, lambda r: r.domain),
        "by_lang": breakdown(records, lambda r: r.lang),
        "by_answer_type": breakdown(records, lambda r: r.answer_type),
    }


def code_version() -> str:
    """The checkout's commit, "+dirty" when files differ from it: what produced the numbers."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:  # no git: an installed copy
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty else "")


def _eval_kb(agent: Agent, evalset: EvalSet) -> str:
    """The set's own knowledge base, through the agent (ingesting is a no-op when done)."""
    kb = eval_kb_name(evalset, None)
    if kb not in agent.kb_domains():
        agent.create_kb(kb, lang=majority_lang(evalset))
    check_ingested(evalset, agent.ingest_paths(kb, [evalset.corpus]))
    return kb


def _on_gpu(agent: Agent) -> bool:
    device = getattr(agent.lm, "device", None)
    return getattr(device, "type", "cpu") == "cuda" and hasattr(agent.lm, "batch_size")


def _settings(config: AgentConfig) -> dict[str, Any]:
    """What the config changes about answers, as JSON data (where data is stored does not)."""
    plain = {k: v for k, v in dataclasses.asdict(config).items() if k != "data_dir"}
    return json.loads(json.dumps(plain, sort_keys=True))


def default_run_dir(set_dir: str | Path, config: AgentConfig, limit: int | None) -> Path:
    """eval-runs/<set>-<config hash>-<limit>: the same command resumes the same run."""
    tag = hashlib.sha256(json.dumps(_settings(config)).encode()).hexdigest()[:8]
    return Path("eval-runs") / f"{Path(set_dir).resolve().name}-{tag}-{limit or 'all'}"


def run_eval(
    set_dir: str | Path,
    config: AgentConfig,
    out: str | Path,
    *,
    limit: int | None = None,
    progress: bool = True,
    batch: bool | None = None,
) -> dict[str, Any]:
    """Run (or resume) a set's cases, write run.db, cases.jsonl and summary.json; return the
    summary. `batch` defaults to True when the model is on a GPU."""
    evalset = load_set(set_dir)
    cases = spread(evalset.cases, limit)
    ids = "\n".join(c.id for c in cases).encode()
    meta = {
        "set": evalset.name,
        "set_dir": str(Path(set_dir).resolve()),
        "corpus_sha": evalset.content_hash(),
        "cases_sha": hashlib.sha256(ids).hexdigest()[:12],
        "limit": limit,
        "config": _settings(config),
        "model": config.lm,
    }
    store = RunStore(out)
    store.check_meta(meta)
    done = store.done_ids()
    todo = [c for c in cases if c.id not in done]
    previous = store.dir / "summary.json"
    batched = bool(json.loads(previous.read_text()).get("batched")) if previous.is_file() else False
    if todo:  # a finished run is only summarized again: no model to load
        agent = Agent(config)
        kb = _eval_kb(agent, group_corpus(evalset, cases, Path(out)))
        batched = _on_gpu(agent) if batch is None else batch
        bar = tqdm(
            total=len(cases), initial=len(done), desc=evalset.name, unit="case",
            disable=not progress,
        )  # fmt: skip
        try:
            if batched:
                _run_batched(agent, config, kb, todo, store.add, bar.update)
            else:
                for case in todo:
                    store.add(run_case(agent, kb, case))
                    bar.update()
        finally:
            bar.close()
            agent.close()
    summary = summarize(
        rescored(store.records()), {**meta, "batched": batched, "code": code_version()}
    )
    store.finish(summary)
    return summary


def _run_batched(
    base: Agent,
    config: AgentConfig,
    kb: str,
    todo: Sequence[Case],
    record: Callable[[CaseRecord], None],
    advance: Callable[[], Any],
) -> None:
    """Worker threads, each with its own Agent (SQLite handles stay in their thread), sharing one
    model through BatchingLM; records are written by the calling thread only."""
    size = int(getattr(base.lm, "batch_size", 8))
    lm = BatchingLM(base.lm, batch_size=size)
    local = threading.local()
    agents: queue.Queue[Agent] = queue.Queue()

    def work(case: Case) -> CaseRecord:
        if not hasattr(local, "agent"):
            local.agent = Agent(config, lm=lm)
            agents.put(local.agent)
        return run_case(local.agent, kb, case)

    try:
        with ThreadPoolExecutor(max_workers=size) as pool:
            for future in as_completed([pool.submit(work, c) for c in todo]):
                record(future.result())
                advance()
    finally:
        while not agents.empty():
            agents.get().close()
