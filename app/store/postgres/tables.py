"""Sessions, agents, lifecycle (decay, feedback, trash, policies, meta), API keys, the
knowledge graph and import jobs in PostgreSQL: the same operations as the SQLite modules
(sessions.py, lifecycle.py, keys.py, graph.py, imports.py), in PostgreSQL's SQL."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec
import numpy as np
from psycopg.types.json import Jsonb

from app import filter_dsl
from app.errors import DataDirError
from app.models import ApiKey, DecayPolicy, Edge, Item, Mention, Namespace, Session
from app.store.namespaces import fts_text
from app.store.postgres.conn import APP_NAME
from app.store.postgres.filters import dsl_sql
from app.store.postgres.memories import vector_text
from app.store.protocol import ConnSource, ItemWrite, StagedRow
from app.text import BM25_B, BM25_K1, tokens

LN2 = math.log(2)
STAGE = "reindex_stage"
_encode = msgspec.json.encode
_decode = msgspec.json.decode

# -- sessions and agents --------------------------------------------------------------------

SESSION_COLUMNS = (
    "s.id, s.agent_id, s.started_at, s.last_activity_at, s.ended_at, s.ended_reason, "
    "s.idle_timeout_secs, s.metadata, s.summary, "
    "(SELECT count(*) FROM memories m WHERE m.session_id = s.id AND m.agent_id = s.agent_id)"
)
_TIMEOUT = "COALESCE(s.idle_timeout_secs, %(timeout)s)"
_IDLE = (f"s.ended_at IS NULL AND {_TIMEOUT} > 0 AND "
         f"s.last_activity_at + {_TIMEOUT} <= %(now)s")


def row_to_session(row: Any) -> Session:
    return Session(id=row[0], agent_id=row[1], started_at=row[2], last_activity_at=row[3],
                   ended_at=row[4], ended_reason=row[5], idle_timeout_secs=row[6],
                   metadata=None if row[7] is None else dict(row[7]), summary=row[8],
                   memory_count=row[9])


def _ensure_agent(conn: Any, agent_id: str, now: int) -> int:
    return int(conn.execute("INSERT INTO agents (agent_id, created_at) VALUES (%s, %s) "
                            "ON CONFLICT DO NOTHING", (agent_id, now)).rowcount)


class PgSessions:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, session_id: str) -> Session | None:
        row = self._conn().execute(
            f"SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = %s",
            (session_id,)).fetchone()
        return None if row is None else row_to_session(row)

    def newest(self, agent_id: str | Sequence[str] | None, active_only: bool, limit: int,
               offset: int) -> tuple[list[Session], int]:
        clauses: list[str] = ["true"]
        params: list[Any] = []
        if isinstance(agent_id, str):
            clauses.append("s.agent_id = %s")
            params.append(agent_id)
        elif agent_id is not None:
            if not agent_id:
                return [], 0
            clauses.append("s.agent_id = ANY(%s)")
            params.append(list(agent_id))
        if active_only:
            clauses.append("s.ended_at IS NULL")
        where = " AND ".join(clauses)
        conn = self._conn()
        rows = conn.execute(f"SELECT {SESSION_COLUMNS} FROM sessions s WHERE {where} "
                            "ORDER BY s.started_at DESC, s.seq DESC LIMIT %s OFFSET %s",
                            [*params, limit, offset]).fetchall()
        total = conn.execute(f"SELECT count(*) FROM sessions s WHERE {where}",
                             params).fetchone()[0]
        return [row_to_session(r) for r in rows], int(total)

    def page(self, agent_id: str, after: int, limit: int) -> list[tuple[int, Session]]:
        rows = self._conn().execute(
            f"SELECT s.seq, {SESSION_COLUMNS} FROM sessions s WHERE s.seq > %s AND "
            "s.agent_id = %s ORDER BY s.seq LIMIT %s", (after, agent_id, limit)).fetchall()
        return [(r[0], row_to_session(r[1:])) for r in rows]

    def any_idle(self, now: int, default_timeout: int) -> bool:
        return self._conn().execute(f"SELECT 1 FROM sessions s WHERE {_IDLE} LIMIT 1",
                                    {"timeout": default_timeout, "now": now}
                                    ).fetchone() is not None

    def started_since(self, since: int) -> int:
        return int(self._conn().execute("SELECT count(*) FROM sessions WHERE started_at >= %s",
                                        (since,)).fetchone()[0])

    def expire_idle(self, now: int, default_timeout: int) -> list[tuple[str, str]]:
        rows = self._conn().execute(
            f"UPDATE sessions AS s SET ended_reason = 'idle', "
            f"ended_at = s.last_activity_at + {_TIMEOUT} WHERE {_IDLE} "
            "RETURNING id, agent_id", {"timeout": default_timeout, "now": now}).fetchall()
        return [(r[0], r[1]) for r in rows]

    def start(self, session: Session) -> None:
        conn = self._conn()
        conn.execute(
            "INSERT INTO sessions (id, agent_id, started_at, last_activity_at, "
            "idle_timeout_secs, metadata) VALUES (%s, %s, %s, %s, %s, %s)",
            (session.id, session.agent_id, session.started_at, session.last_activity_at,
             session.idle_timeout_secs,
             None if session.metadata is None else Jsonb(session.metadata)))
        _ensure_agent(conn, session.agent_id, session.started_at)

    def restore(self, session: Session) -> bool:
        conn = self._conn()
        cur = conn.execute(
            "INSERT INTO sessions (id, agent_id, started_at, last_activity_at, "
            "ended_at, ended_reason, idle_timeout_secs, metadata, summary) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (session.id, session.agent_id, session.started_at, session.last_activity_at,
             session.ended_at, session.ended_reason, session.idle_timeout_secs,
             None if session.metadata is None else Jsonb(session.metadata),
             session.summary))
        _ensure_agent(conn, session.agent_id, session.started_at)
        return int(cur.rowcount) > 0

    def activity(self, agent_id: str, session_ids: set[str], now: int,
                 default_timeout: int) -> dict[str, str]:
        conn = self._conn()
        states = {}
        for sid in sorted(session_ids):
            conn.execute(
                "INSERT INTO sessions (id, agent_id, started_at, last_activity_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET last_activity_at = "
                "greatest(sessions.last_activity_at, excluded.last_activity_at) "
                "WHERE sessions.ended_at IS NULL AND sessions.agent_id = excluded.agent_id",
                (sid, agent_id, now, now))
            row = conn.execute("SELECT ended_at FROM sessions WHERE id = %s",
                               (sid,)).fetchone()
            states[sid] = "active" if row[0] is None else "ended"
        return states

    def end(self, session_id: str, now: int, summary: str | None,
            default_timeout: int) -> bool:
        cur = self._conn().execute(
            "UPDATE sessions SET ended_at = %s, ended_reason = 'client', last_activity_at = %s, "
            "summary = COALESCE(%s, summary) WHERE id = %s AND ended_at IS NULL",
            (now, now, summary, session_id))
        return int(cur.rowcount) > 0


class PgAgents:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def exists(self, agent_id: str) -> bool:
        return self._conn().execute("SELECT 1 FROM agents WHERE agent_id = %s",
                                    (agent_id,)).fetchone() is not None

    def ensure(self, agent_id: str, now: int) -> bool:
        return _ensure_agent(self._conn(), agent_id, now) > 0

    def overview(self) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT a.agent_id, "
            "(SELECT count(*) FROM memories m WHERE m.agent_id = a.agent_id), "
            "(SELECT count(*) FROM sessions s WHERE s.agent_id = a.agent_id), "
            "(SELECT count(*) FROM sessions s WHERE s.agent_id = a.agent_id "
            " AND s.ended_at IS NULL) "
            "FROM agents a ORDER BY a.agent_id").fetchall()
        return [{"agent_id": r[0], "memory_count": r[1], "session_count": r[2],
                 "active_sessions": r[3], "vector_count": r[1]} for r in rows]

    def last_activity(self) -> dict[str, int | None]:
        return {r[0]: max((v for v in r[1:] if v is not None), default=None)
                for r in self._conn().execute(
                    "SELECT a.agent_id, "
                    "(SELECT max(m.created_at) FROM memories m WHERE m.agent_id = a.agent_id), "
                    "(SELECT max(m.last_accessed_at) FROM memories m "
                    " WHERE m.agent_id = a.agent_id), "
                    "(SELECT max(s.last_activity_at) FROM sessions s "
                    " WHERE s.agent_id = a.agent_id) FROM agents a")}

    def memory_count(self, agent_id: str) -> int:
        return int(self._conn().execute("SELECT count(*) FROM memories WHERE agent_id = %s",
                                        (agent_id,)).fetchone()[0])

    def memory_counts(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._conn().execute(
            "SELECT agent_id, count(*) FROM memories GROUP BY agent_id")}

    def active_since(self, since: int) -> int:
        return int(self._conn().execute(
            "SELECT count(DISTINCT agent_id) FROM memories WHERE created_at >= %s OR "
            "(access_count > 0 AND last_accessed_at >= %s)", (since, since)).fetchone()[0])

    def stats(self, agent_id: str, now: int) -> dict[str, Any]:
        conn = self._conn()
        by_type = {r[0]: int(r[1]) for r in conn.execute(
            "SELECT memory_type, count(*) FROM memories WHERE agent_id = %s AND "
            "(expires_at IS NULL OR expires_at > %s) GROUP BY memory_type", (agent_id, now))}
        agg = conn.execute(
            "SELECT count(*), avg(importance), min(created_at), max(created_at) FROM memories "
            "WHERE agent_id = %s AND (expires_at IS NULL OR expires_at > %s)",
            (agent_id, now)).fetchone()
        sessions = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL) FROM sessions "
            "WHERE agent_id = %s", (agent_id,)).fetchone()
        return {"agent_id": agent_id, "total_memories": int(agg[0]),
                "memories_by_type": by_type,
                "total_sessions": int(sessions[0]), "active_sessions": int(sessions[1]),
                "avg_importance": None if agg[1] is None else round(float(agg[1]), 6),
                "oldest_memory_at": agg[2], "newest_memory_at": agg[3]}


# -- lifecycle ------------------------------------------------------------------------------

def _speed_sql(p: DecayPolicy) -> tuple[str, list[Any]]:
    types = " ".join("WHEN %s THEN %s::float8" for _ in p.type_speeds)
    sql = (f"(CASE memory_type {types} ELSE 1.0 END) * "
           "(CASE WHEN access_count = 0 THEN %s::float8 ELSE 1.0 / (1.0 + %s::float8 * "
           "ln(1.0 + access_count)) END) * (CASE WHEN flagged THEN %s::float8 ELSE 1.0 END)")
    params: list[Any] = [v for kv in p.type_speeds.items() for v in kv]
    params += [p.never_accessed_multiplier, p.usage_shield, p.flag_multiplier]
    return sql, params


class PgDecay:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def rowid_range(self) -> tuple[int, int]:
        row = self._conn().execute("SELECT min(rowid), max(rowid) FROM memories").fetchone()
        return (int(row[0] or 0), int(row[1] or 0))

    def state(self, rowid: int) -> tuple[int, bool] | None:
        row = self._conn().execute("SELECT decayed_at, flagged FROM memories WHERE rowid = %s",
                                   (rowid,)).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def expired(self, now: int, limit: int) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._conn().execute(
            "SELECT agent_id, rowid FROM memories WHERE expires_at IS NOT NULL AND "
            "expires_at <= %s LIMIT %s", (now, limit))]

    def decay(self, lo: int, hi: int, now: int, p: DecayPolicy
              ) -> tuple[int, list[tuple[str, int]]]:
        speed, sp = _speed_sql(p)
        x = f"((%s - decayed_at) / 3600.0 / %s * {speed})"
        xp: list[Any] = [now, p.half_life_hours, *sp]
        stamp = "%s"
        sp2: list[Any] = [now]
        if p.strategy == "linear":
            new, np_ = f"greatest(0.0, importance - 0.5 * {x})", xp
        elif p.strategy == "step":
            new, np_ = f"importance * power(0.5, floor({x}))", xp
            stamp = (f"CASE WHEN floor({x}) >= 1 THEN (decayed_at + floor({x}) * 3600.0 * "
                     f"%s / ({speed}))::bigint ELSE decayed_at END")
            sp2 = [*xp, *xp, p.half_life_hours, *sp]
        else:
            new, np_ = f"importance * exp(-{LN2} * {x})", xp
        conn = self._conn()
        cur = conn.execute(
            f"UPDATE memories SET importance = {new}, decayed_at = {stamp}, flagged = false "
            "WHERE rowid BETWEEN %s AND %s AND decayed_at < %s", [*np_, *sp2, lo, hi, now])
        below = conn.execute(
            "SELECT agent_id, rowid FROM memories WHERE rowid BETWEEN %s AND %s AND "
            "importance < %s", (lo, hi, p.min_importance)).fetchall()
        return int(cur.rowcount), [(r[0], r[1]) for r in below]

    def reinforce(self, hits: dict[int, int], now: int, boost: float) -> None:
        with self._conn().cursor() as cur:
            cur.executemany(
                "UPDATE memories SET access_count = access_count + %s, "
                "last_accessed_at = greatest(last_accessed_at, %s), "
                "decayed_at = greatest(decayed_at, %s), "
                "importance = least(1.0, importance * (1.0 + %s * ln(1.0 + %s) / %s)) "
                "WHERE rowid = %s",
                [(n, now, now, boost, n, LN2, rowid) for rowid, n in hits.items()])


class PgFeedback:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def apply(self, agent_id: str, memory_id: str, rowid: int, signal: str, factor: float,
              now: int) -> tuple[float, float]:
        conn = self._conn()
        (old,) = conn.execute("SELECT importance FROM memories WHERE rowid = %s FOR UPDATE",
                              (rowid,)).fetchone()
        new = min(1.0, max(0.0, old * factor))
        conn.execute("UPDATE memories SET importance = %s, updated_at = %s, "
                     "flagged = flagged OR %s WHERE rowid = %s",
                     (new, now, signal == "flag", rowid))
        conn.execute("INSERT INTO feedback (agent_id, memory_id, signal, timestamp, "
                     "old_importance, new_importance) VALUES (%s, %s, %s, %s, %s, %s)",
                     (agent_id, memory_id, signal, now, old, new))
        return float(old), float(new)

    def history(self, agent_id: str, memory_id: str) -> list[dict[str, Any]]:
        return [{"signal": r[0], "timestamp": r[1], "old_importance": r[2],
                 "new_importance": r[3]}
                for r in self._conn().execute(
                    "SELECT signal, timestamp, old_importance, new_importance FROM feedback "
                    "WHERE agent_id = %s AND memory_id = %s ORDER BY seq",
                    (agent_id, memory_id))]

    def counts(self, agent_id: str) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._conn().execute(
            "SELECT signal, count(*) FROM feedback WHERE agent_id = %s GROUP BY signal",
            (agent_id,))}


class PgTrash:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def put(self, agent_id: str, memory_id: str, survivor_id: str, memory: dict[str, Any],
            now: int, keep_secs: int, kind: str = "deduplication") -> None:
        if keep_secs <= 0:
            return
        self._conn().execute(
            "INSERT INTO deduplicated (id, agent_id, survivor_id, kind, memory, deleted_at, "
            "restorable_until) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (agent_id, id) "
            "DO UPDATE SET survivor_id = excluded.survivor_id, kind = excluded.kind, "
            "memory = excluded.memory, deleted_at = excluded.deleted_at, "
            "restorable_until = excluded.restorable_until",
            (memory_id, agent_id, survivor_id, kind, Jsonb(memory), now, now + keep_secs))

    def peek(self, agent_id: str, memory_id: str, now: int) -> dict[str, Any] | None:
        row = self._conn().execute(
            "SELECT memory FROM deduplicated WHERE agent_id = %s AND id = %s AND "
            "restorable_until > %s", (agent_id, memory_id, now)).fetchone()
        return None if row is None else dict(row[0])

    def restorable(self, agent_id: str, now: int) -> list[dict[str, Any]]:
        out = []
        for r in self._conn().execute(
                "SELECT id, kind, survivor_id, deleted_at, restorable_until, memory FROM "
                "deduplicated WHERE agent_id = %s AND restorable_until > %s "
                "ORDER BY deleted_at DESC", (agent_id, now)):
            memory = r[5]
            out.append({"id": r[0], "kind": r[1], "survivor_id": r[2], "deleted_at": r[3],
                        "restorable_until": r[4], "session_id": memory.get("session_id"),
                        "content": memory.get("content")})
        return out

    def take(self, agent_id: str, memory_id: str, now: int) -> dict[str, Any] | None:
        row = self._conn().execute(
            "DELETE FROM deduplicated WHERE agent_id = %s AND id = %s AND "
            "restorable_until > %s RETURNING memory", (agent_id, memory_id, now)).fetchone()
        return None if row is None else dict(row[0])

    def purge(self, now: int) -> int:
        return int(self._conn().execute(
            "DELETE FROM deduplicated WHERE restorable_until <= %s", (now,)).rowcount)


class PgPolicies:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, agent_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT policy FROM agent_policies WHERE agent_id = %s",
                                   (agent_id,)).fetchone()
        return None if row is None else dict(row[0])

    def set(self, agent_id: str, policy: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO agent_policies (agent_id, policy) VALUES (%s, %s) ON CONFLICT "
            "(agent_id) DO UPDATE SET policy = excluded.policy", (agent_id, Jsonb(policy)))


class PgMeta:
    """Server state kept in the database as JSON text by key (as in SQLite)."""

    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, key: str) -> Any:
        row = self._conn().execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else _decode(row[0])

    def set(self, key: str, value: Any) -> None:
        self._conn().execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value", (key, _encode(value).decode()))


# -- API keys -------------------------------------------------------------------------------

_KEY_COLUMNS = ("key_id, key_hash, name, scope, namespaces, created_at, expires_at, active, "
                "created_by, rotated_to, last_used_at, total_requests, failed_requests")


def _key(r: Any) -> ApiKey:
    return ApiKey(key_id=r[0], key_hash=r[1], name=r[2], scope=r[3],
                  namespaces=None if r[4] is None else list(r[4]),
                  created_at=r[5], expires_at=r[6], active=bool(r[7]), created_by=r[8],
                  rotated_to=r[9], last_used_at=r[10], total_requests=r[11],
                  failed_requests=r[12])


def _grants(value: list[str] | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


class PgKeys:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, key_id: str) -> ApiKey | None:
        r = self._conn().execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = %s",
                                 (key_id,)).fetchone()
        return None if r is None else _key(r)

    def by_hash(self, key_hash: str) -> ApiKey | None:
        r = self._conn().execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = %s",
                                 (key_hash,)).fetchone()
        return None if r is None else _key(r)

    def all(self) -> list[ApiKey]:
        return [_key(r) for r in self._conn().execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id")]

    def insert(self, key: ApiKey) -> None:
        self._conn().execute(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (key.key_id, key.key_hash, key.name, key.scope, _grants(key.namespaces),
             key.created_at, key.expires_at, key.active, key.created_by, key.rotated_to,
             key.last_used_at, key.total_requests, key.failed_requests))

    def update(self, key: ApiKey) -> bool:
        cur = self._conn().execute(
            "UPDATE api_keys SET name = %s, namespaces = %s, expires_at = %s, active = %s, "
            "rotated_to = %s WHERE key_id = %s",
            (key.name, _grants(key.namespaces), key.expires_at, key.active,
             key.rotated_to, key.key_id))
        return int(cur.rowcount) > 0

    def delete(self, key_id: str) -> bool:
        return int(self._conn().execute("DELETE FROM api_keys WHERE key_id = %s",
                                        (key_id,)).rowcount) > 0

    def add_usage(self, usage: Iterable[tuple[str, int, int, int]]) -> None:
        rows = [(n, failed, at, key_id) for key_id, n, failed, at in usage]
        if not rows:
            return
        with self._conn().cursor() as cur:
            cur.executemany(
                "UPDATE api_keys SET total_requests = total_requests + %s, "
                "failed_requests = failed_requests + %s, "
                "last_used_at = greatest(coalesce(last_used_at, 0), %s) WHERE key_id = %s",
                rows)


# -- the knowledge graph --------------------------------------------------------------------

EDGE_COLUMNS = "e.src, e.dst, e.edge_type, e.weight, e.created_at, e.label"


def _edge(row: Sequence[Any]) -> Edge:
    return Edge(src=row[0], dst=row[1], edge_type=row[2], weight=row[3], created_at=row[4],
                label=row[5])


class PgEdges:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def incident(self, rowids: Sequence[int], per_node: int, *,
                 types: Sequence[str] | None = None, min_weight: float = 0.0) -> list[Edge]:
        if not rowids:
            return []
        types_sql = " AND x.edge_type = ANY(%(types)s)" if types else ""
        parts = [
            f"SELECT {EDGE_COLUMNS} FROM unnest(%(ids)s::bigint[]) j(id) CROSS JOIN LATERAL "
            f"(SELECT x.* FROM memory_edges x WHERE x.{end} = j.id AND x.weight >= %(w)s"
            f"{types_sql} ORDER BY x.weight DESC LIMIT %(n)s) e" for end in ("src", "dst")]
        rows = self._conn().execute(" UNION ".join(parts), {
            "ids": [int(r) for r in rowids], "w": min_weight,
            "types": list(types or []), "n": per_node}).fetchall()
        return [_edge(r) for r in rows]

    def between(self, rowids: Sequence[int], *, limit: int) -> list[Edge]:
        if not rowids:
            return []
        ids = [int(r) for r in rowids]
        rows = self._conn().execute(
            f"SELECT {EDGE_COLUMNS} FROM memory_edges e WHERE e.src = ANY(%s) AND "
            "e.dst = ANY(%s) ORDER BY e.weight DESC LIMIT %s", (ids, ids, limit)).fetchall()
        return [_edge(r) for r in rows]

    def of_agent(self, agent_id: str, now: int, *, types: Sequence[str] | None = None,
                 min_weight: float = 0.0, limit: int | None = None
                 ) -> list[tuple[Edge, str, str]]:
        types_sql = " AND e.edge_type = ANY(%(types)s)" if types else ""
        rows = self._conn().execute(
            f"SELECT {EDGE_COLUMNS}, a.id, b.id FROM memories a JOIN memory_edges e "
            "ON e.src = a.rowid JOIN memories b ON b.rowid = e.dst "
            "WHERE a.agent_id = %(agent)s AND e.weight >= %(w)s "
            "AND (a.expires_at IS NULL OR a.expires_at > %(now)s) "
            f"AND (b.expires_at IS NULL OR b.expires_at > %(now)s){types_sql} LIMIT %(n)s",
            {"agent": agent_id, "w": min_weight, "now": now, "types": list(types or []),
             "n": limit}).fetchall()
        return [(_edge(r[:6]), r[6], r[7]) for r in rows]

    def count_of_agent(self, agent_id: str) -> int:
        return int(self._conn().execute(
            "SELECT count(*) FROM memory_edges e JOIN memories m ON m.rowid = e.src "
            "WHERE m.agent_id = %s", (agent_id,)).fetchone()[0])

    def get(self, src: int, dst: int, edge_type: str) -> Edge | None:
        row = self._conn().execute(
            f"SELECT {EDGE_COLUMNS} FROM memory_edges e WHERE e.src = %s AND e.dst = %s AND "
            "e.edge_type = %s", (src, dst, edge_type)).fetchone()
        return None if row is None else _edge(row)

    def add(self, edges: Iterable[Edge]) -> None:
        rows = [(e.src, e.dst, e.edge_type, e.weight, e.created_at, e.label) for e in edges]
        if not rows:
            return
        with self._conn().cursor() as cur:
            cur.executemany(
                "INSERT INTO memory_edges (src, dst, edge_type, weight, created_at, label) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (src, dst, edge_type) DO UPDATE "
                "SET weight = greatest(memory_edges.weight, excluded.weight), "
                "label = COALESCE(excluded.label, memory_edges.label)", rows)

    def remove_from(self, rowid: int, types: Sequence[str]) -> None:
        self._conn().execute("DELETE FROM memory_edges WHERE src = %s AND edge_type = ANY(%s)",
                             (rowid, list(types)))

    def repoint(self, old: Sequence[int], new: int, types: Sequence[str]) -> None:
        self._conn().execute(
            "INSERT INTO memory_edges (src, dst, edge_type, weight, created_at, label) "
            "SELECT CASE WHEN e.src = ANY(%(old)s) THEN %(new)s ELSE e.src END, "
            "CASE WHEN e.dst = ANY(%(old)s) THEN %(new)s ELSE e.dst END, "
            "e.edge_type, e.weight, e.created_at, e.label FROM memory_edges e "
            "WHERE e.edge_type = ANY(%(types)s) AND (e.src = ANY(%(old)s) OR "
            "e.dst = ANY(%(old)s)) AND NOT (e.src = ANY(%(old)s) AND e.dst = ANY(%(old)s)) "
            "AND e.src != %(new)s AND e.dst != %(new)s ON CONFLICT DO NOTHING",
            {"old": [int(r) for r in old], "new": new, "types": list(types)})


class PgEntities:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def of_memory(self, rowid: int) -> list[Mention]:
        return [Mention(*r) for r in self._conn().execute(
            'SELECT entity_type, value, normalized, score, start, "end" FROM memory_entities '
            "WHERE memory = %s ORDER BY start", (rowid,))]

    def memories_with(self, agent_id: str, entity_type: str, normalized: str, limit: int,
                      *, count_upto: int = 0) -> tuple[int, list[int]]:
        key = {"agent": agent_id, "type": entity_type, "norm": normalized}
        conn = self._conn()
        count = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM memory_entities WHERE agent_id = %(agent)s "
            "AND entity_type = %(type)s AND normalized = %(norm)s LIMIT %(upto)s) c",
            {**key, "upto": count_upto}).fetchone()[0]
        rows = conn.execute(
            "SELECT DISTINCT memory FROM memory_entities WHERE agent_id = %(agent)s AND "
            "entity_type = %(type)s AND normalized = %(norm)s ORDER BY memory DESC "
            "LIMIT %(limit)s", {**key, "limit": limit}).fetchall()
        return (int(count) if rows else 0), [r[0] for r in rows]

    def add(self, mentions: Iterable[tuple[int, str, Mention]]) -> None:
        rows = [(rowid, agent_id, m.entity_type, m.normalized, m.value, m.score, m.start,
                 m.end) for rowid, agent_id, m in mentions]
        if not rows:
            return
        with self._conn().cursor() as cur:
            cur.executemany(
                "INSERT INTO memory_entities (memory, agent_id, entity_type, normalized, "
                'value, score, start, "end") VALUES (%s, %s, %s, %s, %s, %s, %s, %s) '
                "ON CONFLICT (memory, start, entity_type) DO UPDATE SET "
                "agent_id = excluded.agent_id, normalized = excluded.normalized, "
                'value = excluded.value, score = excluded.score, "end" = excluded."end"', rows)

    def replace(self, rowid: int, agent_id: str, mentions: Iterable[Mention]) -> None:
        self._conn().execute("DELETE FROM memory_entities WHERE memory = %s", (rowid,))
        self.add((rowid, agent_id, m) for m in mentions)


# -- import jobs ----------------------------------------------------------------------------

class PgImports:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT state FROM import_jobs WHERE job_id = %s",
                                   (job_id,)).fetchone()
        return None if row is None else dict(row[0])

    def recent(self, limit: int) -> list[dict[str, Any]]:
        return [dict(r[0]) for r in self._conn().execute(
            "SELECT state FROM import_jobs ORDER BY started_at DESC, job_id DESC LIMIT %s",
            (limit,))]

    def save(self, job: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO import_jobs (job_id, agent_id, status, started_at, finished_at, "
            "state) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO UPDATE SET "
            "status = excluded.status, finished_at = excluded.finished_at, "
            "state = excluded.state",
            (job["job_id"], job["agent_id"], job["status"], job["started_at"],
             job.get("finished_at"), Jsonb(job)))

    def interrupt(self, now: int, reason: str) -> int:
        rows = self._conn().execute(
            "SELECT state FROM import_jobs WHERE status IN ('queued', 'running') "
            "FOR UPDATE").fetchall()
        for (state,) in rows:
            job = dict(state)
            job.update(status="interrupted", finished_at=now,
                       errors=[*job.get("errors", []), reason][-100:])
            self.save(job)
        return len(rows)

    def prune(self, keep: int) -> int:
        return int(self._conn().execute(
            "DELETE FROM import_jobs WHERE job_id NOT IN (SELECT job_id FROM import_jobs "
            "ORDER BY started_at DESC, job_id DESC LIMIT %s) AND status NOT IN "
            "('queued', 'running')", (keep,)).rowcount)


# -- data namespaces -------------------------------------------------------------------------

ITEM_COLUMNS = ("i.rowid, i.id, vector_send(i.vector), i.metadata, i.text, i.created_at, "
                "i.updated_at, i.expires_at")
NS_COLUMNS = "name, dimension, distance, index_type, metadata, model, created_at, updated_at"
ITEM_LIVE = "(i.expires_at IS NULL OR i.expires_at > %s)"


def _item_vector(blob: Any) -> np.ndarray | None:
    if blob is None:
        return None
    return np.frombuffer(bytes(blob)[4:], dtype=">f4").astype(np.float32)


def _item(row: Sequence[Any]) -> Item:
    return Item(rowid=row[0], id=row[1], vector=_item_vector(row[2]), metadata=dict(row[3]),
                text=row[4], created_at=row[5], updated_at=row[6], expires_at=row[7])


def _namespace(row: Sequence[Any]) -> Namespace:
    return Namespace(name=row[0], dimension=row[1], distance=row[2], index_type=row[3],
                     metadata=None if row[4] is None else dict(row[4]), model=row[5],
                     created_at=row[6], updated_at=row[7])


def _stack(rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return labels, np.empty((0, 0), dtype=np.float32)
    vecs = np.frombuffer(b"".join(bytes(r[1])[4:] for r in rows), dtype=">f4")
    return labels, vecs.astype(np.float32).reshape(len(rows), -1)


class PgNamespaces:
    """Data namespaces, as app/store/namespaces.py keeps them in SQLite: vectors in
    `ns_items` (any dimension: pgvector's `vector` without one), full text as BM25
    postings in `ns_terms` (scored in SQL by PgNamespaces.fulltext as FTS5's bm25 scores
    SQLite's shared ns_fts table)."""

    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def all(self) -> list[Namespace]:
        return [_namespace(r) for r in self._conn().execute(
            f"SELECT {NS_COLUMNS} FROM namespaces ORDER BY name")]

    def get(self, name: str) -> Namespace | None:
        row = self._conn().execute(f"SELECT {NS_COLUMNS} FROM namespaces WHERE name = %s",
                                   (name,)).fetchone()
        return None if row is None else _namespace(row)

    def stats(self, name: str, now: int) -> dict[str, int]:
        """As SQLite counts them: vector bytes as float32, text and metadata as their
        lengths in characters (metadata as its compact JSON), of the items with text."""
        row = self._conn().execute(
            "SELECT count(i.vector), count(i.text), "
            "coalesce(sum(4 * vector_dims(i.vector)), 0), "
            "coalesce(sum(char_length(i.text) + i.metadata_chars), 0), "
            f"count(*) FROM ns_items i WHERE i.namespace = %s AND {ITEM_LIVE}",
            (name, now)).fetchone()
        return {"vector_count": int(row[0]), "document_count": int(row[1]),
                "vector_bytes": int(row[2]), "other_bytes": int(row[3]),
                "item_count": int(row[4])}

    def _where(self, namespace: str, where: filter_dsl.Node | None, now: int,
               vectors_only: bool = False, texts_only: bool = False
               ) -> tuple[str, list[Any]]:
        clauses = ["i.namespace = %s", ITEM_LIVE]
        params: list[Any] = [namespace, now]
        if vectors_only:
            clauses.append("i.vector IS NOT NULL")
        if texts_only:
            clauses.append("i.text IS NOT NULL")
        if where is not None:
            sql, more = dsl_sql(where, "i.metadata")
            clauses.append(sql)
            params += more
        return " AND ".join(clauses), params

    def count(self, namespace: str, where: filter_dsl.Node | None, now: int, *,
              vectors_only: bool = True) -> int:
        sql, params = self._where(namespace, where, now, vectors_only=vectors_only)
        return int(self._conn().execute(f"SELECT count(*) FROM ns_items i WHERE {sql}",
                                        params).fetchone()[0])

    def rowids(self, namespace: str, where: filter_dsl.Node | None, now: int | None, *,
               vectors_only: bool = False) -> list[int]:
        sql, params = self._where(namespace, where, now if now is not None else -1,
                                  vectors_only=vectors_only)
        return [r[0] for r in self._conn().execute(
            f"SELECT i.rowid FROM ns_items i WHERE {sql}", params)]

    def by_rowids(self, rowids: Iterable[int], now: int) -> dict[int, Item]:
        ids = [int(r) for r in rowids]
        if not ids:
            return {}
        rows = self._conn().execute(
            f"SELECT {ITEM_COLUMNS} FROM ns_items i WHERE i.rowid = ANY(%s) AND {ITEM_LIVE}",
            (ids, now))
        return {r[0]: _item(r) for r in rows}

    def by_ids(self, namespace: str, ids: Sequence[str], now: int) -> dict[str, Item]:
        rows = self._conn().execute(
            f"SELECT {ITEM_COLUMNS} FROM ns_items i WHERE i.namespace = %s AND "
            f"i.id = ANY(%s) AND {ITEM_LIVE}", (namespace, list(ids), now))
        return {r[1]: _item(r) for r in rows}

    def existing(self, namespace: str, ids: Sequence[str]) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn().execute(
            "SELECT id, rowid FROM ns_items WHERE namespace = %s AND id = ANY(%s)",
            (namespace, list(ids)))}

    def size(self, namespace: str) -> int:
        return int(self._conn().execute("SELECT count(*) FROM ns_items WHERE namespace = %s",
                                        (namespace,)).fetchone()[0])

    def vectors(self, namespace: str, where: filter_dsl.Node | None, now: int
                ) -> tuple[np.ndarray, np.ndarray]:
        sql, params = self._where(namespace, where, now, vectors_only=True)
        return _stack(self._conn().execute(
            f"SELECT i.rowid, vector_send(i.vector) FROM ns_items i WHERE {sql} "
            "ORDER BY i.rowid", params).fetchall())

    def page(self, namespace: str, where: filter_dsl.Node | None, now: int, after: int,
             limit: int) -> list[Item]:
        sql, params = self._where(namespace, where, now)
        return [_item(r) for r in self._conn().execute(
            f"SELECT {ITEM_COLUMNS} FROM ns_items i WHERE {sql} AND i.rowid > %s "
            "ORDER BY i.rowid LIMIT %s", [*params, after, limit])]

    def fulltext(self, namespace: str, words: Sequence[str], where: filter_dsl.Node | None,
                 now: int, limit: int) -> list[tuple[int, float]]:
        """(rowid, bm25) of the namespace's best documents holding any of these words: FTS5's
        bm25 over every namespace's documents (SQLite's ns_fts is one table): N and the
        mean length over all of them, each word's document frequency too; a document's
        length counts its namespace token, as FTS5 counts every column. One difference:
        FTS5 (contentless_delete) goes on counting deleted documents in N and the mean
        length; here only the documents there are count."""
        stems = [t for w in words for t in tokens(w)]
        if not stems:
            return []
        sql, params = self._where(namespace, where, now, texts_only=True)
        rows = self._conn().execute(
            "WITH st AS MATERIALIZED (SELECT count(*)::float8 AS n, "
            "  coalesce(avg(text_tokens), 0)::float8 AS avg FROM ns_items "
            "  WHERE text IS NOT NULL), "
            "q AS MATERIALIZED (SELECT u.term, u.i, (SELECT count(*) FROM ns_terms t "
            "  WHERE t.term = u.term)::float8 AS df FROM unnest(%s::text[]) "
            "  WITH ORDINALITY u(term, i)), "
            "idf AS MATERIALIZED (SELECT q.term, q.i, CASE WHEN x.w > 0 THEN x.w ELSE 1e-6 END "
            "  AS w FROM q, st CROSS JOIN LATERAL "
            "  (SELECT ln((st.n - q.df + 0.5) / (q.df + 0.5)) AS w) x WHERE q.df > 0), "
            f"hits AS MATERIALIZED (SELECT t.rowid, sum(idf.w * t.tf * {BM25_K1 + 1} / "
            f"  (t.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * (i.text_tokens + 1) / "
            "  (st.avg + 1)))) AS s "
            "  FROM idf JOIN ns_terms t ON t.namespace = %s AND t.term = idf.term "
            "  JOIN ns_items i ON i.rowid = t.rowid, st GROUP BY t.rowid) "
            f"SELECT h.rowid, h.s FROM hits h JOIN ns_items i ON i.rowid = h.rowid "
            f"WHERE {sql} ORDER BY h.s DESC, h.rowid LIMIT %s",
            [stems, namespace, *params, limit])
        return [(int(r[0]), float(r[1])) for r in rows]

    def text_stats(self, namespace: str, now: int) -> tuple[int, float, int]:
        conn = self._conn()
        n, avg = conn.execute(
            "SELECT count(*), coalesce(avg(i.text_words), 0) FROM ns_items i WHERE "
            f"i.namespace = %s AND i.text IS NOT NULL AND {ITEM_LIVE}",
            (namespace, now)).fetchone()
        terms = conn.execute("SELECT count(DISTINCT term) FROM ns_terms WHERE namespace = %s",
                             (namespace,)).fetchone()[0] if n else 0
        return int(n), float(avg), int(terms)

    def expired(self, now: int, limit: int) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._conn().execute(
            "SELECT namespace, rowid FROM ns_items WHERE expires_at IS NOT NULL AND "
            "expires_at <= %s LIMIT %s", (now, limit))]

    # -- writes ---------------------------------------------------------------------------

    def create(self, ns: Namespace) -> None:
        self._conn().execute(
            f"INSERT INTO namespaces ({NS_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (ns.name, ns.dimension, ns.distance, ns.index_type,
             None if ns.metadata is None else Jsonb(ns.metadata), ns.model, ns.created_at,
             ns.updated_at))

    def configure(self, name: str, *, dimension: int | None = None,
                  distance: str | None = None, model: str | None = None, now: int) -> None:
        self._conn().execute(
            "UPDATE namespaces SET dimension = coalesce(%s, dimension), distance = "
            "coalesce(%s, distance), model = coalesce(%s, model), updated_at = %s "
            "WHERE name = %s", (dimension, distance, model, now, name))

    def drop(self, name: str) -> int:
        conn = self._conn()
        count = conn.execute("DELETE FROM ns_items WHERE namespace = %s", (name,)).rowcount
        conn.execute("DELETE FROM namespaces WHERE name = %s", (name,))
        return int(count)

    def upsert(self, namespace: str, items: Sequence[ItemWrite], now: int
               ) -> tuple[list[int], int]:
        """Insert or update items by id (None fields keep their stored values); returns
        the labels whose vector was set, and 0 (no index log on PostgreSQL)."""
        conn = self._conn()
        known = self.existing(namespace, [w.id for w in items])
        labels: list[int] = []
        for w in items:
            vec = None if w.vector is None else vector_text(w.vector)
            meta = None if w.metadata is None else Jsonb(w.metadata)
            chars = None if w.metadata is None else len(_encode(w.metadata).decode())
            words = None if w.text is None else len(fts_text(w.text).split())
            stems = None if w.text is None else tokens(w.text)
            rowid = known.get(w.id)
            if rowid is None:
                (rowid,) = conn.execute(
                    "INSERT INTO ns_items (namespace, id, vector, metadata, metadata_chars, "
                    "text, text_words, text_tokens, created_at, updated_at, expires_at) VALUES "
                    "(%s, %s, %s::vector, coalesce(%s, '{}'::jsonb), coalesce(%s, 2), %s, %s, "
                    "%s, %s, %s, %s) RETURNING rowid",
                    (namespace, w.id, vec, meta, chars, w.text, words,
                     None if stems is None else len(stems), now, now, w.expires_at)
                ).fetchone()
                known[w.id] = rowid
            else:
                conn.execute(
                    "UPDATE ns_items SET vector = coalesce(%s::vector, vector), metadata = "
                    "coalesce(%s, metadata), metadata_chars = coalesce(%s, metadata_chars), "
                    "text = coalesce(%s, text), text_words = coalesce(%s, text_words), "
                    "text_tokens = coalesce(%s, text_tokens), updated_at = %s, "
                    "expires_at = %s WHERE rowid = %s",
                    (vec, meta, chars, w.text, words, None if stems is None else len(stems), now,
                     w.expires_at, rowid))
                if stems is not None:
                    conn.execute("DELETE FROM ns_terms WHERE rowid = %s", (rowid,))
            if stems:
                freq: dict[str, int] = {}
                for term in stems:
                    freq[term] = freq.get(term, 0) + 1
                conn.execute(
                    "INSERT INTO ns_terms (term, rowid, namespace, tf) SELECT t.term, %s, %s, "
                    "t.tf FROM unnest(%s::text[], %s::int[]) AS t(term, tf)",
                    (rowid, namespace, list(freq), list(freq.values())))
            if vec is not None:
                labels.append(rowid)
        return labels, 0

    def delete(self, namespace: str, rowids: Sequence[int]) -> tuple[list[int], int]:
        rows = self._conn().execute(
            "DELETE FROM ns_items WHERE rowid = ANY(%s) AND namespace = %s "
            "RETURNING rowid, vector IS NOT NULL", ([int(r) for r in rowids], namespace)
        ).fetchall()
        order = {int(r): i for i, r in enumerate(rowids)}
        return sorted((int(r[0]) for r in rows if r[1]), key=lambda r: order.get(r, 0)), 0

    def unindex_text(self, namespace: str, ids: Sequence[str]) -> tuple[int, list[int]]:
        conn = self._conn()
        found = conn.execute(
            "SELECT rowid, vector IS NOT NULL FROM ns_items WHERE namespace = %s AND "
            "text IS NOT NULL AND id = ANY(%s)", (namespace, list(ids))).fetchall()
        emptied: list[int] = []
        for rowid, has_vector in found:
            if has_vector:
                conn.execute("DELETE FROM ns_terms WHERE rowid = %s", (rowid,))
                conn.execute("UPDATE ns_items SET text = NULL, text_words = NULL, "
                             "text_tokens = NULL WHERE rowid = %s", (rowid,))
            else:
                conn.execute("DELETE FROM ns_items WHERE rowid = %s", (rowid,))
                emptied.append(int(rowid))
        return len(found), emptied

    def merge_metadata(self, rowids: Sequence[int], patch: dict[str, Any], now: int) -> int:
        """JSON merge patch of the top level (RFC 7386 recurses into objects: as SQLite's
        json_patch does, nested objects are merged too)."""
        ids = [int(r) for r in rowids]
        rows = self._conn().execute(
            "SELECT rowid, metadata FROM ns_items WHERE rowid = ANY(%s) FOR UPDATE",
            (ids,)).fetchall()
        for rowid, metadata in rows:
            merged = _merge_patch(dict(metadata), patch)
            self._conn().execute(
                "UPDATE ns_items SET metadata = %s, metadata_chars = %s, updated_at = %s "
                "WHERE rowid = %s", (Jsonb(merged), len(_encode(merged).decode()), now, rowid))
        return len(rows)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what SQLite's json_patch applies)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


