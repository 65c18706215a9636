"""Evaluation sets on disk: a folder with corpus.jsonl and cases.jsonl (shared/evalsets format)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

ANSWER_TYPES = ("span", "yesno", "free", "refuse")


@dataclass(frozen=True)
class Case:
    """One question with its gold documents and acceptable answers."""

    id: str
    question: str
    lang: str
    domain: str
    group: str = ""
    gold_doc_ids: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    answer_type: str = "free"
    reference: str = ""
    history: tuple[tuple[str, str], ...] = field(default=())  # (role, content) pairs


@dataclass(frozen=True)
class EvalSet:
    name: str
    corpus: Path
    cases: tuple[Case, ...]

    def content_hash(self) -> str:
        """Identifies the corpus bytes, so a knowledge base built from it can be reused."""
        h = hashlib.sha256()
        with self.corpus.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()[:12]


def _case(line: dict, where: str) -> Case:
    try:
        answer_type = line.get("answer_type", "free")
        if answer_type not in ANSWER_TYPES:
            raise ValueError(f"answer_type {answer_type!r} is not one of {ANSWER_TYPES}")
        return Case(
            id=str(line["id"]),
            question=line["question"],
            lang=line.get("lang", ""),
            domain=line.get("domain", "general"),
            group=line.get("group", ""),
            gold_doc_ids=tuple(str(g) for g in line.get("gold_doc_ids", [])),
            answers=tuple(line.get("answers", [])),
            answer_type=answer_type,
            reference=line.get("reference", ""),
            history=tuple((t["role"], t["content"]) for t in line.get("history", [])),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: not a valid case ({e}); see shared/evalsets/README.md") from e


def load_set(folder: str | Path, limit: int | None = None) -> EvalSet:
    """Read an evaluation set folder; a missing file or a bad line is an error naming it."""
    root = Path(folder)
    corpus, cases_path = root / "corpus.jsonl", root / "cases.jsonl"
    for p in (corpus, cases_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p} not found: an evaluation set needs corpus.jsonl and cases.jsonl"
            )
    cases = []
    with cases_path.open(encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if raw.strip():
                cases.append(_case(json.loads(raw), f"{cases_path}:{n}"))
            if limit is not None and len(cases) >= limit:
                break
    return EvalSet(name=root.name, corpus=corpus, cases=tuple(cases))
