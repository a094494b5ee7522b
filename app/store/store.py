"""The truth: memories, their FTS5 rows and their vectors in one SQLite file.

Reads run on thread-local reader connections; writes are jobs for the one writer thread
(`Store.writer`). Write jobs are the `*_job` methods: they take the writer's connection and
run inside its transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from app.models import BatchFilter, Memory, RecallFilters
from app.store import bm25
from app.store.db import Connection, connect
from app.store.migrations import migrate
from app.store.writer import Writer
from app.text import normal_hash

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode

MEMORY_COLUMNS = (
    "m.rowid, m.id, m.agent_id, m.content, m.memory_type, m.importance, m.tags, m.metadata, "
    "m.session_id, m.created_at, m.updated_at, m.last_accessed_at, m.access_count, "
    "m.ttl_seconds, m.expires_at, m.event_time"
)


def row_to_memory(row: Sequence[Any]) -> Memory:
    return Memory(
        rowid=row[0], id=row[1], agent_id=row[2], content=row[3], memory_type=row[4],
        importance=row[5], tags=_json_decode(row[6]), metadata=_json_decode(row[7]),
        session_id=row[8], created_at=row[9], updated_at=row[10], last_accessed_at=row[11],
        access_count=row[12], ttl_seconds=row[13], expires_at=row[14], event_time=row[15],
    )


@dataclass(slots=True)
class MemoryRow:
    """Everything an insert writes: the memory, its vector and its FTS context text."""

    memory: Memory
    vector: np.ndarray
    content_hash: str
    context: str
    norm_hash: str = ""


class DimensionMismatch(Exception):
    pass


class Store:
    def __init__(self, path: Path, *, dimension: int, model_id: str,
                 synchronous: str = "full") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dimension = dimension
        self.model_id = model_id
        self._synchronous = synchronous
        conn = connect(path, synchronous=synchronous)
        migrate(conn, dimension)
        stored = conn.execute("SELECT value FROM meta WHERE key='vector_dimension'").fetchone()
        if stored and int(stored[0]) != dimension:
            conn.close()
            raise DimensionMismatch(
                f"{path} holds {stored[0]}-dimensional vectors but the model makes {dimension}"
            )
        self.writer = Writer(conn)
        self.bm25_max_scored = bm25.MAX_SCORED  # 0: always score every match
        self._local = threading.local()
        self._readers: list[Connection] = []
        self._readers_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------

    def reader(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True, synchronous=self._synchronous)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        self.writer.close()
        self.writer._conn.close()
        with self._readers_lock:
            for conn in self._readers:
                bm25.forget(conn)
                with contextlib.suppress(Exception):  # a reader in a finishing thread
                    conn.close()
            self._readers.clear()

    # -- reads -------------------------------------------------------------------------

    def get(self, memory_id: str, agent_id: str | None, now: int) -> list[Memory]:
        sql = f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.id = ? AND {_LIVE}"
        params: list[Any] = [memory_id, now]
        if agent_id is not None:
            sql += " AND m.agent_id = ?"
            params.append(agent_id)
        return [row_to_memory(r) for r in self.reader().execute(sql, params)]

    def by_rowids(self, rowids: Iterable[int], now: int) -> dict[int, Memory]:
        ids = list(rowids)
        if not ids:
            return {}
        sql = (f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.rowid IN "
               f"(SELECT value FROM json_each(?)) AND {_LIVE}")
        rows = self.reader().execute(sql, (_json_encode(ids).decode(), now))
        return {r[0]: row_to_memory(r) for r in rows}

    def count(self, agent_id: str, filters: RecallFilters, now: int) -> int:
        where, params = _filter_sql(agent_id, filters, now)
        return int(self.reader().execute(
            f"SELECT count(*) FROM memories m WHERE {where}", params).fetchone()[0])

    def bm25(self, agent_id: str, match: str, filters: RecallFilters, now: int,
             limit: int) -> list[tuple[int, float]]:
        """(rowid, score) best first; score = -bm25, so higher is better. Equal to scoring
        every match of the agent, without scoring them all (see app/store/bm25.py), except
        that a query made only of common terms is scored over the newest
        `bm25_max_scored` matches."""
        where, params = _filter_sql(agent_id, filters, now)
        q = bm25.Query(agent_id=agent_id, agent_token=agent_token(agent_id), where=where,
                       params=params, filtered=filters.any(), limit=limit)
        conn = self.reader()
        conn.execute("BEGIN")  # one snapshot for the idf probes and the scoring queries
        try:
            return bm25.top(conn, q, match, self.bm25_max_scored)
        finally:
            conn.execute("COMMIT")

    def session_adjacent(self, agent_id: str, rowids: Sequence[int], filters: RecallFilters,
                         now: int, *, after: int = 0, before: int = 0
                         ) -> list[tuple[int, int, int]]:
        """(anchor, rowid, offset) of the live memories stored just after (offset 1..after)
        and just before (offset -1..-before) each anchor in the anchor's session. Session
        order is stored order (rowid). A neighbour that fails the filters is left out but
        keeps its place, so offsets are true distances."""
        where, params = _filter_sql(agent_id, filters, now)
        out = []
        for count, cmp, order, sign in ((after, ">", "ASC", 1), (before, "<", "DESC", -1)):
            if count <= 0:
                continue
            sql = (
                f"SELECT a.rowid, m.rowid, CASE WHEN {where} THEN 1 ELSE 0 END "
                "FROM json_each(?) j CROSS JOIN memories a ON a.rowid = j.value "
                "JOIN memories m ON m.rowid IN (SELECT x.rowid FROM memories x "
                "WHERE x.session_id = a.session_id AND x.agent_id = a.agent_id "
                f"AND x.rowid {cmp} a.rowid AND (x.expires_at IS NULL OR x.expires_at > ?) "
                f"ORDER BY x.rowid {order} LIMIT ?) "
                "WHERE +a.agent_id = ? AND a.session_id IS NOT NULL"
            )
            rows = self.reader().execute(sql, [*params, _json_encode(list(rowids)).decode(),
                                               now, count, agent_id]).fetchall()
            by_anchor: dict[int, list[tuple[int, int]]] = {}
            for anchor, rowid, ok in rows:
                by_anchor.setdefault(anchor, []).append((rowid, ok))
            for anchor, found in by_anchor.items():
                found.sort(reverse=sign < 0)
                out += [(anchor, rowid, sign * pos)
                        for pos, (rowid, ok) in enumerate(found, start=1) if ok]
        return out

    def filtered_vectors(self, agent_id: str, filters: RecallFilters,
                         now: int) -> tuple[np.ndarray, np.ndarray]:
        """(rowids, vectors) of every live memory matching the filters: for exact search."""
        where, params = _filter_sql(agent_id, filters, now)
        rows = self.reader().execute(
            "SELECT v.rowid, v.embedding FROM memories m JOIN memory_vectors v "
            f"ON v.rowid = m.rowid WHERE {where}", params).fetchall()
        return self._unpack(rows)

    def agent_vectors(self, agent_id: str, batch: int = 10_000
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every vector of an agent in batches: for rebuilding its index."""
        last = 0
        conn = self.reader()
        while True:
            rows = conn.execute(
                "SELECT v.rowid, v.embedding FROM memories m JOIN memory_vectors v "
                "ON v.rowid = m.rowid WHERE m.agent_id = ? AND m.rowid > ? "
                "ORDER BY m.rowid LIMIT ?", (agent_id, last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield self._unpack(rows)

    def vectors(self, rowids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = self.reader().execute(
            "SELECT rowid, embedding FROM memory_vectors WHERE rowid IN "
            "(SELECT value FROM json_each(?))", (_json_encode(list(rowids)).decode(),)
        ).fetchall()
        return self._unpack(rows)

    def _unpack(self, rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        return labels, vecs.reshape(len(rows), self.dimension)

    def agents_with_memories(self) -> list[str]:
        return [r[0] for r in self.reader().execute(
            "SELECT DISTINCT agent_id FROM memories ORDER BY agent_id")]

    def select_rowids(self, agent_id: str, *, memory_ids: list[str] | None = None,
                      tags: list[str] | None = None, session_id: str | None = None,
                      before: int | None = None) -> list[int]:
        """Rowids of the agent's memories matching every given predicate (tags: any)."""
        clauses = ["m.agent_id = ?"]
        params: list[Any] = [agent_id]
        if memory_ids is not None:
            clauses.append("m.id IN (SELECT value FROM json_each(?))")
            params.append(_json_encode(memory_ids).decode())
        if tags:
            clauses.append("EXISTS (SELECT 1 FROM json_each(m.tags) t WHERE t.value IN "
                           "(SELECT value FROM json_each(?)))")
            params.append(_json_encode(tags).decode())
        if session_id is not None:
            clauses.append("m.session_id = ?")
            params.append(session_id)
        if before is not None:
            clauses.append("m.created_at < ?")
            params.append(before)
        sql = f"SELECT m.rowid FROM memories m WHERE {' AND '.join(clauses)}"
        return [r[0] for r in self.reader().execute(sql, params)]

    def list_filtered(self, agent_id: str, f: BatchFilter, now: int, *, limit: int,
                      offset: int = 0) -> list[Memory]:
        """The agent's live memories matching a batch filter, newest first."""
        where, params = _batch_filter_sql(agent_id, f, now)
        sql = (f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} "
               "ORDER BY m.created_at DESC, m.rowid DESC LIMIT ? OFFSET ?")
        return [row_to_memory(r) for r in self.reader().execute(sql, [*params, limit, offset])]

    def count_filtered(self, agent_id: str, f: BatchFilter, now: int) -> int:
        where, params = _batch_filter_sql(agent_id, f, now)
        return int(self.reader().execute(
            f"SELECT count(*) FROM memories m WHERE {where}", params).fetchone()[0])

    def rowids_filtered(self, agent_id: str, f: BatchFilter, now: int) -> list[int]:
        where, params = _batch_filter_sql(agent_id, f, now)
        return [r[0] for r in self.reader().execute(
            f"SELECT m.rowid FROM memories m WHERE {where}", params)]

    def wake_up(self, agent_id: str, now: int, top_n: int, min_importance: float,
                half_life: float) -> tuple[list[Memory], int]:
        """The agent's memories ranked by importance x exp(-ln2 x age / half_life)."""
        where = f"m.agent_id = ? AND {_LIVE} AND m.importance >= ?"
        params: list[Any] = [agent_id, now, min_importance]
        rows = self.reader().execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY "
            "m.importance * exp(-0.6931471805599453 * max(0, ? - m.created_at) / ?) DESC, "
            "m.rowid DESC LIMIT ?", [*params, now, half_life, top_n]).fetchall()
        total = self.reader().execute(f"SELECT count(*) FROM memories m WHERE {where}",
                                      params).fetchone()[0]
        return [row_to_memory(r) for r in rows], int(total)

    def existing_ids(self, agent_id: str, ids: list[str]) -> list[str]:
        return [r[0] for r in self.reader().execute(
            "SELECT id FROM memories WHERE agent_id = ? AND id IN "
            "(SELECT value FROM json_each(?))", (agent_id, _json_encode(ids).decode()))]

    def has_memories(self, agent_id: str) -> bool:
        return self.reader().execute(
            "SELECT 1 FROM memories WHERE agent_id = ? LIMIT 1", (agent_id,)).fetchone() is not None

    def agent_memory_count(self, agent_id: str) -> int:
        return int(self.reader().execute(
            "SELECT count(*) FROM memories WHERE agent_id = ?", (agent_id,)).fetchone()[0])

    def index_log(self, agent_id: str, after_seq: int) -> list[tuple[int, int, str]]:
        return [(r[0], r[1], r[2]) for r in self.reader().execute(
            "SELECT seq, label, op FROM index_log WHERE agent_id = ? AND seq > ? ORDER BY seq",
            (agent_id, after_seq))]

    def index_log_head(self, agent_id: str) -> int:
        row = self.reader().execute(
            "SELECT max(seq) FROM index_log WHERE agent_id = ?", (agent_id,)).fetchone()
        return int(row[0] or 0)

    def index_log_trimmed(self, agent_id: str) -> int:
        row = self.reader().execute(
            "SELECT value FROM meta WHERE key = ?", (f"index_trim:{agent_id}",)).fetchone()
        return int(row[0]) if row else 0

    # -- write jobs (run on the writer thread, inside its transaction) ------------------

    def insert_job(self, conn: Connection, rows: Sequence[MemoryRow]) -> tuple[list[Memory], int]:
        """Insert memories with their FTS rows and vectors; returns them and the log seq."""
        out, seq = [], 0
        for row in rows:
            seq = self.insert_one(conn, row)
            out.append(row.memory)
        return out, seq

    def insert_one(self, conn: Connection, row: MemoryRow) -> int:
        """Insert one memory (setting its rowid) with its FTS row and vector; returns the
        index log seq."""
        m = row.memory
        conn.execute("INSERT OR IGNORE INTO agents (agent_id, created_at) VALUES (?, ?)",
                     (m.agent_id, m.created_at))
        cur = conn.execute(
            "INSERT INTO memories (id, agent_id, content, memory_type, importance, tags, "
            "metadata, session_id, created_at, updated_at, last_accessed_at, access_count, "
            "ttl_seconds, expires_at, event_time, content_hash, decayed_at, norm_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (m.id, m.agent_id, m.content, m.memory_type, m.importance,
             _json_encode(m.tags).decode(), _json_encode(m.metadata).decode(),
             m.session_id, m.created_at, m.updated_at, m.last_accessed_at, m.access_count,
             m.ttl_seconds, m.expires_at, m.event_time, row.content_hash, m.created_at,
             row.norm_hash or normal_hash(m.content)))
        m.rowid = int(cur.lastrowid)
        self._write_text_and_vector(conn, m, row, replace=False)
        return self._log(conn, m.agent_id, m.rowid, "add")

    def memory_job(self, conn: Connection, rowid: int) -> Memory:
        """A memory as the writer's transaction sees it."""
        row = conn.execute(f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.rowid = ?",
                           (rowid,)).fetchone()
        return row_to_memory(row)

    def update_job(self, conn: Connection, memory: Memory, row: MemoryRow | None,
                   set_importance: bool = True) -> int:
        """Write a changed memory; with `row`, its content and vector changed too; without
        `set_importance` the stored importance is kept. Returns the index log seq (0 when
        the vector did not change)."""
        conn.execute(
            "UPDATE memories SET content = ?, memory_type = ?, "
            "importance = CASE WHEN ? THEN ? ELSE importance END, tags = ?, "
            "metadata = ?, updated_at = ?, event_time = ?, ttl_seconds = ?, expires_at = ?, "
            "content_hash = COALESCE(?, content_hash), norm_hash = ? WHERE rowid = ?",
            (memory.content, memory.memory_type, set_importance, memory.importance,
             _json_encode(memory.tags).decode(), _json_encode(memory.metadata).decode(),
             memory.updated_at, memory.event_time, memory.ttl_seconds, memory.expires_at,
             row.content_hash if row else None, normal_hash(memory.content), memory.rowid))
        if row is None:
            return 0
        self._write_text_and_vector(conn, memory, row, replace=True)
        return self._log(conn, memory.agent_id, memory.rowid, "add")

    def set_importance_job(self, conn: Connection, rowid: int, importance: float,
                           now: int) -> None:
        conn.execute("UPDATE memories SET importance = ?, updated_at = ? WHERE rowid = ?",
                     (importance, now, rowid))

    def delete_job(self, conn: Connection, agent_id: str, rowids: Sequence[int]) -> int:
        seq = 0
        for rowid in rowids:
            conn.execute("DELETE FROM memories WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM memory_vectors WHERE rowid = ?", (rowid,))
            seq = self._log(conn, agent_id, rowid, "del")
        return seq

    def trim_index_log_job(self, conn: Connection, agent_id: str, upto_seq: int) -> None:
        """Drop log entries already contained in a saved index file."""
        conn.execute("DELETE FROM index_log WHERE agent_id = ? AND seq <= ?", (agent_id, upto_seq))
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                     "SET value = excluded.value", (f"index_trim:{agent_id}", str(upto_seq)))

    def _write_text_and_vector(self, conn: Connection, m: Memory, row: MemoryRow,
                               replace: bool) -> None:
        if replace:
            conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (m.rowid,))
            conn.execute("DELETE FROM memory_vectors WHERE rowid = ?", (m.rowid,))
        conn.execute("INSERT INTO memories_fts (rowid, content, context, agent) "
                     "VALUES (?, ?, ?, ?)", (m.rowid, m.content, row.context,
                                             agent_token(m.agent_id)))
        conn.execute(
            "INSERT INTO memory_vectors (rowid, embedding, model_id, content_hash) "
            "VALUES (?, ?, ?, ?)",
            (m.rowid, np.ascontiguousarray(row.vector, dtype=np.float32).tobytes(),
             self.model_id, row.content_hash))

    @staticmethod
    def _log(conn: Connection, agent_id: str, label: int, op: str) -> int:
        cur = conn.execute("INSERT INTO index_log (agent_id, label, op) VALUES (?, ?, ?)",
                           (agent_id, label, op))
        return int(cur.lastrowid)


