"""Moving a database to another embedding model (`dakera reindex`).

New vectors are staged in a plain table in committed batches, so an interrupted reindex
resumes where it stopped and leaves the old vectors in place; `finish` swaps them in one
transaction (recreating the vector table when the dimension changes) and records the model.
The sentence vectors of memories of several sentences are staged and swapped in with them.
"""

from __future__ import annotations

import numpy as np

from app.store.protocol import ConnSource, StagedRow

STAGE = "reindex_stage"


class SqliteReindex:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def begin(self, model_id: str) -> None:
        """Start (or resume) moving to `model_id` (a write): vectors staged for another
        model are dropped."""
        conn = self._conn()
        row = conn.execute("SELECT value FROM meta WHERE key = 'reindex_target'").fetchone()
        if row is None or row[0] != model_id:
            conn.execute(f"DROP TABLE IF EXISTS {STAGE}")
            conn.execute("INSERT INTO meta (key, value) VALUES ('reindex_target', ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (model_id,))
        conn.execute(f"CREATE TABLE IF NOT EXISTS {STAGE} (rowid INTEGER PRIMARY KEY, "
                     "embedding BLOB NOT NULL, content_hash TEXT NOT NULL, sentences BLOB)")
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({STAGE})")]
        if "sentences" not in columns:  # staged by a version without sentence vectors
            conn.execute(f"ALTER TABLE {STAGE} ADD COLUMN sentences BLOB")

    def pending(self, limit: int) -> list[tuple[int, str, str]]:
        """(rowid, content, content_hash) of memories not staged yet, in rowid order (after
        `begin`)."""
        return [(r[0], r[1], r[2]) for r in self._conn().execute(
            f"SELECT m.rowid, m.content, m.content_hash FROM memories m WHERE m.rowid > "
            f"(SELECT coalesce(max(rowid), 0) FROM {STAGE}) ORDER BY m.rowid LIMIT ?",
            (limit,))]

    def count_pending(self) -> int:
        return int(self._conn().execute(
            f"SELECT count(*) FROM memories WHERE rowid > "
            f"(SELECT coalesce(max(rowid), 0) FROM {STAGE})").fetchone()[0])

    def stage(self, rows: list[StagedRow]) -> None:
        """Keep (rowid, vector, content_hash, its sentences' vectors or None) for `finish`
        (a write)."""
        self._conn().executemany(
            f"INSERT OR REPLACE INTO {STAGE} (rowid, embedding, content_hash, sentences) "
            "VALUES (?, ?, ?, ?)",
            [(rowid, np.ascontiguousarray(v, dtype=np.float32).tobytes(), h,
              None if s is None or not len(s)
              else np.ascontiguousarray(s, dtype=np.float32).tobytes())
             for rowid, v, h, s in rows])

    def finish(self, model_id: str, dimension: int) -> int:
        """Replace every vector by its staged one, under the new model (a write). Memories
        stored since staging began are not expected (the data dir is locked); returns how
        many vectors were written."""
        conn = self._conn()
        conn.execute("DROP TABLE memory_vectors")
        conn.execute("CREATE TABLE memory_vectors (rowid INTEGER PRIMARY KEY, embedding BLOB "
                     "NOT NULL, model_id TEXT NOT NULL, content_hash TEXT NOT NULL)")
        cur = conn.execute(
            f"INSERT INTO memory_vectors (rowid, embedding, model_id, content_hash) "
            f"SELECT s.rowid, s.embedding, ?, s.content_hash FROM {STAGE} s "
            f"JOIN memories m ON m.rowid = s.rowid", (model_id,))
        conn.execute("DELETE FROM memory_sentences")  # made by the old model
        conn.execute(
            f"INSERT INTO memory_sentences (rowid, model_id, content_hash, vectors) "
            f"SELECT s.rowid, ?, s.content_hash, s.sentences FROM {STAGE} s "
            f"JOIN memories m ON m.rowid = s.rowid WHERE s.sentences IS NOT NULL", (model_id,))
        conn.execute(f"DROP TABLE {STAGE}")
        conn.execute("DELETE FROM index_log")
        conn.execute("DELETE FROM meta WHERE key LIKE 'index_trim:%' OR key = 'reindex_target'")
        conn.execute("INSERT INTO meta (key, value) VALUES ('vector_dimension', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(dimension),))
        conn.execute("INSERT INTO meta (key, value) VALUES ('embedding_model', json_quote(?)) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (model_id,))
        return int(cur.rowcount)
