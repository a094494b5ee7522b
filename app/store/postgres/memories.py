"""Memories with their vectors and BM25 postings in PostgreSQL: reads, and writes for the
writer. The same operations as app/store/memories.py, in PostgreSQL's SQL."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from app.models import MEMORY_TYPES, Memory, MemoryFilter, PageCursor
from app.store.postgres.filters import LIVE, filter_sql
from app.store.protocol import ConnSource, MemoryRow
from app.store.sentences import best_cosines
from app.text import normal_hash, term_frequencies

MEMORY_COLUMNS = (
    "m.rowid, m.id, m.agent_id, m.content, m.memory_type, m.importance, m.tags, m.metadata, "
    "m.session_id, m.created_at, m.updated_at, m.last_accessed_at, m.access_count, "
    "m.ttl_seconds, m.expires_at, m.event_time"
)
AGENT_LOCK = 0x64616B  # the advisory locks' first key for agents (the second: its hash)
SORT_COLUMNS = {"recent": ("m.created_at", True), "oldest": ("m.created_at", False),
                "importance": ("m.importance", True), "accessed": ("m.last_accessed_at", True)}


def row_to_memory(row: Sequence[Any]) -> Memory:
    return Memory(
        rowid=row[0], id=row[1], agent_id=row[2], content=row[3], memory_type=row[4],
        importance=row[5], tags=list(row[6]), metadata=dict(row[7]),
        session_id=row[8], created_at=row[9], updated_at=row[10], last_accessed_at=row[11],
        access_count=row[12], ttl_seconds=row[13], expires_at=row[14], event_time=row[15],
    )


def vector_param(vector: np.ndarray) -> list[float]:
    """A float32 vector as a parameter for `%s::float8[]::vector` (exact: every float32 is
    a float8)."""
    return np.asarray(vector, dtype=np.float32).astype(np.float64).tolist()


def vector_text(vector: np.ndarray) -> str:
    """A float32 vector in pgvector's text form, exactly (for arrays of vectors)."""
    values = np.asarray(vector, dtype=np.float32).astype(np.float64).tolist()
    return "[" + ",".join(map(repr, values)) + "]"


