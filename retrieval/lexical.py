"""Turn text into the words the lexical (BM25) index stores and a query into an FTS5 MATCH string.

SQLite's FTS5 cannot split Chinese into words, so the text is segmented here and stored as words
joined by spaces; FTS5 then only splits on those spaces and stems English ('porter unicode61').
Choices measured with FTS5 bm25 over whole documents of the shared dev sets (up to 600 cases
each): jieba's `cut_for_search` (overlapping words, so 中华人民共和国 also matches 共和国) beat
plain `cut` on STARD (MRR@10 0.555 vs 0.537) and RGB-zh (0.845 vs 0.825); stemming plus dropping
stopwords from queries beat plain words on PolicyQA (MRR@10 0.358 vs 0.324). Stored text keeps its
stopwords (scores were the same), so a query made only of them still finds something and the list
can change without re-indexing.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

# Stored in each knowledge base: text indexed under another version is re-segmented on open.
VERSION = "1"
FTS_TOKENIZER = "porter unicode61"

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")
# Query words so common that they rank nothing and only make queries slower.
_STOPWORD_TEXT = (
    "a an and are as at be by did do does for from has have how in is it its of on or that the "
    "this to was were what when where which who whom why will with "
    "的 了 是 在 和 与 及 或 等 也 就 都 而 之 其 对 把 被 吗 呢 吧 啊 有 "
    "什么 哪些 哪个 怎么 怎样 如何 多少 为什么 是否"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_jieba_lock = threading.Lock()
_jieba_ready = False


def _cut_for_search(run: str) -> list[str]:
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        # Loading the dictionary takes about a second; do it once, quietly, even with threads.
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return [w for w in jieba.cut_for_search(run) if w.strip()]


def segment(text: str) -> list[str]:
    """The words of `text`, lowercased, in order, without punctuation.

    >>> segment("The Contract's terms, 2024")
    ['the', 'contract', 's', 'terms', '2024']
    """
    # NFKC folds full-width letters and digits (ＡＢＣ１２３), common in Chinese text.
    text = unicodedata.normalize("NFKC", text).lower()
    words: list[str] = []
    pos = 0
    for m in _CJK_RUN.finditer(text):
        words += _WORD.findall(text, pos, m.start())
        words += _cut_for_search(m.group())
        pos = m.end()
    words += _WORD.findall(text, pos)
    return words


def content_words(text: str) -> list[str]:
    """The words of `text` without stopwords; all of them when every word is one.

    >>> content_words("What is BM25?"), content_words("what is it")
    (['bm25'], ['what', 'is', 'it'])
    """
    words = segment(text)
    return [w for w in words if w not in _STOPWORDS] or words


def index_text(text: str) -> str:
    """What the FTS5 table stores for a chunk: its words joined by spaces."""
    return " ".join(segment(text))


def stemmed(words: list[str]) -> list[str]:
    """`words` as SQLite's 'porter unicode61' tokenizer indexes them (Porter stems, diacritics
    removed), for a BM25 index outside SQLite (Milvus), so both rank the same words.

    >>> stemmed(["contracts", "terminated", "café", "合同"])
    ['contract', 'termin', 'cafe', '合同']
    """
    stemmer = getattr(_stemmers, "porter", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _stemmers.porter = snowballstemmer.stemmer("porter")
    plain = [
        "".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c))
        if not _CJK_RUN.search(w)
        else w
        for w in words
    ]
    return list(stemmer.stemWords(plain))


# A snowball stemmer keeps the word it is working on in itself: one shared by a search and an
# ingest stems half of one word into the other ("string index out of range"). One per thread.
_stemmers = threading.local()


def match_query(query: str) -> str | None:
    """An FTS5 MATCH expression that ORs the query's words; None when it has none.

    Each word is quoted so FTS5 never reads it as an operator (AND, NEAR) or a column name.
    A query made only of stopwords ("what is it") searches for them rather than for nothing.

    >>> match_query("What is BM25?")
    '"bm25"'
    """
    words = content_words(query)
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))