def agent_token(agent_id: str) -> str:
    """One FTS token per agent (agent ids hold characters the tokenizer would split on)."""
    return "a" + hashlib.sha256(agent_id.encode()).hexdigest()[:24]


# A memory is live until it expires.
_LIVE = "(m.expires_at IS NULL OR m.expires_at > ?)"


def _batch_filter_sql(agent_id: str, f: BatchFilter, now: int) -> tuple[str, list[Any]]:
    clauses = ["m.agent_id = ?", _LIVE]
    params: list[Any] = [agent_id, now]
    if f.tags:  # every listed tag
        clauses.append("(SELECT count(DISTINCT t.value) FROM json_each(m.tags) t WHERE t.value "
                       "IN (SELECT value FROM json_each(?))) = ?")
        params += [_json_encode(f.tags).decode(), len(set(f.tags))]
    for column, op, value in (("importance", ">=", f.min_importance),
                              ("importance", "<=", f.max_importance),
                              ("created_at", ">=", f.created_after),
                              ("created_at", "<=", f.created_before),
                              ("memory_type", "=", f.memory_type),
                              ("session_id", "=", f.session_id)):
        if value is not None:
            clauses.append(f"m.{column} {op} ?")
            params.append(value)
    return " AND ".join(clauses), params


def _filter_sql(agent_id: str, f: RecallFilters, now: int) -> tuple[str, list[Any]]:
    clauses = ["m.agent_id = ?", _LIVE]
    params: list[Any] = [agent_id, now]
    if f.memory_type is not None:
        clauses.append("m.memory_type = ?")
        params.append(f.memory_type)
    if f.min_importance is not None:
        clauses.append("m.importance >= ?")
        params.append(f.min_importance)
    if f.tags:
        clauses.append("EXISTS (SELECT 1 FROM json_each(m.tags) t WHERE t.value IN "
                       "(SELECT value FROM json_each(?)))")
        params.append(_json_encode(f.tags).decode())
    if f.session_id is not None:
        clauses.append("m.session_id = ?")
        params.append(f.session_id)
    if f.since is not None:
        clauses.append("COALESCE(m.event_time, m.created_at) >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append("COALESCE(m.event_time, m.created_at) <= ?")
        params.append(f.until)
    return " AND ".join(clauses), params
