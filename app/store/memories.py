"""Memories with their vectors: reads, and writes for the writer thread."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import msgspec
import numpy as np

from app.models import MEMORY_TYPES, Memory, MemoryFilter, PageCursor
from app.store.db import Connection
from app.store.filters import LIVE, filter_sql, json_list
from app.store.protocol import ConnSource, MemoryRow
from app.store.sentences import SentenceCache, best_cosines, best_packed_cosines, pack_many
from app.store.vectors import log_change
from app.text import normal_hash

_encode = msgspec.json.encode
_decode = msgspec.json.decode

MEMORY_COLUMNS = (
    "m.rowid, m.id, m.agent_id, m.content, m.memory_type, m.importance, m.tags, m.metadata, "
    "m.session_id, m.created_at, m.updated_at, m.last_accessed_at, m.access_count, "
    "m.ttl_seconds, m.expires_at, m.event_time"
)


# The memory browser's orders: column, descending (then rowid the same way).
SORT_COLUMNS = {"recent": ("m.created_at", True), "oldest": ("m.created_at", False),
                "importance": ("m.importance", True), "accessed": ("m.last_accessed_at", True)}


def row_to_memory(row: Sequence[Any]) -> Memory:
    return Memory(
        rowid=row[0], id=row[1], agent_id=row[2], content=row[3], memory_type=row[4],
        importance=row[5], tags=_decode(row[6]), metadata=_decode(row[7]),
        session_id=row[8], created_at=row[9], updated_at=row[10], last_accessed_at=row[11],
        access_count=row[12], ttl_seconds=row[13], expires_at=row[14], event_time=row[15],
    )


class SqliteMemories:
    def __init__(self, conn: ConnSource, model_id: str, dimension: int,
                 sentence_cache: SentenceCache | None = None) -> None:
        self._conn = conn
        self.model_id = model_id
        self.dimension = dimension
        self._sentences = sentence_cache  # shared by the readers and the writer

    # -- reads -------------------------------------------------------------------------

    def get(self, memory_id: str, agent_id: str | None, now: int) -> list[Memory]:
        """The live memories with this id (of this agent, when given)."""
        sql = f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.id = ? AND {LIVE}"
        params: list[Any] = [memory_id, now]
        if agent_id is not None:
            sql += " AND m.agent_id = ?"
            params.append(agent_id)
        return [row_to_memory(r) for r in self._conn().execute(sql, params)]

    def by_rowid(self, rowid: int) -> Memory:
        row = self._conn().execute(f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.rowid = ?",
                                   (rowid,)).fetchone()
        return row_to_memory(row)

    def by_rowids(self, rowids: Iterable[int], now: int) -> dict[int, Memory]:
        ids = list(rowids)
        if not ids:
            return {}
        sql = (f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.rowid IN "
               f"(SELECT value FROM json_each(?)) AND {LIVE}")
        rows = self._conn().execute(sql, (json_list(ids), now))
        return {r[0]: row_to_memory(r) for r in rows}

    def ids(self, rowids: Sequence[int]) -> dict[int, str]:
        """The memory ids of these rowids (expired memories included)."""
        rows = self._conn().execute("SELECT rowid, id FROM memories WHERE rowid IN "
                                    "(SELECT value FROM json_each(?))", (json_list(rowids),))
        return {r[0]: r[1] for r in rows}

    def created_since(self, since: int) -> int:
        return int(self._conn().execute("SELECT count(*) FROM memories WHERE created_at >= ?",
                                        (since,)).fetchone()[0])

    def count(self, agent_id: str, f: MemoryFilter, now: int) -> int:
        where, params = filter_sql(agent_id, f, now)
        return int(self._conn().execute(
            f"SELECT count(*) FROM memories m WHERE {where}", params).fetchone()[0])

    def newest(self, agent_id: str, f: MemoryFilter, now: int, *, limit: int,
               offset: int = 0) -> list[Memory]:
        """The agent's live memories matching the filter, newest first."""
        where, params = filter_sql(agent_id, f, now)
        sql = (f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} "
               "ORDER BY m.created_at DESC, m.rowid DESC LIMIT ? OFFSET ?")
        return [row_to_memory(r) for r in self._conn().execute(sql, [*params, limit, offset])]

    def browse(self, agent_id: str, f: MemoryFilter, now: int, *, sort: str, limit: int,
               after: PageCursor | None = None, before: PageCursor | None = None,
               scan: int | None = None) -> tuple[list[Memory], PageCursor | None]:
        """One page of the agent's live memories matching the filter, in `sort` order
        (MEMORY_SORTS), by keyset: the memories after the cursor (value, rowid) of the last
        one shown, or the page just before the cursor of the first one shown. Each order
        walks an index, so a page costs the same at any depth.

        With `scan`, at most that many memories are examined from the cursor (a filter
        that few memories pass would otherwise read the whole agent); the second value is
        then the cursor of the last memory examined when the budget ran out before the
        page was full (None otherwise), to go on from."""
        column, desc = SORT_COLUMNS[sort]
        reverse = before is not None
        cursor = before if reverse else after
        # walking forward in a DESC order means smaller keys, unless we walk back
        op = "<" if desc != reverse else ">"
        order = "DESC" if desc != reverse else "ASC"
        keyset, key_params = "", []
        if cursor is not None:
            keyset = f" AND ({column}, m.rowid) {op} (?, ?)"
            key_params = [cursor[0], cursor[1]]
        where, params = filter_sql(agent_id, f, now)
        conn = self._conn()
        if f.session_id is not None:  # a session is small: its index, then sort
            source = "memories m INDEXED BY memories_by_session"
        else:
            source = "memories m"
        stopped: PageCursor | None = None
        if scan is not None and f.session_id is None and f.any():
            # the memory `scan` places on in this order: the page goes no further
            bound = conn.execute(
                f"SELECT {column}, m.rowid FROM memories m WHERE m.agent_id = ?{keyset} "
                f"ORDER BY {column} {order}, m.rowid {order} LIMIT 1 OFFSET ?",
                [agent_id, *key_params, scan - 1]).fetchone()
            if bound is not None:
                stopped = (float(bound[0]), int(bound[1]))
                keyset += f" AND ({column}, m.rowid) {'>=' if op == '<' else '<='} (?, ?)"
                key_params += [bound[0], bound[1]]
        rows = conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM {source} WHERE {where}{keyset} "
            f"ORDER BY {column} {order}, m.rowid {order} LIMIT ?",
            [*params, *key_params, limit]).fetchall()
        if len(rows) >= limit:
            stopped = None
        if reverse:
            rows.reverse()
        return [row_to_memory(r) for r in rows], stopped

    def importance_histogram(self, agent_id: str | None, bins: int) -> list[int]:
        """How many stored memories (of one agent, or of all) fall in each of `bins` equal
        importance ranges from 0 to 1 (counted in an index, range by range)."""
        counts = [0] * bins
        bounds = [i / bins for i in range(bins)] + [2.0]  # the last range takes 1.0
        ranges = ", ".join(
            f"(SELECT count(*) FROM memories WHERE agent_id = ?1 AND importance >= {lo!r} "
            f"AND importance < {hi!r})" for lo, hi in pairwise(bounds))
        conn = self._conn()
        for agent in self._agents(agent_id):
            row = conn.execute(f"SELECT {ranges}", (agent,)).fetchone()
            counts = [a + int(b) for a, b in zip(counts, row, strict=True)]
        return counts

    def created_histogram(self, agent_id: str | None, start: int, step: int,
                          buckets: int) -> list[int]:
        """Stored memories created in each of `buckets` periods of `step` seconds from
        `start` (counted in an index, period by period)."""
        counts = [0] * buckets
        ranges = ", ".join(
            f"(SELECT count(*) FROM memories WHERE agent_id = ?1 AND created_at >= "
            f"{start + i * step} AND created_at < {start + (i + 1) * step})"
            for i in range(buckets))
        conn = self._conn()
        for agent in self._agents(agent_id):
            row = conn.execute(f"SELECT {ranges}", (agent,)).fetchone()
            counts = [a + int(b) for a, b in zip(counts, row, strict=True)]
        return counts

    def created_range(self, agent_id: str | None) -> tuple[int | None, int | None]:
        """The first and last creation time of the stored memories."""
        first = last = None
        conn = self._conn()
        for agent in self._agents(agent_id):
            lo, hi = conn.execute(
                "SELECT (SELECT min(created_at) FROM memories WHERE agent_id = ?1), "
                "(SELECT max(created_at) FROM memories WHERE agent_id = ?1)",
                (agent,)).fetchone()
            if lo is not None:
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
        return first, last

    def type_counts(self, agent_id: str | None) -> dict[str, int]:
        """Stored memories per type (of one agent, or of all; counted in an index)."""
        counts = dict.fromkeys(MEMORY_TYPES, 0)
        ranges = ", ".join("(SELECT count(*) FROM memories WHERE agent_id = ?1 AND "
                           f"memory_type = '{t}')" for t in MEMORY_TYPES)
        conn = self._conn()
        for agent in self._agents(agent_id):
            row = conn.execute(f"SELECT {ranges}", (agent,)).fetchone()
            for memory_type, n in zip(MEMORY_TYPES, row, strict=True):
                counts[memory_type] += int(n)
        return {t: n for t, n in counts.items() if n}

    def _agents(self, agent_id: str | None) -> list[str]:
        if agent_id is not None:
            return [agent_id]
        return [r[0] for r in self._conn().execute("SELECT agent_id FROM agents")]

    def rowids(self, agent_id: str, f: MemoryFilter, now: int | None) -> list[int]:
        """Rowids of the agent's memories matching the filter (expired ones too when `now`
        is None)."""
        where, params = filter_sql(agent_id, f, now)
        return [r[0] for r in self._conn().execute(
            f"SELECT m.rowid FROM memories m WHERE {where}", params)]

    def existing_ids(self, agent_id: str, ids: list[str]) -> list[str]:
        return [r[0] for r in self._conn().execute(
            "SELECT id FROM memories WHERE agent_id = ? AND id IN "
            "(SELECT value FROM json_each(?))", (agent_id, json_list(ids)))]

    def session_adjacent(self, agent_id: str, rowids: Sequence[int], f: MemoryFilter,
                         now: int, *, after: int = 0, before: int = 0
                         ) -> list[tuple[int, int, int]]:
        """(anchor, rowid, offset) of the live memories stored just after (offset 1..after)
        and just before (offset -1..-before) each anchor in the anchor's session. Session
        order is stored order (rowid). A neighbour that fails the filter is left out but
        keeps its place, so offsets are true distances."""
        where, params = filter_sql(agent_id, f, now)
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
            rows = self._conn().execute(sql, [*params, json_list(rowids), now, count,
                                              agent_id]).fetchall()
            by_anchor: dict[int, list[tuple[int, int]]] = {}
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
        best first: exact, scored inside SQLite by sqlite-vec."""
        where, params = filter_sql(agent_id, f, now)
        rows = self._conn().execute(
            "SELECT v.rowid, 1.0 - vec_distance_cosine(v.embedding, ?) AS sim FROM memories m "
            f"JOIN memory_vectors v ON v.rowid = m.rowid WHERE {where} "
            "ORDER BY sim DESC LIMIT ?",
            [np.ascontiguousarray(query, dtype=np.float32).tobytes(), *params, n]).fetchall()
        return (np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                np.fromiter((r[1] for r in rows), dtype=np.float32, count=len(rows)))

    def sentence_vectors(self, rowids: Iterable[int]) -> dict[int, np.ndarray]:
        """rowid -> its sentences' vectors (n x dimension), for the memories of these rowids
        that have them under the current model (after a model change, until they are
        embedded again, they have none)."""
        return self._read_sentences(list(rowids))

    def best_sentence_cosines(self, rowids: Iterable[int], query: np.ndarray
                              ) -> dict[int, float]:
        """rowid -> the best cosine between `query` and one of its sentences, for the
        memories of these rowids that have sentence vectors (through the cache, when the
        store keeps one)."""
        cache = self._sentences
        if cache is None:
            return best_cosines(self._read_sentences(list(rowids)), query)
        found, missing, generation = cache.lookup(rowids)
        if missing:
            read = pack_many(self._read_sentences(missing))
            cache.put(generation, read, missing)
            found.update(read)
        return best_packed_cosines(found, query)

    def _read_sentences(self, ids: list[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        rows = self._conn().execute(
            "SELECT rowid, vectors FROM memory_sentences WHERE rowid IN "
            "(SELECT value FROM json_each(?)) AND model_id = ?", (json_list(ids), self.model_id))
        return {r[0]: np.frombuffer(r[1], dtype=np.float32).reshape(-1, self.dimension)
                for r in rows}

    def wake_up(self, agent_id: str, now: int, top_n: int, min_importance: float,
                half_life: float) -> tuple[list[Memory], int]:
        """The agent's memories ranked by importance x exp(-ln2 x age / half_life)."""
        where = f"m.agent_id = ? AND {LIVE} AND m.importance >= ?"
        params: list[Any] = [agent_id, now, min_importance]
        conn = self._conn()
        rows = conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY "
            "m.importance * exp(-0.6931471805599453 * max(0, ? - m.created_at) / ?) DESC, "
            "m.rowid DESC LIMIT ?", [*params, now, half_life, top_n]).fetchall()
        total = conn.execute(f"SELECT count(*) FROM memories m WHERE {where}",
                             params).fetchone()[0]
        return [row_to_memory(r) for r in rows], int(total)

    def same_text(self, agent_id: str, content: str, memory_type: str,
                  now: int) -> int | None:
        """Rowid of a live memory of the agent with the same normalised text and type."""
        norm_hash = normal_hash(content)
        row = self._conn().execute(
            "SELECT rowid FROM memories WHERE agent_id = ? AND norm_hash = ? AND "
            "memory_type = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY rowid LIMIT 1",
            (agent_id, norm_hash, memory_type, now)).fetchone()
        return None if row is None else int(row[0])

    def session_previous(self, agent_id: str, session_id: str, rowid: int) -> int | None:
        """Rowid of the memory stored just before this one in its session (session order is
        stored order), expired or not."""
        row = self._conn().execute(
            "SELECT max(rowid) FROM memories WHERE session_id = ? AND agent_id = ? AND "
            "rowid < ?", (session_id, agent_id, rowid)).fetchone()
        return None if row[0] is None else int(row[0])

    def rowids_by_id(self, agent_id: str, ids: Sequence[str]) -> dict[str, int]:
        """Memory id -> rowid of those of these ids the agent holds."""
        return {r[0]: r[1] for r in self._conn().execute(
            "SELECT id, rowid FROM memories WHERE agent_id = ? AND id IN "
            "(SELECT value FROM json_each(?))", (agent_id, json_list(ids)))}

    def most_important(self, agent_id: str, now: int, *, limit: int,
                       min_importance: float = 0.0) -> list[Memory]:
        """The agent's live memories by importance, then newest first."""
        sql = (f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE m.agent_id = ? AND {LIVE} AND "
               "m.importance >= ? ORDER BY m.importance DESC, m.rowid DESC LIMIT ?")
        return [row_to_memory(r) for r in self._conn().execute(
            sql, (agent_id, now, min_importance, limit))]

    def importance_stats(self, agent_id: str, now: int) -> tuple[int, float | None]:
        """(live memories, their mean importance)."""
        row = self._conn().execute(
            "SELECT count(*), avg(importance) FROM memories WHERE agent_id = ? AND "
            "(expires_at IS NULL OR expires_at > ?)", (agent_id, now)).fetchone()
        return int(row[0]), (None if row[1] is None else float(row[1]))

    def page(self, agent_id: str, now: int, after_rowid: int, limit: int,
             with_vectors: bool) -> list[tuple[Memory, bytes | None, int | None]]:
        """The agent's live memories after `after_rowid` in rowid (stored) order, with their
        float32 vectors as stored when asked and when they last decayed: an export reads
        these one page at a time."""
        if with_vectors:
            sql = (f"SELECT {MEMORY_COLUMNS}, m.decayed_at, v.embedding FROM memories m "
                   "LEFT JOIN memory_vectors v ON v.rowid = m.rowid ")
        else:
            sql = f"SELECT {MEMORY_COLUMNS}, m.decayed_at, NULL FROM memories m "
        # by rowid range (+agent_id keeps the planner off the agent index, which would sort
        # every memory of the agent for each page)
        sql += f"WHERE m.rowid > ? AND +m.agent_id = ? AND {LIVE} ORDER BY m.rowid LIMIT ?"
        rows = self._conn().execute(sql, (after_rowid, agent_id, now, limit)).fetchall()
        return [(row_to_memory(r), r[17], r[16]) for r in rows]

    # -- writes (on the writer's connection, inside its transaction) -------------------

    def lock_agents(self, agent_ids: Sequence[str]) -> None:
        return None  # the one writer of this file serializes every write already

    def insert(self, row: MemoryRow) -> int:
        """Insert one memory (setting its rowid) with its FTS row and vector; returns the
        index log seq."""
        m = row.memory
        conn = self._conn()
        conn.execute("INSERT OR IGNORE INTO agents (agent_id, created_at) VALUES (?, ?)",
                     (m.agent_id, m.created_at))
        cur = conn.execute(
            "INSERT INTO memories (id, agent_id, content, memory_type, importance, tags, "
            "metadata, session_id, created_at, updated_at, last_accessed_at, access_count, "
            "ttl_seconds, expires_at, event_time, content_hash, decayed_at, norm_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (m.id, m.agent_id, m.content, m.memory_type, m.importance,
             _encode(m.tags).decode(), _encode(m.metadata).decode(),
             m.session_id, m.created_at, m.updated_at, m.last_accessed_at, m.access_count,
             m.ttl_seconds, m.expires_at, m.event_time, row.content_hash,
             m.created_at if row.decayed_at is None else row.decayed_at,
             normal_hash(m.content)))
        m.rowid = int(cur.lastrowid)
        self._write_vector(conn, m, row, replace=False)
        return log_change(conn, m.agent_id, m.rowid, "add")

    def update(self, memory: Memory, row: MemoryRow | None, set_importance: bool) -> int:
        """Write a changed memory; with `row`, its content and vector changed too; without
        `set_importance` the stored importance is kept. Returns the index log seq (0 when
        the vector did not change)."""
        conn = self._conn()
        conn.execute(
            "UPDATE memories SET content = ?, memory_type = ?, "
            "importance = CASE WHEN ? THEN ? ELSE importance END, tags = ?, "
            "metadata = ?, updated_at = ?, event_time = ?, ttl_seconds = ?, expires_at = ?, "
            "content_hash = COALESCE(?, content_hash), norm_hash = ? WHERE rowid = ?",
            (memory.content, memory.memory_type, set_importance, memory.importance,
             _encode(memory.tags).decode(), _encode(memory.metadata).decode(),
             memory.updated_at, memory.event_time, memory.ttl_seconds, memory.expires_at,
             row.content_hash if row else None, normal_hash(memory.content), memory.rowid))
        if row is None:
            return 0
        self._write_vector(conn, memory, row, replace=True)
        return log_change(conn, memory.agent_id, memory.rowid, "add")

    def set_importance(self, rowid: int, importance: float, now: int) -> None:
        self._conn().execute("UPDATE memories SET importance = ?, updated_at = ? WHERE rowid = ?",
                             (importance, now, rowid))

    def merge_duplicate(self, survivor_rowid: int, importance: float, tags: list[str],
                        now: int) -> None:
        """The survivor absorbs a duplicate: the higher importance, the union of tags."""
        conn = self._conn()
        row = conn.execute("SELECT importance, tags FROM memories WHERE rowid = ?",
                           (survivor_rowid,)).fetchone()
        merged_tags = list(dict.fromkeys([*_decode(row[1]), *tags]))
        conn.execute("UPDATE memories SET importance = ?, tags = ?, updated_at = ?, "
                     "decayed_at = ? WHERE rowid = ?",
                     (max(row[0], importance), _encode(merged_tags).decode(), now, now,
                      survivor_rowid))

    def delete(self, agent_id: str, rowids: Sequence[int]) -> int:
        """Delete memories with their FTS rows and vectors; returns the index log seq."""
        conn = self._conn()
        seq = 0
        for rowid in rowids:
            conn.execute("DELETE FROM memories WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM memory_vectors WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM memory_sentences WHERE rowid = ?", (rowid,))
            seq = log_change(conn, agent_id, rowid, "del")
        if self._sentences is not None:
            self._sentences.forget(rowids)
        return seq

    def _write_vector(self, conn: Connection, m: Memory, row: MemoryRow,
                      replace: bool) -> None:
        if replace:
            conn.execute("DELETE FROM memory_vectors WHERE rowid = ?", (m.rowid,))
            conn.execute("DELETE FROM memory_sentences WHERE rowid = ?", (m.rowid,))
        if self._sentences is not None:
            self._sentences.forget([m.rowid])
        conn.execute(
            "INSERT INTO memory_vectors (rowid, embedding, model_id, content_hash) "
            "VALUES (?, ?, ?, ?)",
            (m.rowid, np.ascontiguousarray(row.vector, dtype=np.float32).tobytes(),
             self.model_id, row.content_hash))
        if row.sentences is not None and len(row.sentences):
            conn.execute(
                "INSERT INTO memory_sentences (rowid, model_id, content_hash, vectors) "
                "VALUES (?, ?, ?, ?)",
                (m.rowid, self.model_id, row.content_hash,
                 np.ascontiguousarray(row.sentences, dtype=np.float32).tobytes()))
