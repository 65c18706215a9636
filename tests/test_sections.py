"""Passages a citation can point at (retrieval/sections.py): one article, one heading section or
one paragraph group each, with the heading path; `Library.rechunk` re-cuts a stored knowledge base.
"""

from __future__ import annotations

import pytest

from retrieval import sections
from retrieval.kb import Library
from retrieval.search import HybridSearcher
from retrieval.sections import passages
from retrieval.types import Document, Span

LAW = """某市劳动合同管理办法

第一章 总则

第一条 为了规范劳动合同的订立和履行，保护劳动者的合法权益，制定本办法。
第二条 本市行政区域内的企业与劳动者建立劳动关系，适用本办法。

第二章 试用期与解除

第十八条 劳动合同期限三个月以上不满一年的，试用期不得超过一个月。
第十九条 劳动者在试用期内提前三日通知用人单位，可以解除劳动合同。
劳动者提前三十日以书面形式通知用人单位，可以解除劳动合同。
第二十条 用人单位超过一个月未与劳动者订立书面劳动合同的，应当每月支付二倍的工资。
"""

LEAFLET = """# Paracetamol 500 mg tablets

## How to take

Adults and children over 16: take one or two tablets every 4 to 6 hours.

Do not take more than 8 tablets (4,000 mg) in 24 hours.

## Warnings

Do not drink alcohol while taking this medicine.
"""


def test_every_article_is_its_own_passage_however_short_the_file():
    got = passages(LAW, count_tokens=len, max_tokens=1000)
    articles = [s.text.split()[0] for s in got if "条" in s.text[:6]]
    assert [s for s in got if s.text.startswith("第十九条")], got
    nineteen = next(s for s in got if "第十九条" in s.text)
    assert "第十八条" not in nineteen.text and "第二十条" not in nineteen.text
    assert nineteen.heading == "第二章 试用期与解除"
    assert len(got) == 5 and len(articles) >= 3


def test_sections_carry_their_heading_path_and_keep_offsets():
    got = passages(LEAFLET, count_tokens=len, max_tokens=1000, group_tokens=60)
    assert [s.heading for s in got] == [
        "Paracetamol 500 mg tablets › How to take",
        "Paracetamol 500 mg tablets › How to take",
        "Paracetamol 500 mg tablets › Warnings",
    ]
    for s in got:
        assert LEAFLET[s.start : s.end] == s.text
    covered = "".join(LEAFLET[s.start : s.end] for s in got)
    assert "".join(covered.split()) == "".join(LEAFLET.split())  # nothing dropped


def test_a_section_over_the_embedder_limit_is_cut_by_size():
    long = "## Long\n\n" + " ".join(f"Sentence {i} is here." for i in range(200))
    got = passages(long, count_tokens=lambda t: len(t.split()), max_tokens=50)
    assert len(got) > 10 and all(len(s.text.split()) <= 50 for s in got)
    assert {s.heading for s in got} == {"Long"}


@pytest.mark.slow
def test_rechunk_recuts_a_knowledge_base_built_whole(tmp_path, e5_embedder, monkeypatch):
    lib = Library(tmp_path, embedder_loader=lambda spec: e5_embedder)
    doc = Document("law", LAW, title="劳动合同管理办法", domain="legal", lang="zh")
    whole = lambda text, **kw: [Span(text.strip(), 0, len(text.strip()))]  # noqa: E731
    monkeypatch.setattr(sections, "passages", whole)
    monkeypatch.setattr(sections, "VERSION", "1")
    lib.ingest_documents("legal", [doc], progress=False)
    assert lib.info("legal").chunks == 1
    monkeypatch.undo()
    report = lib.rechunk("legal", progress=False)
    assert report.replaced == 1 and lib.info("legal").chunks == 5
    hits = HybridSearcher(lib).search("试用期内提前几天通知可以解除劳动合同", ["legal"], k=1)
    assert hits[0].text.startswith("第十九条") and hits[0].heading == "第二章 试用期与解除"
    lib.close()


@pytest.mark.parametrize("text", ["", "   \n\n  ", "# Only a heading"])
def test_degenerate_documents(text):
    got = passages(text, count_tokens=len, max_tokens=100)
    assert all(text[s.start : s.end] == s.text for s in got)
    assert len(got) == (1 if text.strip() else 0)
