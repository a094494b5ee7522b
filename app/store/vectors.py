"""Stored vectors as the vector indexes read them, and the index log.

The index log records every vector change (add or delete, by agent) in commit order; an
index file saved with seq N contains every change up to N, and the log entries after N are
replayed when it loads. Saved indexes trim the log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from app.store.db import Connection
from app.store.filters import json_list
from app.store.protocol import ConnSource


def unpack(rows: list[Any], dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, vectors) of (rowid, float32 blob) rows."""
    labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
    return labels, vecs.reshape(len(rows), dimension)


def log_change(conn: Connection, agent_id: str, label: int, op: str) -> int:
    cur = conn.execute("INSERT INTO index_log (agent_id, label, op) VALUES (?, ?, ?)",
                       (agent_id, label, op))
    return int(cur.lastrowid)


class SqliteVectors:
    def __init__(self, conn: ConnSource, dimension: int) -> None:
        self._conn = conn
        self.dimension = dimension

    def agents(self) -> list[str]:
        """Every agent holding vectors."""
        return [r[0] for r in self._conn().execute(
            "SELECT DISTINCT agent_id FROM memories ORDER BY agent_id")]

    def has(self, agent_id: str) -> bool:
        return self._conn().execute(
            "SELECT 1 FROM memories WHERE agent_id = ? LIMIT 1", (agent_id,)
        ).fetchone() is not None

    def count(self, agent_id: str) -> int:
        return int(self._conn().execute(
            "SELECT count(*) FROM memories WHERE agent_id = ?", (agent_id,)).fetchone()[0])

    def of_agent(self, agent_id: str, batch: int = 10_000
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every vector of an agent in batches: for rebuilding its index."""
        last = 0
        conn = self._conn()
        while True:
            rows = conn.execute(
                "SELECT v.rowid, v.embedding FROM memories m JOIN memory_vectors v "
                "ON v.rowid = m.rowid WHERE m.agent_id = ? AND m.rowid > ? "
                "ORDER BY m.rowid LIMIT ?", (agent_id, last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield unpack(rows, self.dimension)

    def get(self, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(labels, vectors) of these labels (those that exist)."""
        rows = self._conn().execute(
            "SELECT rowid, embedding FROM memory_vectors WHERE rowid IN "
            "(SELECT value FROM json_each(?))", (json_list(labels),)).fetchall()
        return unpack(rows, self.dimension)

    def texts(self, labels: Sequence[int]) -> list[tuple[int, str, int | None]]:
        """(label, content, event time) of these labels (those that exist)."""
        return [(r[0], r[1], r[2]) for r in self._conn().execute(
            "SELECT rowid, content, event_time FROM memories WHERE rowid IN "
            "(SELECT value FROM json_each(?))", (json_list(labels),))]

    def texts_of_agent(self, agent_id: str, batch: int = 10_000
                       ) -> Iterator[list[tuple[int, str, int | None]]]:
        """Every (label, content, event time) of an agent in batches: for rebuilding its
        text index."""
        last = 0
        conn = self._conn()
        while True:
            rows = [(r[0], r[1], r[2]) for r in conn.execute(
                "SELECT rowid, content, event_time FROM memories WHERE agent_id = ? AND "
                "rowid > ? ORDER BY rowid LIMIT ?", (agent_id, last, batch))]
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def log(self, agent_id: str, after_seq: int) -> list[tuple[int, int, str]]:
        """(seq, label, op) of the agent's changes after `after_seq`, in order."""
        return [(r[0], r[1], r[2]) for r in self._conn().execute(
            "SELECT seq, label, op FROM index_log WHERE agent_id = ? AND seq > ? ORDER BY seq",
            (agent_id, after_seq))]

    def log_head(self, agent_id: str) -> int:
        row = self._conn().execute(
            "SELECT max(seq) FROM index_log WHERE agent_id = ?", (agent_id,)).fetchone()
        return int(row[0] or 0)

    def log_trimmed(self, agent_id: str) -> int:
        """The seq up to which the agent's log was trimmed (an index older than it cannot
        be brought up to date by replay)."""
        row = self._conn().execute(
            "SELECT value FROM meta WHERE key = ?", (f"index_trim:{agent_id}",)).fetchone()
        return int(row[0]) if row else 0

    def trim_log(self, agent_id: str, upto_seq: int) -> None:
        """Drop log entries already contained in a saved index file (a write)."""
        conn = self._conn()
        conn.execute("DELETE FROM index_log WHERE agent_id = ? AND seq <= ?",
                     (agent_id, upto_seq))
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                     "SET value = excluded.value", (f"index_trim:{agent_id}", str(upto_seq)))