SPACE = {"cosine": "cosine", "dot_product": "ip", "euclidean": "l2"}


class PgNamespaceVectors:
    """The namespaces' vectors as a VectorSource (no index log: nothing caches them)."""

    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def layout(self, agent_id: str) -> tuple[int, str] | None:
        row = self._conn().execute(
            "SELECT dimension, distance FROM namespaces WHERE name = %s",
            (agent_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0]), SPACE[row[1]]

    def agents(self) -> list[str]:
        return [r[0] for r in self._conn().execute(
            "SELECT name FROM namespaces n WHERE dimension IS NOT NULL AND EXISTS (SELECT 1 "
            "FROM ns_items i WHERE i.namespace = n.name AND i.vector IS NOT NULL) "
            "ORDER BY name")]

    def has(self, agent_id: str) -> bool:
        return self._conn().execute(
            "SELECT 1 FROM ns_items WHERE namespace = %s AND vector IS NOT NULL LIMIT 1",
            (agent_id,)).fetchone() is not None

    def count(self, agent_id: str) -> int:
        return int(self._conn().execute(
            "SELECT count(*) FROM ns_items WHERE namespace = %s AND vector IS NOT NULL",
            (agent_id,)).fetchone()[0])

    def of_agent(self, agent_id: str, batch: int = 10_000
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = 0
        while True:
            rows = self._conn().execute(
                "SELECT rowid, vector_send(vector) FROM ns_items WHERE namespace = %s AND "
                "rowid > %s AND vector IS NOT NULL ORDER BY rowid LIMIT %s",
                (agent_id, last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield _stack(rows)

    def get(self, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return _stack(self._conn().execute(
            "SELECT rowid, vector_send(vector) FROM ns_items WHERE vector IS NOT NULL AND "
            "rowid = ANY(%s)", ([int(x) for x in labels],)).fetchall())

    def log(self, agent_id: str, after_seq: int) -> list[tuple[int, int, str]]:
        return []

    def log_head(self, agent_id: str) -> int:
        return 0

    def log_trimmed(self, agent_id: str) -> int:
        return 0

    def trim_log(self, agent_id: str, upto_seq: int) -> None:
        return None


class PgReindex:
    """Moving the database to another embedding model (`dakera reindex`), as
    app/store/reindex.py does for SQLite: new vectors are staged in committed batches (an
    interrupted run resumes), and `finish` swaps them in in one transaction, changing the
    vector column's dimension and rebuilding its HNSW index. Every server on the database
    must be stopped first: `begin` refuses while another process's dakera connections are
    open."""

    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def begin(self, model_id: str) -> None:
        conn = self._conn()
        others = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
            "application_name LIKE 'dakera/%%' AND application_name <> %s",
            (APP_NAME,)).fetchone()[0]
        if others:
            raise DataDirError(
                f"{others} connection(s) of running dakera servers are open on this "
                "database: stop every server before re-embedding (dakera reindex)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'reindex_target'").fetchone()
        if row is None or row[0] != model_id:
            conn.execute(f"DROP TABLE IF EXISTS {STAGE}")
            conn.execute("INSERT INTO meta (key, value) VALUES ('reindex_target', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (model_id,))
        conn.execute(f"CREATE TABLE IF NOT EXISTS {STAGE} (rowid BIGINT PRIMARY KEY, "
                     "embedding vector NOT NULL, content_hash TEXT NOT NULL, sentences BYTEA)")
        # staged by a version without sentence vectors
        conn.execute(f"ALTER TABLE {STAGE} ADD COLUMN IF NOT EXISTS sentences BYTEA")

    def pending(self, limit: int) -> list[tuple[int, str, str]]:
        return [(r[0], r[1], r[2]) for r in self._conn().execute(
            f"SELECT m.rowid, m.content, m.content_hash FROM memories m WHERE m.rowid > "
            f"(SELECT coalesce(max(rowid), 0) FROM {STAGE}) ORDER BY m.rowid LIMIT %s",
            (limit,))]

    def count_pending(self) -> int:
        return int(self._conn().execute(
            f"SELECT count(*) FROM memories WHERE rowid > "
            f"(SELECT coalesce(max(rowid), 0) FROM {STAGE})").fetchone()[0])

    def stage(self, rows: list[StagedRow]) -> None:
        if not rows:
            return
        with self._conn().cursor() as cur:
            cur.executemany(
                f"INSERT INTO {STAGE} (rowid, embedding, content_hash, sentences) VALUES "
                "(%s, %s::vector, %s, %s) ON CONFLICT (rowid) DO UPDATE SET "
                "embedding = excluded.embedding, content_hash = excluded.content_hash, "
                "sentences = excluded.sentences",
                [(rowid, vector_text(v), h,
                  None if s is None or not len(s)
                  else np.ascontiguousarray(s, dtype="<f4").tobytes())
                 for rowid, v, h, s in rows])

    def finish(self, model_id: str, dimension: int) -> int:
        conn = self._conn()
        conn.execute("DROP INDEX IF EXISTS memory_vectors_hnsw")
        conn.execute("ALTER TABLE memory_vectors ALTER COLUMN embedding DROP NOT NULL")
        conn.execute(f"ALTER TABLE memory_vectors ALTER COLUMN embedding TYPE "
                     f"vector({dimension}) USING NULL")
        count = conn.execute(
            f"UPDATE memory_vectors v SET embedding = s.embedding::vector({dimension}) "
            f"FROM {STAGE} s WHERE s.rowid = v.rowid").rowcount
        conn.execute(f"UPDATE memories m SET model_id = %s, content_hash = s.content_hash "
                     f"FROM {STAGE} s WHERE s.rowid = m.rowid", (model_id,))
        missing = conn.execute("SELECT count(*) FROM memory_vectors WHERE embedding IS NULL"
                               ).fetchone()[0]
        if missing:  # stored while re-embedding (a server ran): nothing is changed
            raise DataDirError(f"{missing} memories have no new vector (were they stored "
                               "while re-embedding?): run dakera reindex again")
        conn.execute("ALTER TABLE memory_vectors ALTER COLUMN embedding SET NOT NULL")
        conn.execute("CREATE INDEX memory_vectors_hnsw ON memory_vectors "
                     "USING hnsw (embedding vector_cosine_ops)")
        conn.execute("DELETE FROM memory_sentences")  # made by the old model
        conn.execute(
            f"INSERT INTO memory_sentences (rowid, model_id, content_hash, vectors) "
            f"SELECT s.rowid, %s, s.content_hash, s.sentences FROM {STAGE} s "
            f"JOIN memories m ON m.rowid = s.rowid WHERE s.sentences IS NOT NULL",
            (model_id,))
        conn.execute(f"DROP TABLE {STAGE}")
        conn.execute("DELETE FROM meta WHERE key = 'reindex_target'")
        for key, value in (("vector_dimension", str(dimension)),
                           ("embedding_model", _encode(model_id).decode())):
            conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (key, value))
        return int(count)

