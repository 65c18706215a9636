"""Hybrid search: weighted reciprocal-rank fusion, and real retrieval over the demo kbs."""

from __future__ import annotations

import json

import pytest

from evals.metrics import dedupe, recall_at
from retrieval.demo import DEMO_CASES, SAMPLE_QUERIES
from retrieval.search import FusionConfig, HybridSearcher, fuse
from retrieval.types import Filters, Hit


def _hit(cid: int, doc: str = "") -> Hit:
    return Hit(chunk_id=cid, doc_id=doc or f"d{cid}", kb="kb", score=0.0, text=f"text {cid}")


def test_fuse_rewards_agreement_and_records_ranks():
    fused = fuse([_hit(1), _hit(2), _hit(3)], [_hit(3), _hit(4)], (1.0, 1.0))
    assert fused[0].chunk_id == 3  # on both lists
    assert fused[0].ranks == {"dense": 2, "lexical": 0}
    assert {h.chunk_id for h in fused} == {1, 2, 3, 4}


def test_fuse_weights_decide_between_disagreeing_sides():
    dense, lexical = [_hit(1), _hit(2)], [_hit(2), _hit(1)]
    assert fuse(dense, lexical, (1.0, 0.3))[0].chunk_id == 1
    assert fuse(dense, lexical, (0.3, 1.0))[0].chunk_id == 2


def test_fuse_limit_returns_the_head_of_the_full_ranking():
    dense = [_hit(i) for i in range(1, 40)]
    lexical = [_hit(i) for i in range(60, 20, -1)]
    full = fuse(dense, lexical, (1.0, 0.6))
    head = fuse(dense, lexical, (1.0, 0.6), limit=5)
    assert [h.chunk_id for h in head] == [h.chunk_id for h in full[:5]]
    assert [h.score for h in head] == [h.score for h in full[:5]]


def test_small_rrf_constant_lets_a_side_top_hit_beat_middling_agreement():
    # Chunk 1 is first on the dense side only; chunk 9 is eighth on both sides.
    dense = [_hit(1), *(_hit(i) for i in range(20, 26)), _hit(9)]
    lexical = [*(_hit(i) for i in range(30, 37)), _hit(9)]
    assert fuse(dense, lexical, (1.0, 1.0))[0].chunk_id == 1  # default rrf_k = 5
    assert fuse(dense, lexical, (1.0, 1.0), rrf_k=60)[0].chunk_id == 9


def test_fusion_config_rejects_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        FusionConfig(weights={"zh": (0.0, 0.0)})
    with pytest.raises(ValueError, match="rrf_k"):
        FusionConfig(rrf_k=-1)


class _Empty:
    def dense_search(self, kb, query, k, filters):
        return []

    def lexical_search(self, kb, query, k, filters):
        return []


def test_search_validates_mode_and_k():
    searcher = HybridSearcher(_Empty())
    with pytest.raises(ValueError, match="mode"):
        searcher.search("q", ["kb"], mode="semantic")
    with pytest.raises(ValueError, match="k"):
        searcher.search("q", ["kb"], k=0)
    assert searcher.search("   ", ["kb"]) == []


def _demo_cases() -> list[dict]:
    with DEMO_CASES.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.slow
def test_hybrid_recall_on_demo_cases_is_at_least_each_side(demo_library):
    searcher = HybridSearcher(demo_library)
    cases = _demo_cases()
    recall: dict[str, float] = {}
    for mode in ("dense", "lexical", "hybrid"):
        total = 0.0
        for case in cases:
            hits = searcher.search(
                case["question"],
                [case["kb"]],
                k=30,
                mode=mode,
                filters=Filters(group=case["group"] or None),
            )
            total += recall_at(dedupe(h.doc_id for h in hits), case["gold_doc_ids"], 5)
        recall[mode] = total / len(cases)
    assert recall["hybrid"] >= 0.85, recall
    assert recall["hybrid"] >= max(recall["dense"], recall["lexical"]) - 0.03, recall


@pytest.mark.slow
def test_sample_queries_find_their_kb_across_all_kbs(demo_library):
    searcher = HybridSearcher(demo_library)
    kbs = ["legal", "medical", "education"]
    for kb, queries in SAMPLE_QUERIES.items():
        for q in queries:
            assert searcher.search(q, kbs, k=3)[0].kb == kb, q


@pytest.mark.slow
def test_filters_apply_inside_both_sides(demo_library):
    searcher = HybridSearcher(demo_library)
    q = "When did Carl Wilhelm Scheele discover oxygen?"
    zh_only = searcher.search(q, ["education"], k=5, filters=Filters(lang="zh"))
    assert zh_only and all(h.lang == "zh" for h in zh_only)
    group = searcher.search("privacy children", ["legal"], k=10, filters=Filters(group="yahoo.com"))
    assert group and all(h.group == "yahoo.com" for h in group)
    assert searcher.search(q, ["education"], k=5, filters=Filters(group="no-such-group")) == []
