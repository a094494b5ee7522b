"""The knowledge graph in SQL: edges between memories (by rowid) and the entities each memory
mentions. Both rows reference their memories with ON DELETE CASCADE, so they die in the
transaction that deletes the memory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from app.models import Edge, Mention
from app.store.filters import json_list
from app.store.protocol import ConnSource

EDGE_COLUMNS = "e.src, e.dst, e.edge_type, e.weight, e.created_at, e.label"


def _edge(row: Sequence[Any]) -> Edge:
    return Edge(src=row[0], dst=row[1], edge_type=row[2], weight=row[3], created_at=row[4],
                label=row[5])


def _type_clause(alias: str, types: Sequence[str] | None) -> tuple[str, list[Any]]:
    if not types:
        return "", []
    return (f" AND {alias}.edge_type IN (SELECT value FROM json_each(?))", [json_list(types)])


class SqliteEdges:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    # -- reads -------------------------------------------------------------------------

    def incident(self, rowids: Sequence[int], per_node: int, *,
                 types: Sequence[str] | None = None, min_weight: float = 0.0) -> list[Edge]:
        """Edges touching these memories: at most `per_node` strongest ones leaving and as
        many arriving at each (read off the (node, weight) indexes, never all of a hub's)."""
        if not rowids:
            return []
        types_sql, types_params = _type_clause("x", types)
        parts, params = [], []
        for end in ("src", "dst"):
            parts.append(
                f"SELECT {EDGE_COLUMNS} FROM json_each(?) j CROSS JOIN memory_edges e "
                "ON (e.src, e.dst, e.edge_type) IN (SELECT x.src, x.dst, x.edge_type FROM "
                f"memory_edges x WHERE x.{end} = j.value AND x.weight >= ?{types_sql} "
                "ORDER BY x.weight DESC LIMIT ?)")
            params += [json_list(rowids), min_weight, *types_params, per_node]
        rows = self._conn().execute(" UNION ".join(parts), params).fetchall()
        return [_edge(r) for r in rows]

    def between(self, rowids: Sequence[int], *, limit: int) -> list[Edge]:
        """Edges whose two ends are both among these memories, strongest first."""
        if not rowids:
            return []
        ids = json_list(rowids)
        rows = self._conn().execute(
            f"SELECT {EDGE_COLUMNS} FROM memory_edges e WHERE "
            "e.src IN (SELECT value FROM json_each(?)) AND "
            "e.dst IN (SELECT value FROM json_each(?)) ORDER BY e.weight DESC LIMIT ?",
            (ids, ids, limit)).fetchall()
        return [_edge(r) for r in rows]

    def of_agent(self, agent_id: str, now: int, *, types: Sequence[str] | None = None,
                 min_weight: float = 0.0, limit: int | None = None
                 ) -> list[tuple[Edge, str, str]]:
        """(edge, from memory id, to memory id) of the agent's edges between live memories,
        at most `limit` (all when None)."""
        types_sql, types_params = _type_clause("e", types)
        rows = self._conn().execute(
            f"SELECT {EDGE_COLUMNS}, a.id, b.id FROM memories a JOIN memory_edges e "
            "ON e.src = a.rowid JOIN memories b ON b.rowid = e.dst "
            "WHERE a.agent_id = ? AND e.weight >= ? "
            "AND (a.expires_at IS NULL OR a.expires_at > ?) "
            f"AND (b.expires_at IS NULL OR b.expires_at > ?){types_sql} LIMIT ?",
            [agent_id, min_weight, now, now, *types_params,
             -1 if limit is None else limit]).fetchall()
        return [(_edge(r[:6]), r[6], r[7]) for r in rows]

    def count_of_agent(self, agent_id: str) -> int:
        return int(self._conn().execute(
            "SELECT count(*) FROM memory_edges e JOIN memories m ON m.rowid = e.src "
            "WHERE m.agent_id = ?", (agent_id,)).fetchone()[0])

    def get(self, src: int, dst: int, edge_type: str) -> Edge | None:
        row = self._conn().execute(
            f"SELECT {EDGE_COLUMNS} FROM memory_edges e WHERE e.src = ? AND e.dst = ? AND "
            "e.edge_type = ?", (src, dst, edge_type)).fetchone()
        return None if row is None else _edge(row)

    # -- writes ------------------------------------------------------------------------

    def add(self, edges: Iterable[Edge]) -> None:
        """Insert edges; an edge that exists keeps the higher weight and takes a new label."""
        self._conn().executemany(
            "INSERT INTO memory_edges (src, dst, edge_type, weight, created_at, label) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (src, dst, edge_type) DO UPDATE SET "
            "weight = max(weight, excluded.weight), label = COALESCE(excluded.label, label)",
            [(e.src, e.dst, e.edge_type, e.weight, e.created_at, e.label) for e in edges])

    def remove_from(self, rowid: int, types: Sequence[str]) -> None:
        """Drop the edges of these types leaving a memory (before they are derived again)."""
        self._conn().execute(
            "DELETE FROM memory_edges WHERE src = ? AND edge_type IN "
            "(SELECT value FROM json_each(?))", (rowid, json_list(types)))

    def repoint(self, old: Sequence[int], new: int, types: Sequence[str]) -> None:
        """Copy the edges of these types that link the `old` memories to others onto `new`
        (before the old ones are deleted): a merged memory keeps their explicit links."""
        ids = json_list(old)
        self._conn().execute(
            "INSERT OR IGNORE INTO memory_edges (src, dst, edge_type, weight, created_at, label) "
            "SELECT CASE WHEN e.src IN (SELECT value FROM json_each(?1)) THEN ?2 ELSE e.src END, "
            "CASE WHEN e.dst IN (SELECT value FROM json_each(?1)) THEN ?2 ELSE e.dst END, "
            "e.edge_type, e.weight, e.created_at, e.label FROM memory_edges e "
            "WHERE e.edge_type IN (SELECT value FROM json_each(?3)) AND "
            "(e.src IN (SELECT value FROM json_each(?1)) OR e.dst IN (SELECT value FROM "
            "json_each(?1))) AND NOT (e.src IN (SELECT value FROM json_each(?1)) AND e.dst IN "
            "(SELECT value FROM json_each(?1))) AND e.src != ?2 AND e.dst != ?2",
            (ids, new, json_list(types)))


class SqliteEntities:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def of_memory(self, rowid: int) -> list[Mention]:
        return [Mention(*r) for r in self._conn().execute(
            'SELECT entity_type, value, normalized, score, start, "end" FROM memory_entities '
            "WHERE memory = ? ORDER BY start", (rowid,))]

    def memories_with(self, agent_id: str, entity_type: str, normalized: str, limit: int,
                      *, count_upto: int = 0) -> tuple[int, list[int]]:
        """(how many times the agent's memories mention this entity, counted up to
        count_upto; the rowids of the newest `limit` memories that do, newest first)."""
        rows = self._conn().execute(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM memory_entities WHERE agent_id = ?1 "
            "AND entity_type = ?2 AND normalized = ?3 LIMIT ?4)), memory FROM (SELECT DISTINCT "
            "memory FROM memory_entities WHERE agent_id = ?1 AND entity_type = ?2 AND "
            "normalized = ?3 ORDER BY memory DESC LIMIT ?5)",
            (agent_id, entity_type, normalized, count_upto, limit)).fetchall()
        return (rows[0][0] if rows else 0), [r[1] for r in rows]

    def add(self, mentions: Iterable[tuple[int, str, Mention]]) -> None:
        """(memory rowid, agent, mention) rows."""
        self._conn().executemany(
            "INSERT OR REPLACE INTO memory_entities (memory, agent_id, entity_type, "
            'normalized, value, score, start, "end") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            [(rowid, agent_id, m.entity_type, m.normalized, m.value, m.score, m.start, m.end)
             for rowid, agent_id, m in mentions])

    def replace(self, rowid: int, agent_id: str, mentions: Iterable[Mention]) -> None:
        self._conn().execute("DELETE FROM memory_entities WHERE memory = ?", (rowid,))
        self.add((rowid, agent_id, m) for m in mentions)