def unpack(rows: list[Any], dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, vectors) of (rowid, vector_send(embedding)) rows: pgvector's binary form is
    int16 dimension, int16 unused, then big-endian float32s."""
    labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return labels, np.empty((0, dimension), dtype=np.float32)
    data = b"".join(bytes(r[1])[4:] for r in rows)
    vecs = np.frombuffer(data, dtype=">f4").astype(np.float32)
    return labels, vecs.reshape(len(rows), dimension)


def dimension_of(blob: bytes) -> int:
    return int(struct.unpack(">H", bytes(blob)[:2])[0])


class PgMemories:
    def __init__(self, conn: ConnSource, model_id: str, dimension: int) -> None:
        self._conn = conn
        self.model_id = model_id
        self.dimension = dimension

    # -- reads -------------------------------------------------------------------------

    def get(self, memory_id: str, agent_id: str | None, now: int) -> list[Memory]:
        sql = f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.id = %s AND {LIVE}"
        params: list[Any] = [memory_id, now]
        if agent_id is not None:
            sql += " AND m.agent_id = %s"
            params.append(agent_id)
        return [row_to_memory(r) for r in self._conn().execute(sql + " ORDER BY m.rowid",
                                                                 params)]

    def by_rowid(self, rowid: int) -> Memory:
        row = self._conn().execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.rowid = %s", (rowid,)).fetchone()
        return row_to_memory(row)

    def by_rowids(self, rowids: Iterable[int], now: int) -> dict[int, Memory]:
        ids = [int(r) for r in rowids]
        if not ids:
            return {}
        rows = self._conn().execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.rowid = ANY(%s) AND {LIVE}",
            (ids, now))
        return {r[0]: row_to_memory(r) for r in rows}

    def ids(self, rowids: Sequence[int]) -> dict[int, str]:
        rows = self._conn().execute("SELECT rowid, id FROM memories WHERE rowid = ANY(%s)",
                                    ([int(r) for r in rowids],))
        return {r[0]: r[1] for r in rows}

    def created_since(self, since: int) -> int:
        return int(self._conn().execute(
            "SELECT count(*) FROM memories WHERE created_at >= %s", (since,)).fetchone()[0])

    def count(self, agent_id: str, f: MemoryFilter, now: int) -> int:
        where, params = filter_sql(agent_id, f, now)
        return int(self._conn().execute(
            f"SELECT count(*) FROM memories m WHERE {where}", params).fetchone()[0])

    def newest(self, agent_id: str, f: MemoryFilter, now: int, *, limit: int,
               offset: int = 0) -> list[Memory]:
        where, params = filter_sql(agent_id, f, now)
        sql = (f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} "
               "ORDER BY m.created_at DESC, m.rowid DESC LIMIT %s OFFSET %s")
        return [row_to_memory(r) for r in self._conn().execute(sql, [*params, limit, offset])]

    def browse(self, agent_id: str, f: MemoryFilter, now: int, *, sort: str, limit: int,
               after: PageCursor | None = None, before: PageCursor | None = None,
               scan: int | None = None) -> tuple[list[Memory], PageCursor | None]:
        """As SqliteMemories.browse: one page in `sort` order by keyset (after the cursor of
        the last memory shown, or just before the first); with `scan`, at most that many of
        the agent's memories are examined from the cursor, and the cursor of the last one
        examined comes back when the budget ran out before the page was full."""
        column, desc = SORT_COLUMNS[sort]
        reverse = before is not None
        cursor = before if reverse else after
        op = "<" if desc != reverse else ">"
        order = "DESC" if desc != reverse else "ASC"
        keyset, key_params = "", []
        if cursor is not None:
            keyset = f" AND ({column}, m.rowid) {op} (%s, %s)"
            key_params = [cursor[0], cursor[1]]
        where, params = filter_sql(agent_id, f, now)
        conn = self._conn()
        stopped: PageCursor | None = None
        if scan is not None and f.session_id is None and f.any():
            bound = conn.execute(
                f"SELECT {column}, m.rowid FROM memories m WHERE m.agent_id = %s{keyset} "
                f"ORDER BY {column} {order}, m.rowid {order} LIMIT 1 OFFSET %s",
                [agent_id, *key_params, scan - 1]).fetchone()
            if bound is not None:
                stopped = (float(bound[0]), int(bound[1]))
                keyset += f" AND ({column}, m.rowid) {'>=' if op == '<' else '<='} (%s, %s)"
                key_params += [bound[0], bound[1]]
        rows = conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where}{keyset} "
            f"ORDER BY {column} {order}, m.rowid {order} LIMIT %s",
            [*params, *key_params, limit]).fetchall()
        if len(rows) >= limit:
            stopped = None
        if reverse:
            rows.reverse()
        return [row_to_memory(r) for r in rows], stopped

    def importance_histogram(self, agent_id: str | None, bins: int) -> list[int]:
        where, params = ("WHERE agent_id = %s", [agent_id]) if agent_id is not None else ("", [])
        rows = self._conn().execute(
            f"SELECT least(floor(importance * %s)::int, %s - 1), count(*) FROM memories "
            f"{where} GROUP BY 1", [bins, bins, *params])
        counts = [0] * bins
        for b, n in rows:
            counts[max(0, int(b))] += int(n)
        return counts

    def created_histogram(self, agent_id: str | None, start: int, step: int,
                          buckets: int) -> list[int]:
        where = "AND agent_id = %s" if agent_id is not None else ""
        rows = self._conn().execute(
            f"SELECT (created_at - %s) / %s, count(*) FROM memories WHERE created_at >= %s "
            f"AND created_at < %s {where} GROUP BY 1",
            [start, step, start, start + buckets * step,
             *([agent_id] if agent_id is not None else [])])
        counts = [0] * buckets
        for b, n in rows:
            counts[int(b)] += int(n)
        return counts

    def created_range(self, agent_id: str | None) -> tuple[int | None, int | None]:
        where, params = ("WHERE agent_id = %s", [agent_id]) if agent_id is not None else ("", [])
        row = self._conn().execute(f"SELECT min(created_at), max(created_at) FROM memories "
                                   f"{where}", params).fetchone()
        return row[0], row[1]

    def type_counts(self, agent_id: str | None) -> dict[str, int]:
        where, params = ("WHERE agent_id = %s", [agent_id]) if agent_id is not None else ("", [])
        found = {r[0]: int(r[1]) for r in self._conn().execute(
            f"SELECT memory_type, count(*) FROM memories {where} GROUP BY memory_type", params)}
        return {t: found[t] for t in MEMORY_TYPES if found.get(t)}

    def rowids(self, agent_id: str, f: MemoryFilter, now: int | None) -> list[int]:
        where, params = filter_sql(agent_id, f, now)
        return [r[0] for r in self._conn().execute(
            f"SELECT m.rowid FROM memories m WHERE {where}", params)]

    def existing_ids(self, agent_id: str, ids: list[str]) -> list[str]:
        return [r[0] for r in self._conn().execute(
            "SELECT id FROM memories WHERE agent_id = %s AND id = ANY(%s)", (agent_id, ids))]

    def session_adjacent(self, agent_id: str, rowids: Sequence[int], f: MemoryFilter,
                         now: int, *, after: int = 0, before: int = 0
                         ) -> list[tuple[int, int, int]]:
        """As SqliteMemories.session_adjacent: (anchor, rowid, offset) of the live memories
        just after (1..after) and before (-1..-before) each anchor in its session; one that
        fails the filter keeps its place."""
        where, params = filter_sql(agent_id, f, now)
        out: list[tuple[int, int, int]] = []
        anchors = [int(r) for r in rowids]
        if not anchors:
            return out
        for count, cmp, order, sign in ((after, ">", "ASC", 1), (before, "<", "DESC", -1)):
            if count <= 0:
                continue
            sql = (
                f"SELECT a.rowid, n.rowid, ({where}) FROM memories a "
                "CROSS JOIN LATERAL (SELECT x.rowid FROM memories x "
                "WHERE x.session_id = a.session_id AND x.agent_id = a.agent_id "
                f"AND x.rowid {cmp} a.rowid AND (x.expires_at IS NULL OR x.expires_at > %s) "
                f"ORDER BY x.rowid {order} LIMIT %s) n JOIN memories m ON m.rowid = n.rowid "
                "WHERE a.rowid = ANY(%s) AND a.agent_id = %s AND a.session_id IS NOT NULL")
            rows = self._conn().execute(sql, [*params, now, count, anchors, agent_id]).fetchall()
            by_anchor: dict[int, list[tuple[int, bool]]] = {}
            for anchor, rowid, ok in rows:
                by_anchor.setdefault(anchor, []).append((rowid, ok))
            for anchor, found in by_anchor.items():
                found.sort(reverse=sign < 0)
                out += [(anchor, rowid, sign * pos)
                        for pos, (rowid, ok) in enumerate(found, start=1) if ok]
        return out

    def nearest_filtered(self, agent_id: str, f: MemoryFilter, now: int, query: np.ndarray,
                         n: int) -> tuple[np.ndarray, np.ndarray]:
        """(rowids, cosines) of the n live memories matching the filter nearest the query,
        best first: exact (scored here, so that no approximate index answers)."""
        where, params = filter_sql(agent_id, f, now)
        rows = self._conn().execute(
            f"SELECT m.rowid, vector_send(v.embedding) FROM memories m JOIN memory_vectors v "
            f"ON v.rowid = m.rowid WHERE {where}",
            params).fetchall()
        labels, vectors = unpack(rows, self.dimension)
        sims = np.einsum("ij,j->i", vectors, np.asarray(query, dtype=np.float32))
        order = np.argsort(-sims, kind="stable")[:n]
        return labels[order], sims[order]

    def sentence_vectors(self, rowids: Iterable[int]) -> dict[int, np.ndarray]:
        """rowid -> its sentences' vectors (n x dimension), for the memories of these rowids
        that have them under the current model."""
        ids = [int(r) for r in rowids]
        if not ids:
            return {}
        rows = self._conn().execute(
            "SELECT rowid, vectors FROM memory_sentences WHERE rowid = ANY(%s) AND "
            "model_id = %s", (ids, self.model_id))
        return {r[0]: np.frombuffer(bytes(r[1]), dtype="<f4").reshape(-1, self.dimension)
                for r in rows}

    def best_sentence_cosines(self, rowids: Iterable[int], query: np.ndarray
                              ) -> dict[int, float]:
        """rowid -> the best cosine between `query` and one of its sentences. Read from the
        database every time: other servers write the same table, so no process keeps a
        copy (app/store/sentences.py is SQLite's)."""
        return best_cosines(self.sentence_vectors(rowids), query)

    def wake_up(self, agent_id: str, now: int, top_n: int, min_importance: float,
                half_life: float) -> tuple[list[Memory], int]:
        where = f"m.agent_id = %s AND {LIVE} AND m.importance >= %s"
        params: list[Any] = [agent_id, now, min_importance]
        conn = self._conn()
        rows = conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY "
            "m.importance * exp(-0.6931471805599453 * greatest(0, %s - m.created_at) / %s) "
            "DESC, m.rowid DESC LIMIT %s", [*params, now, half_life, top_n]).fetchall()
        total = conn.execute(f"SELECT count(*) FROM memories m WHERE {where}",
                             params).fetchone()[0]
        return [row_to_memory(r) for r in rows], int(total)

    def same_text(self, agent_id: str, content: str, memory_type: str,
                  now: int) -> int | None:
        row = self._conn().execute(
            "SELECT rowid FROM memories WHERE agent_id = %s AND norm_hash = %s AND "
            "memory_type = %s AND (expires_at IS NULL OR expires_at > %s) ORDER BY rowid "
            "LIMIT 1", (agent_id, normal_hash(content), memory_type, now)).fetchone()
        return None if row is None else int(row[0])

    def session_previous(self, agent_id: str, session_id: str, rowid: int) -> int | None:
        row = self._conn().execute(
            "SELECT max(rowid) FROM memories WHERE session_id = %s AND agent_id = %s AND "
            "rowid < %s", (session_id, agent_id, rowid)).fetchone()
        return None if row[0] is None else int(row[0])

    def rowids_by_id(self, agent_id: str, ids: Sequence[str]) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn().execute(
            "SELECT id, rowid FROM memories WHERE agent_id = %s AND id = ANY(%s)",
            (agent_id, list(ids)))}

    def most_important(self, agent_id: str, now: int, *, limit: int,
                       min_importance: float = 0.0) -> list[Memory]:
        sql = (f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.agent_id = %s AND {LIVE} AND "
               "m.importance >= %s ORDER BY m.importance DESC, m.rowid DESC LIMIT %s")
        return [row_to_memory(r) for r in self._conn().execute(
            sql, (agent_id, now, min_importance, limit))]

    def importance_stats(self, agent_id: str, now: int) -> tuple[int, float | None]:
        row = self._conn().execute(
            "SELECT count(*), avg(importance) FROM memories WHERE agent_id = %s AND "
            "(expires_at IS NULL OR expires_at > %s)", (agent_id, now)).fetchone()
        return int(row[0]), (None if row[1] is None else float(row[1]))

    def page(self, agent_id: str, now: int, after_rowid: int, limit: int,
             with_vectors: bool) -> list[tuple[Memory, bytes | None, int | None]]:
        """As SqliteMemories.page; vectors as little-endian float32 bytes (SQLite's form)."""
        vec = ("(SELECT vector_send(v.embedding) FROM memory_vectors v WHERE v.rowid = "
               "m.rowid)" if with_vectors else "NULL")
        rows = self._conn().execute(
            f"SELECT {MEMORY_COLUMNS}, m.decayed_at, {vec} FROM memories m WHERE m.rowid > %s "
            f"AND m.agent_id = %s AND {LIVE} ORDER BY m.rowid LIMIT %s",
            (after_rowid, agent_id, now, limit)).fetchall()
        out = []
        for r in rows:
            blob = None
            if r[17] is not None:
                blob = np.frombuffer(bytes(r[17])[4:], dtype=">f4").astype("<f4").tobytes()
            out.append((row_to_memory(r), blob, r[16]))
        return out

    # -- writes (on the writer's connection, inside its transaction) -------------------

    def lock_agents(self, agent_ids: Sequence[str]) -> None:
        """Advisory transaction locks on the agents (in one order: no deadlock between
        servers), so that stores into one agent from several servers run one after the
        other and each one's deduplication sees what the previous committed."""
        conn = self._conn()
        for agent_id in sorted(set(agent_ids)):
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                         (AGENT_LOCK, agent_id))

    def insert(self, row: MemoryRow) -> int:
        """Insert one memory (setting its rowid) with its vector and BM25 postings. There
        is no index log on PostgreSQL (nothing caches the vectors): returns 0."""
        m = row.memory
        conn = self._conn()
        freq, length = term_frequencies(m.content, m.event_time)
        (m.rowid,) = conn.execute(
            "WITH m AS (INSERT INTO memories (id, agent_id, content, memory_type, importance, "
            "tags, metadata, session_id, created_at, updated_at, last_accessed_at, "
            "access_count, ttl_seconds, expires_at, event_time, content_hash, decayed_at, "
            "norm_hash, text_length, model_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING rowid, agent_id) "
            "INSERT INTO memory_vectors (rowid, agent_id, embedding) "
            "SELECT rowid, agent_id, %s::float8[]::vector FROM m RETURNING rowid",
            (m.id, m.agent_id, m.content, m.memory_type, m.importance, Jsonb(m.tags),
             Jsonb(m.metadata), m.session_id, m.created_at, m.updated_at, m.last_accessed_at,
             m.access_count, m.ttl_seconds, m.expires_at, m.event_time, row.content_hash,
             m.created_at if row.decayed_at is None else row.decayed_at,
             normal_hash(m.content), length, self.model_id, vector_param(row.vector))
        ).fetchone()
        conn.execute(
            "INSERT INTO agents (agent_id, created_at, text_docs, text_length) "
            "VALUES (%s, %s, 1, %s) ON CONFLICT (agent_id) DO UPDATE SET "
            "text_docs = agents.text_docs + 1, text_length = agents.text_length + %s",
            (m.agent_id, m.created_at, length, length))
        self._postings(conn, m.agent_id, m.rowid, freq, length)
        self._write_sentences(conn, m.rowid, row)
        return 0

    def update(self, memory: Memory, row: MemoryRow | None, set_importance: bool) -> int:
        conn = self._conn()
        conn.execute(
            "UPDATE memories SET content = %s, memory_type = %s, "
            "importance = CASE WHEN %s THEN %s ELSE importance END, tags = %s, "
            "metadata = %s, updated_at = %s, event_time = %s, ttl_seconds = %s, "
            "expires_at = %s, norm_hash = %s WHERE rowid = %s",
            (memory.content, memory.memory_type, set_importance, memory.importance,
             Jsonb(memory.tags), Jsonb(memory.metadata), memory.updated_at, memory.event_time,
             memory.ttl_seconds, memory.expires_at, normal_hash(memory.content),
             memory.rowid))
        if row is None:
            return 0
        freq, length = term_frequencies(memory.content, memory.event_time)
        (old,) = conn.execute(
            "UPDATE memories m SET content_hash = %s, model_id = %s, text_length = %s "
            "FROM memories o WHERE m.rowid = %s AND o.rowid = m.rowid RETURNING o.text_length",
            (row.content_hash, self.model_id, length, memory.rowid)).fetchone()
        conn.execute("UPDATE memory_vectors SET embedding = %s::float8[]::vector "
                     "WHERE rowid = %s", (vector_param(row.vector), memory.rowid))
        conn.execute("UPDATE agents SET text_length = text_length + %s WHERE agent_id = %s",
                     (length - old, memory.agent_id))
        conn.execute("DELETE FROM memory_terms WHERE rowid = %s", (memory.rowid,))
        self._postings(conn, memory.agent_id, memory.rowid, freq, length)
        conn.execute("DELETE FROM memory_sentences WHERE rowid = %s", (memory.rowid,))
        self._write_sentences(conn, memory.rowid, row)
        return 0

    def _write_sentences(self, conn: Any, rowid: int, row: MemoryRow) -> None:
        if row.sentences is not None and len(row.sentences):
            conn.execute(
                "INSERT INTO memory_sentences (rowid, model_id, content_hash, vectors) "
                "VALUES (%s, %s, %s, %s)",
                (rowid, self.model_id, row.content_hash,
                 np.ascontiguousarray(row.sentences, dtype="<f4").tobytes()))

    def set_importance(self, rowid: int, importance: float, now: int) -> None:
        self._conn().execute("UPDATE memories SET importance = %s, updated_at = %s "
                             "WHERE rowid = %s", (importance, now, rowid))

    def merge_duplicate(self, survivor_rowid: int, importance: float, tags: list[str],
                        now: int) -> None:
        conn = self._conn()
        row = conn.execute("SELECT importance, tags FROM memories WHERE rowid = %s FOR UPDATE",
                           (survivor_rowid,)).fetchone()
        merged_tags = list(dict.fromkeys([*row[1], *tags]))
        conn.execute("UPDATE memories SET importance = %s, tags = %s, updated_at = %s, "
                     "decayed_at = %s WHERE rowid = %s",
                     (max(row[0], importance), Jsonb(merged_tags), now, now, survivor_rowid))

    def delete(self, agent_id: str, rowids: Sequence[int]) -> int:
        """Delete memories (their postings, edges and entities go with them: ON DELETE
        CASCADE) and take them out of the agent's BM25 statistics. Returns 0 (no log)."""
        conn = self._conn()
        row = conn.execute(
            "WITH gone AS (DELETE FROM memories WHERE rowid = ANY(%s) AND agent_id = %s "
            "RETURNING text_length) SELECT count(*), coalesce(sum(text_length), 0) FROM gone",
            ([int(r) for r in rowids], agent_id)).fetchone()
        if row[0]:
            conn.execute("UPDATE agents SET text_docs = text_docs - %s, "
                         "text_length = greatest(0, text_length - %s) WHERE agent_id = %s",
                         (row[0], row[1], agent_id))
        return 0

    @staticmethod
    def _postings(conn: Any, agent_id: str, rowid: int, freq: dict[str, float],
                  length: float) -> None:
        if not freq:
            return
        terms = list(freq)
        conn.execute(
            "INSERT INTO memory_terms (agent_id, term, rowid, tf, doc_length) "
            "SELECT %s, t.term, %s, t.tf, %s FROM unnest(%s::text[], %s::real[]) AS t(term, tf)",
            (agent_id, rowid, length, terms, [freq[t] for t in terms]))


