"""Candidate search answered by PostgreSQL itself: the `Indexes` of the PostgreSQL backend.

With SQLite, recall's candidates come from caches in the server's memory (app/index: hnswlib
and a BM25 inverted index per agent), kept in step after each commit. Several servers on one
database cannot share such caches, so here every search is a query, and a commit on any
server is seen by the next search on every server. The recall engine and the service call
the same methods either way (app/models.Indexes): fusion and scoring are not repeated here.

- Vectors: pgvector's HNSW index (cosine) over all memories, filtered by agent with
  `hnsw.iterative_scan = strict_order` (the scan goes on until enough rows of the agent
  are found); an agent small enough is scored exactly (every one of its vectors), as the
  in-memory index searches small agents exhaustively.
- Text: the same BM25 as app/index/text.py (FTS5's formula, per-agent statistics, content
  plus the event date at half weight), over `memory_terms`: one row per (memory, stem) with
  its weighted frequency. N and the total length are kept per agent in `agents`; document
  frequencies are counted from the postings' primary key (agent, term, rowid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from app.store.postgres.conn import Reader
from app.store.postgres.memories import unpack, vector_text
from app.text import BM25_B, BM25_K1

# An agent with at most this many memories is scored exactly (every vector), larger ones
# through the HNSW index; measurements in docs/postgres.md. NEAR_EXACT_UP_TO: the same when
# only near neighbours matter (exhaustive=False: the graph's links at store time).
EXACT_UP_TO = 2_000
NEAR_EXACT_UP_TO = 2_000
EF_SEARCH = 100  # pgvector's hnsw.ef_search floor (its maximum is 1000)
MAX_SCAN_TUPLES = 40_000  # how far an iterative scan may go for one agent's rows
# set on every reader connection: a search for k <= EF_SEARCH needs no transaction of its own
# strict_order: at 100,000 rows, an agent holding 5% of them got recall@10 1.0 with it and
# 0.89 with relaxed_order (docs/postgres.md)
SEARCH_SETTINGS = {"hnsw.ef_search": str(EF_SEARCH), "hnsw.iterative_scan": "strict_order",
                   "hnsw.max_scan_tuples": str(MAX_SCAN_TUPLES)}


# The query vectors of a search_many, parsed once (not once per row compared).
_QUERIES = ("WITH q AS MATERIALIZED (SELECT u.i, u.v::vector AS v FROM "
            "unnest(%(qs)s::text[]) WITH ORDINALITY u(v, i))")


# (query number, rowid, cosine) of an agent's k nearest memories for each query vector:
# every vector of the agent scored, or the HNSW index scanned until k of the agent's are found
EXACT_SQL = (f"{_QUERIES} SELECT q.i, n.rowid, n.sim FROM q CROSS JOIN LATERAL "
             "(SELECT rowid, 1 - (embedding <=> q.v) AS sim FROM memory_vectors "
             "WHERE agent_id = %(agent)s ORDER BY sim DESC, rowid LIMIT %(k)s) n")
INDEX_SQL = (f"{_QUERIES} SELECT q.i, n.rowid, 1 - n.d FROM q CROSS JOIN LATERAL "
             "(SELECT rowid, embedding <=> q.v AS d FROM memory_vectors "
             "WHERE agent_id = %(agent)s ORDER BY embedding <=> q.v LIMIT %(k)s) n")


class PgVectorSearch:
    """One agent's vectors, searched in SQL (app/models.VectorSearch)."""

    def __init__(self, reader: Reader, agent_id: str, dimension: int) -> None:
        self._reader = reader
        self.agent_id = agent_id
        self.dimension = dimension
        self._size: int | None = None

    def __len__(self) -> int:
        if self._size is None:
            row = self._reader.execute("SELECT text_docs FROM agents WHERE agent_id = %s",
                                       (self.agent_id,)).fetchone()
            self._size = 0 if row is None else int(row[0])
        return self._size

    def search(self, vector: np.ndarray, k: int,
               accept: Callable[[int], bool] | None = None, *, exhaustive: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, cosines) of the k nearest of the agent's memories, best first (those
        `accept` takes, when given: it is applied to an oversampled answer)."""
        size = len(self)
        if k <= 0 or size == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        want = min(size, k * 4 if accept is not None else k)
        found, sims = self.search_many(np.asarray(vector).reshape(1, -1), want,
                                       exhaustive=exhaustive)
        labels, scores = found[0], sims[0]
        keep = labels >= 0
        if accept is not None:
            keep &= np.fromiter((accept(int(x)) for x in labels), bool, len(labels))
        return labels[keep][:k], scores[keep][:k]

    def search_many(self, vectors: np.ndarray, k: int, *, exhaustive: bool = True,
                    ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """search() for each row of `vectors`, in one query: (labels, cosines), one row
        per vector, padded with -1."""
        n = len(vectors)
        size = len(self)
        kk = min(k, size)
        found = np.full((n, max(kk, 0)), -1, dtype=np.int64)
        sims = np.full((n, max(kk, 0)), -1.0, dtype=np.float32)
        if kk <= 0 or n == 0:
            return found, sims
        params = {"qs": [vector_text(v) for v in vectors.reshape(n, -1)],
                  "agent": self.agent_id, "k": kk}
        if size <= (EXACT_UP_TO if exhaustive else min(EXACT_UP_TO, NEAR_EXACT_UP_TO)):
            rows = self._reader.execute(EXACT_SQL, params).fetchall()
        else:
            sql = INDEX_SQL
            if kk <= EF_SEARCH:  # the connections' settings serve (SEARCH_SETTINGS)
                rows = self._reader.execute(sql, params).fetchall()
            else:  # a wider search, for this transaction
                def wide(conn: Any) -> list[Any]:
                    with conn.transaction():
                        conn.execute("SELECT set_config('hnsw.ef_search', %s, true)",
                                     (str(min(1000, kk)),))
                        return list(conn.execute(sql, params).fetchall())

                rows = self._reader.run(wide)
        return _rows_to_matrix(rows, found, sims)

    def vectors(self, labels: list[int]) -> tuple[list[int], np.ndarray]:
        rows = self._reader.execute(
            "SELECT rowid, vector_send(embedding) FROM memory_vectors WHERE rowid = ANY(%s) "
            "AND agent_id = %s", ([int(x) for x in labels], self.agent_id)).fetchall()
        rows = _in_order_of(labels, rows)
        found, vecs = unpack(rows, self.dimension)
        return [int(x) for x in found], vecs


def _rows_to_matrix(rows: list[Any], found: np.ndarray, sims: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(query number from 1, label, score) rows into one row per query, best first."""
    rows.sort(key=lambda r: (r[0], -r[2]))
    filled = [0] * len(found)
    for i, label, sim in rows:
        row = int(i) - 1
        found[row, filled[row]] = label
        sims[row, filled[row]] = sim
        filled[row] += 1
    return found, sims


