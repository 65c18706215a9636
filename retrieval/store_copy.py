"""Copy every knowledge base of a data directory's citewise.db onto PostgreSQL, passage ids and
vectors kept: how `citewise migrate --to-database ... --to-store milvus://...` moves the
knowledge bases' rows off one machine. Nothing is embedded again: the Milvus collections are
then built from the copied vectors.

Passage ids are kept because they are held outside the store: in stored conversations' evidence
(a cited passage's id) and as the search index's keys. The copy is one transaction on the
target, so an interrupted migration leaves the target as empty as it was.
"""

from __future__ import annotations

from retrieval.errors import RetrievalError
from retrieval.store import Store
from retrieval.store_pg import PgStore, pg_text

_COLUMNS = {
    "kbs": "name, domain, lang, embedder, dim, chunk_tokens, overlap_tokens, lexical, generation, "
    "created_at",
    "documents": "kb, doc_id, title, domain, lang, grp, source, content_hash, n_chunks, added_at",
    "chunks": 'id, kb, doc_id, ord, text, start, "end", vector, heading',
}
BATCH = 2000


def copy_knowledge_bases(source: Store, target: PgStore) -> dict[str, int]:
    """Rows copied per table. RetrievalError if the target already holds a knowledge base."""
    with target.write() as db:
        held = db.execute("SELECT count(*) FROM kbs").fetchone()[0]
        if held:
            raise RetrievalError(
                f"{target.where} already holds {held} knowledge bases; migrate into an empty "
                "database (nothing was copied)"
            )
        counts = {}
        for table, columns in _COLUMNS.items():
            marks = ", ".join("?" * len(columns.split(",")))
            rows = source.db.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2")
            counts[table] = 0
            while batch := rows.fetchmany(BATCH):
                texts = [tuple(pg_text(v) for v in row) for row in batch]
                db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", texts)
                counts[table] += len(batch)
        # The next passage id is the one SQLite's AUTOINCREMENT would have given: past every id
        # ever handed out, deleted ones too (a stored conversation may still cite them).
        seq = source.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        db.execute(
            "SELECT setval(pg_get_serial_sequence('chunks', 'id'), "
            "GREATEST(?, COALESCE((SELECT max(id) FROM chunks), 0)) + 1, false)",
            [int(seq[0]) if seq else 0],
        )
    return counts
