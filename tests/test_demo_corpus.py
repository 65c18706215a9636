"""The shipped demo corpus: loads cleanly, is attributed, stays small, and answers its cases."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from retrieval.demo import DEMO_CASES, DEMO_DIR, SAMPLE_QUERIES, demo_corpus_files
from retrieval.lang import detect_lang
from retrieval.loaders import Skipped, load_paths
from retrieval.types import Document

SOURCES = {
    "legal": {"stard": "zh", "policyqa": "en"},
    "medical": {"pubmedqa": "en", "cmb-clin": "zh"},
    "education": {"xquad-en": "en", "xquad-zh": "zh"},
}
LICENCES = {
    "LICENSE-STARD.txt": "MIT License",
    "LICENSE-PolicyQA.txt": "MIT License",
    "LICENSE-PubMedQA.txt": "MIT License",
    "LICENSE-CMB.txt": "Apache License",
    "LICENSE-XQuAD-CC-BY-SA-4.0.txt": "Attribution-ShareAlike 4.0",
}
CASE_FIELDS = {
    "id", "question", "history", "lang", "domain", "group",
    "gold_doc_ids", "answers", "answer_type", "reference", "kb",
}  # fmt: skip


@pytest.fixture(scope="module")
def kbs() -> dict[str, dict[str, Document]]:
    out = {}
    for kb, path in demo_corpus_files().items():
        items = list(load_paths([path]))
        assert [i for i in items if isinstance(i, Skipped)] == []
        docs = [i for i in items if isinstance(i, Document)]
        out[kb] = {d.id: d for d in docs}
        assert len(out[kb]) == len(docs), f"duplicate ids in {kb}"
    return out


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    with DEMO_CASES.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_each_kb_holds_its_sources_in_both_languages(kbs):
    assert set(kbs) == set(SOURCES)
    for kb, docs in kbs.items():
        assert {d.domain for d in docs.values()} == {kb}
        by_source = Counter(d.source for d in docs.values())
        assert set(by_source) == set(SOURCES[kb]), kb
        for doc in docs.values():
            assert doc.lang == SOURCES[kb][doc.source] == detect_lang(doc.text)
    assert 300 <= sum(len(docs) for docs in kbs.values()) <= 500


def test_policyqa_comes_as_whole_websites_and_xquad_in_parallel(kbs):
    sites = Counter(d.group for d in kbs["legal"].values() if d.source == "policyqa")
    assert len(sites) == 3 and min(sites.values()) >= 10
    education = kbs["education"]
    english = {i.removeprefix("xq-en-") for i in education if i.startswith("xq-en-")}
    chinese = {i.removeprefix("xq-zh-") for i in education if i.startswith("xq-zh-")}
    assert english == chinese and len(english) == 40


def test_the_folder_is_small_and_every_source_is_attributed():
    files = [p for p in DEMO_DIR.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    attribution = (DEMO_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for name, marker in LICENCES.items():
        assert marker in (DEMO_DIR / name).read_text(encoding="utf-8")
        assert name in attribution
    for source in ("STARD", "PolicyQA", "PubMedQA", "CMB-Clin", "XQuAD", "CC BY-SA 4.0"):
        assert source in attribution
    corpus_text = "".join(p.read_text(encoding="utf-8") for p in DEMO_DIR.glob("*.jsonl"))
    assert '"source": "rgb' not in corpus_text  # non-commercial licence: never shipped


def test_cases_cover_every_kb_in_both_languages(cases):
    assert 35 <= len(cases) <= 50
    assert len({c["id"] for c in cases}) == len(cases)
    assert all(set(c) == CASE_FIELDS for c in cases)
    assert {(c["kb"], c["lang"]) for c in cases} == {
        (kb, lang) for kb in SOURCES for lang in ("en", "zh")
    }


def test_every_case_is_answerable_from_its_kb(kbs, cases):
    for case in cases:
        docs = kbs[case["kb"]]
        gold = [docs[i] for i in case["gold_doc_ids"]]
        assert gold, case["id"]
        assert all(d.domain == case["domain"] for d in gold)
        if case["group"]:
            assert {d.group for d in gold} == {case["group"]}
        if case["answer_type"] == "span":
            for answer in case["answers"]:
                assert any(answer in d.text for d in gold), (case["id"], answer)


# The passage that answers each sample query, as a phrase from it.
SAMPLE_ANSWERS = {
    "谁可以成为个体工商户？": "自然人从事工商业经营，经依法登记，为个体工商户",
    "Does Ticketmaster knowingly collect information from children under 13?": (
        "We do not knowingly collect personally identifiable information from children under 13"
    ),
    "右下腹痛并自扪及包块3小时的病人，腹部X线检查见到什么？": "可见阶梯状液气平",
    "Can tailored telephone counseling increase mammography screening among HMO women?": (
        "tailored telephone counseling more effective than tailored print materials"
    ),
    "黑豹队的防守丢了多少分？": "黑豹队的防守只丢了 308分",
    "When did Carl Wilhelm Scheele discover oxygen?": "Carl Wilhelm Scheele, in Uppsala, in 1773",
}


def test_sample_queries_are_one_per_language_and_answered_in_their_kb(kbs):
    assert set(SAMPLE_QUERIES) == set(SOURCES)
    for kb, queries in SAMPLE_QUERIES.items():
        assert sorted(detect_lang(q) for q in queries) == ["en", "zh"]
        text = "\n".join(d.text for d in kbs[kb].values())
        for query in queries:
            assert SAMPLE_ANSWERS[query] in text, query