def _in_order_of(labels: list[int], rows: list[Any]) -> list[Any]:
    """(label, ...) rows in the order the labels were asked for."""
    order = {int(label): i for i, label in enumerate(labels)}
    return sorted(rows, key=lambda r: order.get(int(r[0]), 0))


# BM25 in SQL, term by term as app/index/text.TextIndex.search computes it.
_BM25 = f"""
WITH st AS MATERIALIZED (
    SELECT text_docs::float8 AS n, text_length / greatest(text_docs, 1) AS avg
    FROM agents WHERE agent_id = %(agent)s AND text_docs > 0),
df AS MATERIALIZED (
    SELECT q.term, c.n FROM (SELECT DISTINCT unnest(%(terms)s::text[]) AS term) q
    CROSS JOIN LATERAL (SELECT count(*)::float8 AS n FROM memory_terms t
                        WHERE t.agent_id = %(agent)s AND t.term = q.term) c
    WHERE c.n > 0),
idf AS MATERIALIZED (
    SELECT df.term, CASE WHEN x.w > 0 THEN x.w ELSE 1e-6 END AS w FROM df, st
    CROSS JOIN LATERAL (SELECT ln((st.n - df.n + 0.5) / (df.n + 0.5)) AS w) x)
SELECT t.rowid, sum(idf.w * t.tf * {BM25_K1 + 1} / (t.tf + {BM25_K1} *
       (1 - {BM25_B} + {BM25_B} * t.doc_length / st.avg))) AS score
FROM idf JOIN memory_terms t ON t.agent_id = %(agent)s AND t.term = idf.term, st
WHERE %(allowed)s::bigint[] IS NULL OR t.rowid = ANY(%(allowed)s::bigint[])
GROUP BY t.rowid ORDER BY score DESC, t.rowid LIMIT %(k)s
"""


