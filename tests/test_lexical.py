"""Segmentation for the BM25 index and FTS5 query building, checked against a real FTS5 table."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

from retrieval import lexical


def test_segment_lowercases_and_drops_punctuation() -> None:
    assert lexical.segment("Hello, World! It's 2024.") == ["hello", "world", "it", "s", "2024"]


def test_segment_folds_full_width_characters() -> None:
    assert lexical.segment("ＡＢＣ１２３") == ["abc123"]


def test_segment_splits_chinese_into_words_with_search_overlaps() -> None:
    words = lexical.segment("依法成立的合同，受法律保护。中华人民共和国")
    assert {"依法", "成立", "合同", "法律", "保护"} <= set(words)
    # cut_for_search keeps the long word and adds its parts, so either form matches.
    assert {"中华人民共和国", "共和国", "人民"} <= set(words)
    assert "，" not in words and "。" not in words


def test_segment_handles_mixed_script_runs() -> None:
    assert lexical.segment("使用BM25检索") == ["使用", "bm25", "检索"]


def test_match_query_quotes_words_and_drops_stopwords() -> None:
    assert lexical.match_query("What is the BM25 score?") == '"bm25" OR "score"'


def test_match_query_keeps_stopwords_when_nothing_else_is_left() -> None:
    assert lexical.match_query("what is it") == '"what" OR "is" OR "it"'


def test_match_query_of_punctuation_is_none() -> None:
    assert lexical.match_query("?!。，") is None
    assert lexical.match_query("") is None


def test_match_query_deduplicates() -> None:
    assert lexical.match_query("law law LAW") == '"law"'


@pytest.fixture()
def fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(tokens, tokenize='{lexical.FTS_TOKENIZER}')")
    texts = {
        1: "The contracts were signed by both parties.",
        2: "依法成立的合同，受法律保护。",
        3: "Oxygen was discovered by Carl Wilhelm Scheele.",
        4: "NEAR the river AND the mill, NOT far.",
    }
    db.executemany(
        "INSERT INTO t (rowid, tokens) VALUES (?, ?)",
        [(i, lexical.index_text(text)) for i, text in texts.items()],
    )
    return db


def _search(db: sqlite3.Connection, query: str) -> list[int]:
    match = lexical.match_query(query)
    assert match is not None
    return [r[0] for r in db.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank", [match])]


def test_stemming_matches_other_word_forms(fts: sqlite3.Connection) -> None:
    assert _search(fts, "Who signs a contract?") == [1]


def test_chinese_query_finds_chinese_text(fts: sqlite3.Connection) -> None:
    assert _search(fts, "合同受法律保护吗？") == [2]


def test_fts_operators_in_queries_are_plain_words(fts: sqlite3.Connection) -> None:
    # Unquoted, these would be FTS5 syntax (and a syntax error); quoted they are words.
    assert _search(fts, 'NEAR AND NOT OR "mill') == [4]


def test_stored_text_keeps_stopwords(fts: sqlite3.Connection) -> None:
    assert sorted(_search(fts, "by")) == [1, 3]


def test_stemming_from_many_threads_at_once_gives_each_its_own_words() -> None:
    # A search stems its query while an ingest stems passages (Milvus's BM25 field); a shared
    # snowball stemmer mixed their words up or raised IndexError.
    words = [f"{w}{i}ing" for i, w in enumerate(["contract", "terminat", "notic", "agree"] * 50)]
    expected = lexical.stemmed(words)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: lexical.stemmed(words), range(200)))
    assert all(r == expected for r in results)
