"""One evaluation run on disk: run.db (SQLite, one row per case), cases.jsonl, summary.json.

A row is committed as soon as its case is done, so an interrupted run resumes where it stopped;
`meta` records what the run measures (set, corpus hash, config, cases) and a resume with anything
different is refused. cases.jsonl is appended as rows arrive and rewritten from the database at
the end, so it is whole even when the process died between the two writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from retrieval.atomic import atomic_write_text

_JSON_FIELDS = (
    "gold_doc_ids",
    "answers",
    "ranked_ids",
    "retrieved_ids",
    "citations",
    "timings",
    "scores",
    "evidence",
)


@dataclass(frozen=True)
class CaseRecord:
    """What one case produced; `scores` holds its per-case metrics (evals/scoring.py)."""

    id: str
    question: str
    lang: str
    domain: str
    group: str
    answer_type: str
    gold_doc_ids: list[str]
    answers: list[str]
    reference: str
    rewritten_query: str
    intent: str
    route_domain: str
    ranked_ids: list[str]  # documents the retriever ranks for the rewritten query, depth 30
    retrieved_ids: list[str]  # documents of the passages the agent answered from
    answer: str
    citations: list[dict[str, Any]]  # {"n", "doc_id", "support", "verified"}
    refused: bool
    n_sentences: int  # answer sentences (0 when refused)
    n_supported: int  # of those, supported by a passage they cite (evals/grounding.py)
    timings: dict[str, float]  # ttft_ms, total_ms, gen_ms, new_tokens, and the agent's steps
    scores: dict[str, float] = field(default_factory=dict)
    evidence: list[dict[str, str]] = field(default_factory=list)  # the passages: doc_id, text

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CaseRecord:
        values = dict(row)
        for name in _JSON_FIELDS:
            values[name] = json.loads(values[name]) if values.get(name) else []
        values["refused"] = bool(values["refused"])
        return cls(**values)


class RunStore:
    """The SQLite side of a run directory (sqlite-utils, so Datasette can browse it)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.dir / "run.db")
        self.jsonl = self.dir / "cases.jsonl"

    def check_meta(self, meta: Mapping[str, Any]) -> None:
        """Record `meta` on a new run; on a resumed one, refuse when it differs."""
        table = self.db.table("meta")
        if table.exists():
            stored = json.loads(next(iter(table.rows))["value"])
            if stored != json.loads(json.dumps(meta)):
                diff = sorted(k for k in {*stored, *meta} if stored.get(k) != meta.get(k))
                raise ValueError(
                    f"{self.dir} holds a run with different {diff}; pass another --out "
                    "or delete that folder to start over"
                )
            return
        table.insert({"key": "run", "value": json.dumps(meta, ensure_ascii=False)}, pk="key")

    def meta(self) -> dict[str, Any]:
        if not self.db.table("meta").exists():
            raise FileNotFoundError(f"{self.dir} is not an evaluation run (no run.db meta)")
        return json.loads(next(iter(self.db.table("meta").rows))["value"])

    def done_ids(self) -> set[str]:
        if not self.db.table("cases").exists():
            return set()
        return {r[0] for r in self.db.execute("SELECT id FROM cases")}

    def add(self, record: CaseRecord) -> None:
        row = asdict(record)
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], ensure_ascii=False)
        with self.db.conn:
            self.db.table("cases").insert(row, pk="id", replace=True, alter=True)
        with self.jsonl.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")

    def records(self) -> Iterator[CaseRecord]:
        if self.db.table("cases").exists():
            for row in self.db.table("cases").rows_where(order_by="rowid"):
                yield CaseRecord.from_row(row)

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Rewrite cases.jsonl from the database and write summary.json, each atomically."""
        lines = [json.dumps(asdict(r), ensure_ascii=False) for r in self.records()]
        atomic_write_text(self.jsonl, "".join(line + "\n" for line in lines))
        text = json.dumps(summary, ensure_ascii=False, indent=2) + "\n"
        atomic_write_text(self.dir / "summary.json", text)


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: finish the run first (`citewise eval run ... --out {run_dir}`)"
        )
    return json.loads(path.read_text(encoding="utf-8"))