class PgTextSearch:
    """One agent's BM25, computed in SQL (app/models.TextSearch)."""

    def __init__(self, reader: Reader, agent_id: str) -> None:
        self._reader = reader
        self.agent_id = agent_id

    def search(self, terms: Sequence[str], k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not terms or k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        rows = self._reader.execute(_BM25, {
            "terms": list(terms), "agent": self.agent_id, "k": k,
            "allowed": None if allowed is None else [int(x) for x in allowed]}).fetchall()
        return (np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                np.fromiter((r[1] for r in rows), np.float32, len(rows)))

    def holding_all(self, terms: Sequence[str]) -> np.ndarray:
        """Rowids of the memories whose content holds every one of the terms."""
        wanted = list(dict.fromkeys(terms))
        if not wanted:
            return np.empty(0, np.int64)
        rows = self._reader.execute(
            "SELECT rowid FROM memory_terms WHERE agent_id = %s AND term = ANY(%s) AND "
            "tf >= 1 GROUP BY rowid HAVING count(*) = %s ORDER BY rowid",
            (self.agent_id, wanted, len(wanted))).fetchall()
        return np.fromiter((r[0] for r in rows), np.int64, len(rows))


class _NothingToKeep:
    """The upkeep half of `Indexes` when the database answers every search: nothing to
    load, keep in step, save or compact."""

    def __init__(self, reader: Reader, dimension: int) -> None:
        self._reader = reader
        self.dimension = dimension
        self.builds = {"start": 0, "first_use": 0, "compaction": 0}

    def added(self, agent_id: str, labels: list[int], vectors: np.ndarray,
              texts: Sequence[tuple[str, int | None]], seq: int) -> None:
        return None

    def deleted(self, agent_id: str, labels: list[int], seq: int) -> None:
        return None

    def drop(self, agent_id: str) -> None:
        return None

    def compact(self) -> int:
        return 0

    def save_dirty(self, deadline: float | None = None) -> list[tuple[str, int]]:
        return []

    def rebuilding(self) -> list[str]:
        return []

    def open_all(self, *, background: bool = False) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


class PgIndexes(_NothingToKeep):
    """The PostgreSQL backend's `Indexes` of the agents' memories."""

    def find(self, agent_id: str) -> PgVectorSearch | None:
        return PgVectorSearch(self._reader, agent_id, self.dimension)

    def find_text(self, agent_id: str) -> PgTextSearch | None:
        return PgTextSearch(self._reader, agent_id)

    def stats(self) -> dict[str, int]:
        """Memories per agent (what an in-memory index would hold)."""
        return {r[0]: int(r[1]) for r in self._reader.execute(
            "SELECT agent_id, text_docs FROM agents WHERE text_docs > 0")}


# A namespace's score for each distance, as hnswlib scores its spaces (higher is better):
# cosine similarity, dot product, minus the squared euclidean distance.
_NS_SCORE = {"cosine": ("1 - (vector <=> q.v)", "vector <=> q.v"),
             "dot_product": ("-(vector <#> q.v)", "vector <#> q.v"),
             "euclidean": ("-((vector <-> q.v) ^ 2)", "vector <-> q.v")}


class PgNamespaceSearch:
    """One namespace's vectors, scored exactly in SQL (no index yet: namespaces differ in
    dimension and distance; a partial HNSW index per namespace is the next step)."""

    def __init__(self, reader: Reader, namespace: str, distance: str) -> None:
        self._reader = reader
        self.namespace = namespace
        self.distance = distance
        self._size: int | None = None

    def __len__(self) -> int:
        if self._size is None:
            row = self._reader.execute(
                "SELECT count(*) FROM ns_items WHERE namespace = %s AND vector IS NOT NULL",
                (self.namespace,)).fetchone()
            self._size = int(row[0]) if row else 0
        return self._size

    def search(self, vector: np.ndarray, k: int,
               accept: Callable[[int], bool] | None = None, *, exhaustive: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
        found, scores = self.search_many(np.asarray(vector).reshape(1, -1),
                                         len(self) if accept is not None else k)
        labels, sims = found[0], scores[0]
        keep = labels >= 0
        if accept is not None:
            keep &= np.fromiter((accept(int(x)) for x in labels), bool, len(labels))
        return labels[keep][:k], sims[keep][:k]

    def search_many(self, vectors: np.ndarray, k: int, *, exhaustive: bool = True,
                    ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        n = len(vectors)
        kk = min(k, len(self))
        found = np.full((n, max(kk, 0)), -1, dtype=np.int64)
        sims = np.full((n, max(kk, 0)), -1.0, dtype=np.float32)
        if kk <= 0 or n == 0:
            return found, sims
        score, distance = _NS_SCORE[self.distance]
        rows = self._reader.execute(
            f"{_QUERIES} SELECT q.i, n.rowid, n.s FROM q CROSS JOIN LATERAL "
            f"(SELECT rowid, {score} AS s FROM ns_items WHERE namespace = %(ns)s AND "
            f"vector IS NOT NULL ORDER BY {distance}, rowid LIMIT %(k)s) n",
            {"qs": [vector_text(v) for v in vectors.reshape(n, -1)], "ns": self.namespace,
             "k": kk}).fetchall()
        return _rows_to_matrix(rows, found, sims)

    def vectors(self, labels: list[int]) -> tuple[list[int], np.ndarray]:
        rows = self._reader.execute(
            "SELECT rowid, vector_send(vector) FROM ns_items WHERE rowid = ANY(%s) AND "
            "namespace = %s AND vector IS NOT NULL",
            ([int(x) for x in labels], self.namespace)).fetchall()
        rows = _in_order_of(labels, rows)
        if not rows:
            return [], np.empty((0, 0), dtype=np.float32)
        data = b"".join(bytes(r[1])[4:] for r in rows)
        vecs = np.frombuffer(data, dtype=">f4").astype(np.float32).reshape(len(rows), -1)
        return [int(r[0]) for r in rows], vecs


class PgNamespaceIndexes(_NothingToKeep):
    """The namespaces' `Indexes` on PostgreSQL: each namespace searched in SQL."""

    def find(self, agent_id: str) -> PgNamespaceSearch | None:
        row = self._reader.execute(
            "SELECT distance FROM namespaces WHERE name = %s AND dimension IS NOT NULL",
            (agent_id,)).fetchone()
        return None if row is None else PgNamespaceSearch(self._reader, agent_id, row[0])

    def find_text(self, agent_id: str) -> None:
        return None  # a namespace's text is searched by NamespaceReads.fulltext

    def stats(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._reader.execute(
            "SELECT namespace, count(*) FROM ns_items WHERE vector IS NOT NULL "
            "GROUP BY namespace")}
