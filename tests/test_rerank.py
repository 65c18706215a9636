"""EvidenceReranker reorders fused hits by their best sentence under the trained evidence model."""

from __future__ import annotations

import pytest

from agent.citations import SupportScorer
from agent.evidence import EvidenceFinder
from agent.evidence_rerank import EvidenceReranker
from retrieval.types import Hit

QUERY = "What is the maximum dose of paracetamol an adult can take in 24 hours?"
TEXTS = [
    "Paracetamol is a common painkiller. Talk to a doctor first if you have liver problems.",
    "Keep all medicines out of the sight and reach of children.",
    "Adults can take 1 or 2 500 mg tablets up to 4 times in 24 hours.",
]


def hits(texts: list[str]) -> list[Hit]:
    return [
        Hit(chunk_id=i, doc_id=f"d{i}", kb="kb", score=1.0 - i / 10, text=t, ranks={"dense": i})
        for i, t in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def finder(e5_embedder):
    return EvidenceFinder(SupportScorer(e5_embedder))


def test_the_passage_that_answers_moves_to_the_top(finder):
    reranked = EvidenceReranker(finder, weight=0.7).rerank(QUERY, hits(TEXTS))
    assert reranked[0].chunk_id == 2  # the first stage had it last
    assert [h.ranks["rerank"] for h in reranked] == [0, 1, 2]
    assert reranked[0].score > reranked[1].score


def test_weight_zero_keeps_the_first_stage_and_depth_bounds_the_work(finder):
    assert [h.chunk_id for h in EvidenceReranker(finder, 0.0).rerank(QUERY, hits(TEXTS))] == [
        0,
        1,
        2,
    ]
    # Only the first `depth` are rescored; the rest follow in their incoming order.
    shallow = EvidenceReranker(finder, weight=1.0, depth=2).rerank(QUERY, hits(TEXTS))
    assert shallow[-1].chunk_id == 2 and "rerank" not in shallow[-1].ranks
    assert EvidenceReranker(finder).rerank(QUERY, []) == []


@pytest.mark.parametrize("kwargs", [{"weight": 1.5}, {"weight": -0.1}, {"depth": 0}])
def test_bad_settings_are_refused(finder, kwargs):
    with pytest.raises(ValueError):
        EvidenceReranker(finder, **kwargs)
