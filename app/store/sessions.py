"""Sessions and agents: reads, and writes for the writer thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from app.models import Session
from app.store.protocol import ConnSource

_encode = msgspec.json.encode
_decode = msgspec.json.decode

SESSION_COLUMNS = (
    "s.id, s.agent_id, s.started_at, s.last_activity_at, s.ended_at, s.ended_reason, "
    "s.idle_timeout_secs, s.metadata, s.summary, "
    # (+m.agent_id: count through the session index, not by walking the agent's memories)
    "(SELECT count(*) FROM memories m WHERE m.session_id = s.id AND +m.agent_id = s.agent_id)"
)


def row_to_session(row: Any) -> Session:
    return Session(id=row[0], agent_id=row[1], started_at=row[2], last_activity_at=row[3],
                   ended_at=row[4], ended_reason=row[5], idle_timeout_secs=row[6],
                   metadata=None if row[7] is None else _decode(row[7]), summary=row[8],
                   memory_count=row[9])


# A session is idle-expired when its own timeout (or the default) has passed since its last
# activity; a timeout of 0 never expires.
_TIMEOUT = "COALESCE(s.idle_timeout_secs, ?)"
_IDLE = f"s.ended_at IS NULL AND {_TIMEOUT} > 0 AND s.last_activity_at + {_TIMEOUT} <= ?"


class SqliteSessions:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, session_id: str) -> Session | None:
        row = self._conn().execute(
            f"SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ?", (session_id,)).fetchone()
        return None if row is None else row_to_session(row)

    def newest(self, agent_id: str | Sequence[str] | None, active_only: bool, limit: int,
               offset: int) -> tuple[list[Session], int]:
        """Newest first: of one agent, of some agents (a list), or of all (None)."""
        conn = self._conn()
        clauses, params = ["1"], []
        if isinstance(agent_id, str):
            clauses.append("s.agent_id = ?")
            params.append(agent_id)
        elif agent_id is not None:
            if not agent_id:
                return [], 0
            clauses.append(f"s.agent_id IN ({', '.join('?' * len(agent_id))})")
            params.extend(agent_id)
        if active_only:
            clauses.append("s.ended_at IS NULL")
        where = " AND ".join(clauses)
        rows = conn.execute(f"SELECT {SESSION_COLUMNS} FROM sessions s WHERE {where} "
                            "ORDER BY s.started_at DESC, s.rowid DESC LIMIT ? OFFSET ?",
                            [*params, limit, offset]).fetchall()
        total = conn.execute(f"SELECT count(*) FROM sessions s WHERE {where}",
                             params).fetchone()[0]
        return [row_to_session(r) for r in rows], int(total)

    def page(self, agent_id: str, after: int, limit: int) -> list[tuple[int, Session]]:
        """(position, session) of the agent's sessions after `after` in the order they were
        recorded: an export reads them one page at a time."""
        rows = self._conn().execute(
            f"SELECT s.rowid, {SESSION_COLUMNS} FROM sessions s WHERE s.rowid > ? AND "
            "+s.agent_id = ? ORDER BY s.rowid LIMIT ?", (after, agent_id, limit)).fetchall()
        return [(r[0], row_to_session(r[1:])) for r in rows]

    def any_idle(self, now: int, default_timeout: int) -> bool:
        return self._conn().execute(f"SELECT 1 FROM sessions s WHERE {_IDLE} LIMIT 1",
                                    (default_timeout, default_timeout, now)
                                    ).fetchone() is not None

    def started_since(self, since: int) -> int:
        return int(self._conn().execute("SELECT count(*) FROM sessions WHERE started_at >= ?",
                                        (since,)).fetchone()[0])

    def expire_idle(self, now: int, default_timeout: int) -> list[tuple[str, str]]:
        """End every session idle past its timeout, as of the moment it timed out; returns
        the (session id, agent id) of each."""
        rows = self._conn().execute(
            f"UPDATE sessions AS s SET ended_reason = 'idle', "
            f"ended_at = s.last_activity_at + {_TIMEOUT} WHERE {_IDLE} "
            "RETURNING id, agent_id",
            (default_timeout, default_timeout, default_timeout, now)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def start(self, session: Session) -> None:
        """Record a new session (and its agent, if new)."""
        conn = self._conn()
        conn.execute(
            "INSERT INTO sessions (id, agent_id, started_at, last_activity_at, "
            "idle_timeout_secs, metadata) VALUES (?, ?, ?, ?, ?, ?)",
            (session.id, session.agent_id, session.started_at, session.last_activity_at,
             session.idle_timeout_secs,
             None if session.metadata is None else _encode(session.metadata).decode()))
        conn.execute("INSERT OR IGNORE INTO agents (agent_id, created_at) VALUES (?, ?)",
                     (session.agent_id, session.started_at))

    def restore(self, session: Session) -> bool:
        """Record a session as it was (an import): False when the id is already taken."""
        conn = self._conn()
        cur = conn.execute(
            "INSERT OR IGNORE INTO sessions (id, agent_id, started_at, last_activity_at, "
            "ended_at, ended_reason, idle_timeout_secs, metadata, summary) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session.id, session.agent_id, session.started_at, session.last_activity_at,
             session.ended_at, session.ended_reason, session.idle_timeout_secs,
             None if session.metadata is None else _encode(session.metadata).decode(),
             session.summary))
        conn.execute("INSERT OR IGNORE INTO agents (agent_id, created_at) VALUES (?, ?)",
                     (session.agent_id, session.started_at))
        return cur.rowcount > 0

    def activity(self, agent_id: str, session_ids: set[str], now: int,
                 default_timeout: int) -> dict[str, str]:
        """Record activity in these sessions of the agent, creating the ones that do not
        exist yet; returns each session's state ("active" or "ended") after it. The caller
        ends idle sessions first (expire_idle), to learn which."""
        conn = self._conn()
        states = {}
        for sid in sorted(session_ids):
            conn.execute(
                "INSERT INTO sessions (id, agent_id, started_at, last_activity_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET last_activity_at = "
                "max(last_activity_at, excluded.last_activity_at) "
                "WHERE sessions.ended_at IS NULL AND sessions.agent_id = excluded.agent_id",
                (sid, agent_id, now, now))
            row = conn.execute("SELECT ended_at FROM sessions WHERE id = ?", (sid,)).fetchone()
            states[sid] = "active" if row[0] is None else "ended"
        return states

    def end(self, session_id: str, now: int, summary: str | None,
            default_timeout: int) -> bool:
        """End an open session; False when it had already ended (its state is kept). The
        caller ends idle sessions first (expire_idle)."""
        cur = self._conn().execute(
            "UPDATE sessions SET ended_at = ?, ended_reason = 'client', last_activity_at = ?, "
            "summary = COALESCE(?, summary) WHERE id = ? AND ended_at IS NULL",
            (now, now, summary, session_id))
        return cur.rowcount > 0


class SqliteAgents:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def exists(self, agent_id: str) -> bool:
        return self._conn().execute("SELECT 1 FROM agents WHERE agent_id = ?",
                                    (agent_id,)).fetchone() is not None

    def ensure(self, agent_id: str, now: int) -> bool:
        """Create the agent if it is new; True when it was created."""
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO agents (agent_id, created_at) VALUES (?, ?)", (agent_id, now))
        return cur.rowcount > 0

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
        """When each agent last stored, was recalled or had session activity (each a
        lookup in an index)."""
        return {r[0]: max((v for v in r[1:] if v is not None), default=None)
                for r in self._conn().execute(
                    "SELECT a.agent_id, "
                    "(SELECT max(m.created_at) FROM memories m WHERE m.agent_id = a.agent_id), "
                    "(SELECT max(m.last_accessed_at) FROM memories m "
                    " WHERE m.agent_id = a.agent_id), "
                    "(SELECT max(s.last_activity_at) FROM sessions s "
                    " WHERE s.agent_id = a.agent_id) FROM agents a")}

    def memory_count(self, agent_id: str) -> int:
        """The agent's stored memories (expired ones not yet removed included; counted
        from an index)."""
        return int(self._conn().execute("SELECT count(*) FROM memories WHERE agent_id = ?",
                                        (agent_id,)).fetchone()[0])

    def memory_counts(self) -> dict[str, int]:
        """Stored memories per agent (expired ones not yet removed included)."""
        return {r[0]: r[1] for r in self._conn().execute(
            "SELECT agent_id, count(*) FROM memories GROUP BY agent_id")}

    def active_since(self, since: int) -> int:
        """Agents that stored or recalled a memory since then."""
        return int(self._conn().execute(
            "SELECT count(DISTINCT agent_id) FROM memories WHERE created_at >= ? OR "
            "(access_count > 0 AND last_accessed_at >= ?)", (since, since)).fetchone()[0])

    def stats(self, agent_id: str, now: int) -> dict[str, Any]:
        conn = self._conn()
        by_type = {r[0]: r[1] for r in conn.execute(
            "SELECT memory_type, count(*) FROM memories WHERE agent_id = ? AND "
            "(expires_at IS NULL OR expires_at > ?) GROUP BY memory_type", (agent_id, now))}
        agg = conn.execute(
            "SELECT count(*), avg(importance), min(created_at), max(created_at) FROM memories "
            "WHERE agent_id = ? AND (expires_at IS NULL OR expires_at > ?)",
            (agent_id, now)).fetchone()
        sessions = conn.execute(
            "SELECT count(*), coalesce(sum(ended_at IS NULL), 0) FROM sessions "
            "WHERE agent_id = ?", (agent_id,)).fetchone()
        return {"agent_id": agent_id, "total_memories": agg[0], "memories_by_type": by_type,
                "total_sessions": sessions[0], "active_sessions": sessions[1],
                "avg_importance": None if agg[1] is None else round(agg[1], 6),
                "oldest_memory_at": agg[2], "newest_memory_at": agg[3]}
