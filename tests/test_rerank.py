"""EmbeddingReranker reorders fused hits by what a second embedder reads in their text."""

from __future__ import annotations

import dataclasses

import pytest

from retrieval.rerank import EmbeddingReranker
from retrieval.types import Hit

QUERY = "What is the capital of France?"
TEXTS = [
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The Eiffel Tower was completed in 1889 for the World's Fair.",
    "Paris is the capital and largest city of France.",
]


def hits(texts: list[str]) -> list[Hit]:
    return [
        Hit(chunk_id=i, doc_id=f"d{i}", kb="kb", score=1.0 - i / 10, text=t, ranks={"dense": i})
        for i, t in enumerate(texts)
    ]


def test_reranker_moves_the_answer_to_the_top(e5_embedder):
    reranked = EmbeddingReranker(e5_embedder).rerank(QUERY, hits(TEXTS))
    assert reranked[0].chunk_id == 2  # the first stage had it last
    assert [h.ranks["rerank"] for h in reranked] == [0, 1, 2]
    assert reranked[0].ranks["dense"] == 2  # first-stage ranks are kept
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
    assert {h.chunk_id for h in reranked} == {0, 1, 2}


def test_weight_zero_keeps_the_first_stage_order(e5_embedder):
    reranked = EmbeddingReranker(e5_embedder, weight=0.0).rerank(QUERY, hits(TEXTS))
    assert [h.chunk_id for h in reranked] == [0, 1, 2]


def test_inputs_are_not_mutated_and_edge_cases(e5_embedder):
    original = hits(TEXTS)
    snapshot = [dataclasses.replace(h, ranks=dict(h.ranks)) for h in original]
    reranker = EmbeddingReranker(e5_embedder)
    reranker.rerank(QUERY, original)
    assert [h.ranks for h in original] == [h.ranks for h in snapshot]
    assert reranker.rerank(QUERY, []) == []
    single = reranker.rerank(QUERY, hits(TEXTS[:1]))
    assert single[0].ranks["rerank"] == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        EmbeddingReranker(e5_embedder, weight=1.5)


def test_passage_vectors_are_reused_across_turns(e5_embedder):
    calls: list[int] = []

    class Counting:
        """The real e5 embedder, counting passages it is asked to embed."""

        name, dim, max_tokens = e5_embedder.name, e5_embedder.dim, e5_embedder.max_tokens

        def embed_documents(self, texts):
            calls.append(len(texts))
            return e5_embedder.embed_documents(texts)

        def embed_query(self, text):
            return e5_embedder.embed_query(text)

        def count_tokens(self, text):
            return e5_embedder.count_tokens(text)

    reranker = EmbeddingReranker(Counting(), cache_size=2)
    first = reranker.rerank(QUERY, hits(TEXTS))
    again = reranker.rerank(QUERY, hits(TEXTS[1:]))
    assert calls == [3]  # the two most recent passages were cached
    assert [h.text for h in again] == [h.text for h in first if h.chunk_id != 0]
