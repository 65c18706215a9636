"""The knowledge-base tables in SQLite: knowledge bases, documents, chunks with their vectors, BM25.

SQLite is the source of truth. A chunk row holds its text, offsets and float32 vector, so the FAISS
file beside the database can always be rebuilt from it, and every change to a document (its row,
its chunks, their lexical rows, the knowledge base's generation) commits in one transaction.
The schema is in retrieval/schema.py; connections, transactions and migrations are
retrieval/sqlite.py's, shared with the conversation store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval import lexical
from retrieval.per_thread import PerThread
from retrieval.schema import MIGRATIONS, DocInfo, KBInfo, KBState, create_fts, fts_table
from retrieval.sections import passage_text
from retrieval.sqlite import connect, immediate, migrate, utc_now
from retrieval.types import Filters, Hit, Span
from retrieval.write_lock import WriteLock

if TYPE_CHECKING:
    from sqlite_utils import Database

__all__ = ["DB_NAME", "DocInfo", "KBInfo", "KBState", "Store", "fts_table", "utc_now"]

DB_NAME = "citewise.db"
BUSY_TIMEOUT_S = 30.0  # an ingest commits a batch at a time; searches wait for it this long


_KB_SELECT = """SELECT name, domain, lang, embedder, dim, chunk_tokens, overlap_tokens, generation,
    created_at, (SELECT count(*) FROM documents d WHERE d.kb = k.name),
    (SELECT count(*) FROM chunks c WHERE c.kb = k.name), lexical FROM kbs k"""
_HIT_COLUMNS = """c.id, c.doc_id, c.text, c.start, c."end", d.title, d.domain, d.lang, d.grp,
    d.source, c.heading"""
_FILTER_COLUMNS = {"domain": "d.domain", "lang": "d.lang", "group": "d.grp", "source": "d.source"}


def _filter_sql(filters: Filters) -> tuple[str, list[str]]:
    clauses, params = [], []
    for name, column in _FILTER_COLUMNS.items():
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f" AND {column} = ?")
            params.append(value)
    return "".join(clauses), params


_INDEX_ROWS = """SELECT c.id, c.vector, c.text, c.heading, d.doc_id, d.domain, d.lang, d.grp,
    d.source FROM chunks c JOIN documents d ON d.kb = c.kb AND d.doc_id = c.doc_id WHERE c.kb = ?"""


@dataclass(frozen=True)
class IndexRow:
    """One chunk as a search index outside SQLite stores it (retrieval/milvus_index.py)."""

    id: int
    vector: np.ndarray
    tokens: str  # the passage's words as FTS5 indexes them (segmented, stemmed), for BM25
    doc_id: str
    domain: str
    lang: str
    group: str
    source: str


def _index_row(row: tuple) -> IndexRow:
    cid, vector, text, heading, doc_id, domain, lang, grp, source = row
    tokens = " ".join(lexical.stemmed(lexical.segment(passage_text(Span(text, 0, 0, heading)))))
    return IndexRow(cid, np.frombuffer(vector, dtype=np.float32), tokens, doc_id, domain, lang,
                    grp, source)  # fmt: skip


class Store:
    """The SQLite side of every knowledge base in one data directory.

    Each thread gets its own connection (WAL lets readers run beside the one writer), so a Library
    can serve searches from several threads. Writes go through `write()`.
    """

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        self.where = str(self.path)
        self._conns: PerThread[Any] = PerThread(
            lambda: connect(self.path, BUSY_TIMEOUT_S), lambda db: db.conn.close()
        )
        migrate(self.db, MIGRATIONS)

    @property
    def db(self) -> Database:
        """This thread's connection."""
        return self._conns.get()

    def close(self) -> None:
        self._conns.close()

    @contextmanager
    def write(self) -> Iterator[Database]:
        """A transaction that takes SQLite's write lock up front and commits or rolls back whole."""
        with immediate(self.db) as db:
            yield db

    def write_lock(self, lock_dir: Path) -> WriteLock:
        """What every writer of these knowledge bases takes: a file lock in the data directory."""
        return WriteLock(lock_dir / ".lock")

    # --- knowledge bases -------------------------------------------------------------------

    def kb(self, name: str) -> KBInfo | None:
        row = self.db.execute(_KB_SELECT + " WHERE name = ?", [name]).fetchone()
        return KBInfo(*row) if row else None

    def state(self, name: str) -> KBState | None:
        """What says whether cached indexes of a knowledge base are current, in one row read."""
        row = self.db.execute(
            "SELECT created_at, generation, lexical, embedder FROM kbs WHERE name = ?", [name]
        ).fetchone()
        return KBState(*row) if row else None

    def kbs(self) -> list[KBInfo]:
        return [KBInfo(*row) for row in self.db.execute(_KB_SELECT + " ORDER BY name")]

    def insert_kb(self, db: Database, info: KBInfo) -> None:
        """Add the kbs row and its FTS table (inside the caller's transaction)."""
        db.execute(
            "INSERT INTO kbs (name, domain, lang, embedder, dim, chunk_tokens, overlap_tokens, "
            "lexical, generation, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [info.name, info.domain, info.lang, info.embedder, info.dim, info.chunk_tokens,
             info.overlap_tokens, lexical.VERSION, info.generation, info.created_at],
        )  # fmt: skip
        self._create_lexical(db, info.name)

    def _create_lexical(self, db: Database, kb: str) -> None:
        """The lexical index of a new knowledge base: its FTS5 table (PostgreSQL: Milvus's)."""
        create_fts(db, kb)

    def update_kb(self, db: Database, name: str, **fields: str | int) -> None:
        sets = ", ".join(f"{column} = ?" for column in fields)
        db.execute(f"UPDATE kbs SET {sets} WHERE name = ?", [*fields.values(), name])

    def bump_generation(self, db: Database, name: str) -> int:
        db.execute("UPDATE kbs SET generation = generation + 1 WHERE name = ?", [name])
        return int(db.execute("SELECT generation FROM kbs WHERE name = ?", [name]).fetchone()[0])

    def delete_kb(self, db: Database, name: str) -> None:
        for table in ("chunks", "documents"):
            db.execute(f"DELETE FROM {table} WHERE kb = ?", [name])
        db.execute("DELETE FROM kbs WHERE name = ?", [name])
        self._drop_lexical(db, name)

    def _drop_lexical(self, db: Database, kb: str) -> None:
        db.execute(f"DROP TABLE IF EXISTS {fts_table(kb)}")

    # --- documents and chunks --------------------------------------------------------------

    def doc_hashes(self, kb: str, doc_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for i in range(0, len(doc_ids), 500):
            part = list(doc_ids[i : i + 500])
            marks = ",".join("?" * len(part))
            sql = f"SELECT doc_id, content_hash FROM documents WHERE kb = ? AND doc_id IN ({marks})"
            found.update(self.db.execute(sql, [kb, *part]).fetchall())
        return found

    def documents(self, kb: str) -> list[DocInfo]:
        rows = self.db.execute(
            "SELECT doc_id, title, domain, lang, grp, source, content_hash, n_chunks, added_at "
            "FROM documents WHERE kb = ? ORDER BY doc_id",
            [kb],
        )
        return [DocInfo(*row) for row in rows]

    def delete_document(self, db: Database, kb: str, doc_id: str) -> list[int] | None:
        """Remove a document, its chunks and lexical rows; return the chunk ids (None if absent)."""
        if not db.execute(
            "SELECT 1 FROM documents WHERE kb = ? AND doc_id = ?", [kb, doc_id]
        ).fetchone():
            return None
        ids = [
            r[0]
            for r in db.execute("SELECT id FROM chunks WHERE kb = ? AND doc_id = ?", [kb, doc_id])
        ]
        self._unindex_words(db, kb, ids)
        db.execute("DELETE FROM chunks WHERE kb = ? AND doc_id = ?", [kb, doc_id])
        db.execute("DELETE FROM documents WHERE kb = ? AND doc_id = ?", [kb, doc_id])
        return ids

    def insert_document(
        self, db: Database, kb: str, doc: DocInfo, spans: Sequence[Span], vectors: np.ndarray
    ) -> list[int]:
        """Add a document (absent from `kb`) with its chunks and lexical rows; return chunk ids."""
        text = self._text
        db.execute(
            "INSERT INTO documents (kb, doc_id, title, domain, lang, grp, source, content_hash, "
            "n_chunks, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [kb, doc.doc_id, text(doc.title), doc.domain, doc.lang, doc.group, doc.source,
             doc.content_hash, len(spans), doc.added_at],
        )  # fmt: skip
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = []
        for i, span in enumerate(spans):
            row = [kb, doc.doc_id, i, text(span.text), span.start, span.end, vectors[i].tobytes(),
                   text(span.heading)]  # fmt: skip
            ids.append(self._insert_chunk(db, row))
        self._index_words(db, kb, ids, spans)
        return ids

    # What the PostgreSQL store (retrieval/store_pg.py) does its own way: text it can hold, the
    # id of a new row, and the lexical index (Milvus's there, FTS5 here).
    @staticmethod
    def _text(value: str) -> str:
        return value

    def _insert_chunk(self, db: Database, values: list[object]) -> int:
        cur = db.conn.execute(
            'INSERT INTO chunks (kb, doc_id, ord, text, start, "end", vector, heading) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        return int(cur.lastrowid or 0)

    def _index_words(
        self, db: Database, kb: str, ids: Sequence[int], spans: Sequence[Span]
    ) -> None:
        db.conn.executemany(
            f"INSERT INTO {fts_table(kb)} (rowid, tokens) VALUES (?, ?)",
            [(i, lexical.index_text(passage_text(s))) for i, s in zip(ids, spans, strict=True)],
        )

    def _unindex_words(self, db: Database, kb: str, ids: Sequence[int]) -> None:
        db.conn.executemany(f"DELETE FROM {fts_table(kb)} WHERE rowid = ?", [(i,) for i in ids])

    def document(self, kb: str, doc_id: str) -> tuple[DocInfo, list[Span]] | None:
        """A document's row and its chunks in order; None if it is not stored."""
        row = self.db.execute(
            "SELECT doc_id, title, domain, lang, grp, source, content_hash, n_chunks, added_at "
            "FROM documents WHERE kb = ? AND doc_id = ?",
            [kb, doc_id],
        ).fetchone()
        if row is None:
            return None
        rows = self.db.execute(
            'SELECT text, start, "end", heading FROM chunks WHERE kb = ? AND doc_id = ? '
            "ORDER BY ord",
            [kb, doc_id],
        )
        return DocInfo(*row), [Span(*r) for r in rows]

    def vectors(self, kb: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) of `kb` in id order: what the FAISS index is rebuilt from."""
        rows = self.db.execute("SELECT id, vector FROM chunks WHERE kb = ? ORDER BY id", [kb])
        ids, blobs = [], []
        for chunk_id, blob in rows:
            ids.append(chunk_id)
            blobs.append(blob)
        vecs = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), dim)
        return np.asarray(ids, dtype=np.int64), vecs

    def index_rows(
        self, kb: str, ids: Sequence[int] | None = None, batch: int = 2000
    ) -> Iterator[list[IndexRow]]:
        """What an external index (Milvus) stores of each chunk of `kb`, or of `ids`, in batches:
        id, vector, the words the lexical index holds, and the filter fields."""
        if ids is None:
            rows = self.db.execute(_INDEX_ROWS + " ORDER BY c.id", [kb])
            while chunk := rows.fetchmany(batch):
                yield [_index_row(r) for r in chunk]
            return
        for i in range(0, len(ids), batch):
            part = [int(x) for x in ids[i : i + batch]]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(_INDEX_ROWS + f" AND c.id IN ({marks})", [kb, *part])
            yield [_index_row(r) for r in rows.fetchall()]

    def chunk_texts(self, kb: str) -> list[tuple[int, str]]:
        """(id, text as embedded and indexed: with its heading path) of every chunk of `kb`."""
        rows = self.db.execute(
            "SELECT id, text, heading FROM chunks WHERE kb = ? ORDER BY id", [kb]
        ).fetchall()
        return [(i, passage_text(Span(text, 0, 0, heading))) for i, text, heading in rows]

    def set_vectors(self, db: Database, ids: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        db.conn.executemany(
            "UPDATE chunks SET vector = ? WHERE id = ?",
            [(vectors[i].tobytes(), int(cid)) for i, cid in enumerate(ids)],
        )

    def refill_fts(self, db: Database, kb: str) -> None:
        """Segment every chunk of `kb` again into a fresh FTS table (lexical.VERSION moved)."""
        db.execute(f"DROP TABLE IF EXISTS {fts_table(kb)}")
        create_fts(db, kb)
        db.conn.executemany(
            f"INSERT INTO {fts_table(kb)} (rowid, tokens) VALUES (?, ?)",
            [(i, lexical.index_text(text)) for i, text in self.chunk_texts(kb)],
        )
        db.execute("UPDATE kbs SET lexical = ? WHERE name = ?", [lexical.VERSION, kb])

    # --- search ----------------------------------------------------------------------------

    def allowed_ids(self, kb: str, filters: Filters) -> np.ndarray | None:
        """Chunk ids of `kb` whose document passes `filters`; None when nothing is filtered."""
        where, params = _filter_sql(filters)
        if not params:
            return None
        rows = self.db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.kb = c.kb AND d.doc_id = c.doc_id "
            "WHERE c.kb = ?" + where,
            [kb, *params],
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def hits(self, kb: str, ids: Sequence[int], scores: Sequence[float], side: str) -> list[Hit]:
        """Hits for chunk ids in the given order; ids deleted meanwhile are left out."""
        if len(ids) == 0:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT {_HIT_COLUMNS} FROM chunks c JOIN documents d "
            f"ON d.kb = c.kb AND d.doc_id = c.doc_id WHERE c.kb = ? AND c.id IN ({marks})",
            [kb, *(int(i) for i in ids)],
        )
        by_id = {row[0]: row for row in rows}
        found = [(by_id[int(i)], float(s)) for i, s in zip(ids, scores, strict=True) if i in by_id]
        return [_hit(kb, row, score, side, rank) for rank, (row, score) in enumerate(found)]

    def lexical(self, kb: str, match: str, k: int, filters: Filters) -> list[Hit]:
        """The best `k` chunks for an FTS5 MATCH expression by BM25, filters applied in SQL."""
        where, params = _filter_sql(filters)
        rows = self.db.execute(
            # f.rank is bm25(); an aliased FTS5 table is matched through its column.
            f"SELECT {_HIT_COLUMNS}, f.rank FROM {fts_table(kb)} f "
            "JOIN chunks c ON c.id = f.rowid "
            "JOIN documents d ON d.kb = c.kb AND d.doc_id = c.doc_id "
            f"WHERE f.tokens MATCH ?{where} ORDER BY f.rank LIMIT ?",
            [match, *params, k],
        )
        # FTS5's bm25() is negative, lower is better; negate it so larger is better like cosine.
        return [_hit(kb, row[:-1], -row[-1], "lexical", rank) for rank, row in enumerate(rows)]


def _hit(kb: str, row: tuple, score: float, side: str, rank: int) -> Hit:
    chunk_id, doc_id, text, start, end, title, domain, lang, grp, source, heading = row
    return Hit(
        chunk_id=chunk_id,
        doc_id=doc_id,
        kb=kb,
        score=score,
        text=text,
        title=title,
        domain=domain,
        lang=lang,
        group=grp,
        source=source,
        start=start,
        end=end,
        heading=heading,
        ranks={side: rank},
    )