class PgVectors:
    """The memories' vectors and texts as the protocol's `vectors` offers them (exports,
    `dakera reindex` and tools read them; recall searches them in SQL: search.py). There
    is no index log: nothing caches them."""

    def __init__(self, conn: ConnSource, dimension: int) -> None:
        self._conn = conn
        self.dimension = dimension

    def layout(self, agent_id: str) -> tuple[int, str] | None:
        return self.dimension, "cosine"

    def agents(self) -> list[str]:
        return [r[0] for r in self._conn().execute(
            "SELECT agent_id FROM agents WHERE text_docs > 0 ORDER BY agent_id")]

    def has(self, agent_id: str) -> bool:
        return self._conn().execute("SELECT 1 FROM memories WHERE agent_id = %s LIMIT 1",
                                    (agent_id,)).fetchone() is not None

    def count(self, agent_id: str) -> int:
        return int(self._conn().execute("SELECT count(*) FROM memories WHERE agent_id = %s",
                                        (agent_id,)).fetchone()[0])

    def of_agent(self, agent_id: str, batch: int = 10_000
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = 0
        while True:
            rows = self._conn().execute(
                "SELECT rowid, vector_send(embedding) FROM memory_vectors WHERE agent_id = %s "
                "AND rowid > %s ORDER BY rowid LIMIT %s", (agent_id, last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield unpack(rows, self.dimension)

    def get(self, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = self._conn().execute(
            "SELECT rowid, vector_send(embedding) FROM memory_vectors WHERE rowid = ANY(%s)",
            ([int(x) for x in labels],)).fetchall()
        return unpack(rows, self.dimension)

    def texts(self, labels: Sequence[int]) -> list[tuple[int, str, int | None]]:
        return [(r[0], r[1], r[2]) for r in self._conn().execute(
            "SELECT rowid, content, event_time FROM memories WHERE rowid = ANY(%s)",
            ([int(x) for x in labels],))]

    def texts_of_agent(self, agent_id: str, batch: int = 10_000
                       ) -> Iterator[list[tuple[int, str, int | None]]]:
        last = 0
        while True:
            rows = [(r[0], r[1], r[2]) for r in self._conn().execute(
                "SELECT rowid, content, event_time FROM memories WHERE agent_id = %s AND "
                "rowid > %s ORDER BY rowid LIMIT %s", (agent_id, last, batch))]
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def log(self, agent_id: str, after_seq: int) -> list[tuple[int, int, str]]:
        return []

    def log_head(self, agent_id: str) -> int:
        return 0

    def log_trimmed(self, agent_id: str) -> int:
        return 0

    def trim_log(self, agent_id: str, upto_seq: int) -> None:
        return None
