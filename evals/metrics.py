"""Retrieval metrics as pure functions over ranked document ids and a gold set."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def dedupe(ids: Iterable[str]) -> list[str]:
    """Keep the first occurrence of each id: chunk hits collapse to a ranked list of documents.

    >>> dedupe(["a", "b", "a", "c"])
    ['a', 'b', 'c']
    """
    return list(dict.fromkeys(ids))


def recall_at(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Share of the gold documents found in the top `k`.

    >>> recall_at(["a", "b", "c"], {"b", "z"}, 2)
    0.5
    """
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("recall needs at least one gold id")
    return len(gold_set.intersection(ranked[:k])) / len(gold_set)


def hit_at(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1.0 when any gold document is in the top `k`, else 0.0 (success@k, the "hit rate").

    Benchmarks with several gold documents per question (STARD, PolicyQA) often report this as
    "recall@k"; it equals `recall_at` only when a case has one gold document.

    >>> hit_at(["a", "b", "c"], {"b", "z"}, 2), hit_at(["a", "b"], {"z"}, 2)
    (1.0, 0.0)
    """
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("hit rate needs at least one gold id")
    return 1.0 if gold_set.intersection(ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str]) -> float:
    """1 / rank of the first gold document, 0.0 when none was retrieved.

    >>> reciprocal_rank(["a", "b", "c"], {"c"})
    0.3333333333333333
    """
    gold_set = set(gold)
    for i, doc in enumerate(ranked):
        if doc in gold_set:
            return 1.0 / (i + 1)
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Binary-relevance nDCG@k.

    >>> round(ndcg_at(["x", "a"], {"a"}, 10), 4)
    0.6309
    """
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("nDCG needs at least one gold id")
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if doc in gold_set)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(gold_set))))
    return dcg / ideal


def retrieval_scores(ranked: Sequence[str], gold: Iterable[str]) -> dict[str, float]:
    """The standard retrieval figures for one case, keyed as in summary.json."""
    gold_list = list(gold)
    return {
        "recall@1": recall_at(ranked, gold_list, 1),
        "recall@5": recall_at(ranked, gold_list, 5),
        "recall@10": recall_at(ranked, gold_list, 10),
        "hit@5": hit_at(ranked, gold_list, 5),
        "mrr": reciprocal_rank(ranked, gold_list),
        "ndcg@10": ndcg_at(ranked, gold_list, 10),
    }


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Average each key over the rows (all rows carry the same keys)."""
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
