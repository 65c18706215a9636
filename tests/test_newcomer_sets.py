"""The hand-written evaluation sets evals/newcomer (dev, for tuning) and evals/newcomer-holdout and
evals/newcomer-holdout2 (held out, never tuned on): well formed, answerable where they say so, and
disjoint.

Fast: the sets are read with the project's own readers (evals.sets.load_set for the cases,
retrieval.loaders.load_paths for the corpus, as `citewise eval run` ingests it); no models.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations

import pytest
from cli_run import ROOT

from evals.answer_metrics import answer_contains
from evals.sets import EvalSet, load_set
from retrieval.loaders import Skipped, load_paths
from retrieval.types import Document

SETS = {"newcomer": 7, "newcomer-holdout": 6, "newcomer-holdout2": 6}  # folder -> fewest documents
MIN_CASES = {"newcomer": 40, "newcomer-holdout": 30, "newcomer-holdout2": 40}
MIN_FOLLOWUPS = 6
DOMAINS = {"legal", "medical", "education"}
_HAN = re.compile(r"[\u4e00-\u9fff]")


def _load(name: str) -> tuple[EvalSet, dict[str, Document]]:
    evalset = load_set(ROOT / "evals" / name)
    items = list(load_paths([evalset.corpus]))
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert not skipped, skipped
    return evalset, {d.id: d for d in items if isinstance(d, Document)}


@pytest.fixture(scope="module", params=sorted(SETS))
def loaded(request) -> tuple[str, EvalSet, dict[str, Document]]:
    evalset, docs = _load(request.param)
    return request.param, evalset, docs


def _paragraphs(docs: dict[str, Document]) -> set[str]:
    """Paragraph texts; markdown headings ("## Dosage") are structure, not content."""
    paras = {p.strip() for d in docs.values() for p in d.text.split("\n\n")}
    return {p for p in paras if p and not p.startswith("#")}


def test_documents(loaded):
    name, _, docs = loaded
    assert len(docs) >= SETS[name]
    assert {d.lang for d in docs.values()} == {"en", "zh"}
    assert {d.domain for d in docs.values()} == DOMAINS
    for d in docs.values():
        assert d.source == "newcomer" and d.group == "" and d.title, d.id
        assert "\n\n" in d.text, f"{d.id}: paragraphs are separated by blank lines"
        size = len(d.text.split()) if d.lang == "en" else len(_HAN.findall(d.text))
        low, high = (150, 600) if d.lang == "en" else (300, 1200)  # words / Chinese characters
        assert low <= size <= high, f"{d.id}: {size}"


def test_cases(loaded):
    name, evalset, docs = loaded
    cases = evalset.cases
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert len(cases) >= MIN_CASES[name]
    assert {c.lang for c in cases} == {"en", "zh"}
    assert {c.domain for c in cases} == DOMAINS
    assert {c.answer_type for c in cases} == {"span", "refuse"}
    assert all(c.group == "" for c in cases)
    for c in cases:
        assert all(g in docs for g in c.gold_doc_ids), c.id
        if c.answer_type == "refuse":
            assert not c.gold_doc_ids and not c.answers and not c.history, c.id
            continue
        assert c.gold_doc_ids and c.answers, c.id
        for gold in c.gold_doc_ids:
            assert docs[gold].lang == c.lang and docs[gold].domain == c.domain, c.id
        for answer in c.answers:
            assert any(answer in docs[g].text for g in c.gold_doc_ids), (c.id, answer)
        # The scorer (answer.contains: every part, whole tokens) finds the answers in the gold
        # text itself, so an answer quoting the document can score.
        gold_text = "\n".join(docs[g].text for g in c.gold_doc_ids)
        assert answer_contains(gold_text, c.answers, c.lang) == 1.0, c.id


def test_mix(loaded):
    """About 60% plain span questions, 20% follow-ups, 20% refusals; both languages in each."""
    _, evalset, _ = loaded
    cases = evalset.cases
    followups = [c for c in cases if c.history]
    assert len(followups) >= MIN_FOLLOWUPS
    for c in followups:
        roles = [role for role, _ in c.history]
        assert roles[0] == "user" and roles[-1] == "assistant", c.id
        assert all(text.strip() for _, text in c.history), c.id
        assert c.reference.strip() and c.reference != c.question, f"{c.id}: standalone question"
    refusals = [c for c in cases if c.answer_type == "refuse"]
    assert 0.1 <= len(refusals) / len(cases) <= 0.3
    assert 0.1 <= len(followups) / len(cases) <= 0.3
    for group in (followups, refusals):
        assert {c.lang for c in group} == {"en", "zh"}


@pytest.mark.parametrize(("first", "second"), list(combinations(sorted(SETS), 2)))
def test_dev_and_holdout_are_disjoint(first, second):
    dev, dev_docs = _load(first)
    held, held_docs = _load(second)
    assert not dev_docs.keys() & held_docs.keys()
    assert not {c.id for c in dev.cases} & {c.id for c in held.cases}
    assert not {c.question for c in dev.cases} & {c.question for c in held.cases}
    assert not _paragraphs(dev_docs) & _paragraphs(held_docs)
