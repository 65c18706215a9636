"""Retrieval metrics against values computed by hand."""

import math

import pytest

from evals.metrics import (
    dedupe,
    hit_at,
    mean_scores,
    ndcg_at,
    recall_at,
    reciprocal_rank,
    retrieval_scores,
)


def test_recall_counts_share_of_gold_found():
    assert recall_at(["a", "b", "c", "d"], ["c", "z"], 5) == 0.5
    assert recall_at(["a", "b", "c"], ["c"], 2) == 0.0
    assert recall_at(["c"], ["c"], 1) == 1.0


def test_hit_rate_counts_any_gold_where_recall_counts_the_share():
    ranked, gold = ["a", "g1", "b", "c", "d", "g2"], ["g1", "g2"]
    assert hit_at(ranked, gold, 5) == 1.0
    assert recall_at(ranked, gold, 5) == 0.5
    assert hit_at(ranked, gold, 1) == 0.0
    assert retrieval_scores(ranked, gold)["hit@5"] == 1.0
    with pytest.raises(ValueError, match="gold"):
        hit_at(ranked, [], 5)


def test_reciprocal_rank_first_gold_only():
    assert reciprocal_rank(["x", "g1", "g2"], ["g2", "g1"]) == 0.5
    assert reciprocal_rank(["x", "y"], ["g"]) == 0.0


def test_ndcg_hand_computed():
    # gold at ranks 1 and 3 of 2 gold: dcg = 1 + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3)
    expected = 1.5 / (1 + 1 / math.log2(3))
    assert ndcg_at(["a", "x", "b"], ["a", "b"], 10) == pytest.approx(expected)
    assert ndcg_at(["a", "b"], ["a", "b"], 10) == pytest.approx(1.0)
    assert ndcg_at(["x"] * 10 + ["a"], ["a"], 10) == 0.0


def test_empty_gold_is_an_error():
    with pytest.raises(ValueError, match="gold"):
        recall_at(["a"], [], 5)


def test_dedupe_and_mean():
    assert dedupe(["d1", "d1", "d2"]) == ["d1", "d2"]
    rows = [retrieval_scores(["a"], ["a"]), retrieval_scores(["b"], ["a"])]
    assert mean_scores(rows)["recall@1"] == 0.5
    assert mean_scores(rows)["mrr"] == 0.5
