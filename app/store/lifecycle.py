"""How memories age, in SQL: decay, reinforcement and expiry; feedback; the trash of merged
duplicates; per-agent policies; persisted settings (meta). Reads, and writes for the writer."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from app.models import DecayPolicy
from app.store.protocol import ConnSource

_encode = msgspec.json.encode
_decode = msgspec.json.decode
LN2 = math.log(2)


def _speed_sql(p: DecayPolicy) -> tuple[str, list[Any]]:
    """How fast a memory decays relative to the half-life: its type's speed, faster when
    never accessed or flagged, slower the more it has been used (diminishing returns)."""
    types = " ".join("WHEN ? THEN ?" for _ in p.type_speeds)
    sql = (f"(CASE memory_type {types} ELSE 1.0 END) * "
           "(CASE WHEN access_count = 0 THEN ? ELSE 1.0 / (1.0 + ? * ln(1.0 + access_count)) "
           "END) * (CASE WHEN flagged THEN ? ELSE 1.0 END)")
    params: list[Any] = [v for kv in p.type_speeds.items() for v in kv]
    params += [p.never_accessed_multiplier, p.usage_shield, p.flag_multiplier]
    return sql, params


class SqliteDecay:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def rowid_range(self) -> tuple[int, int]:
        row = self._conn().execute("SELECT min(rowid), max(rowid) FROM memories").fetchone()
        return (int(row[0] or 0), int(row[1] or 0))

    def state(self, rowid: int) -> tuple[int, bool] | None:
        """(when it last decayed or was reinforced, whether a flag speeds its next decay)."""
        row = self._conn().execute("SELECT decayed_at, flagged FROM memories WHERE rowid = ?",
                                   (rowid,)).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def expired(self, now: int, limit: int) -> list[tuple[str, int]]:
        """(agent, rowid) of memories past their expiry."""
        return [(r[0], r[1]) for r in self._conn().execute(
            "SELECT agent_id, rowid FROM memories WHERE expires_at IS NOT NULL AND "
            "expires_at <= ? LIMIT ?", (now, limit))]

    def decay(self, lo: int, hi: int, now: int, p: DecayPolicy
              ) -> tuple[int, list[tuple[str, int]]]:
        """Decay the memories with rowid in [lo, hi] for the time since their last decay or
        reinforcement. Returns how many changed and the (agent, rowid) now below the floor."""
        speed, sp = _speed_sql(p)
        # x = half-lives elapsed at this memory's speed
        x = f"((? - decayed_at) / 3600.0 / ? * {speed})"
        xp: list[Any] = [now, p.half_life_hours, *sp]
        sp2: list[Any] = [now]
        stamp = "?"
        if p.strategy == "linear":
            new, np_ = f"max(0.0, importance - 0.5 * {x})", xp
        elif p.strategy == "step":  # halve once per whole half-life; keep the remainder pending
            new, np_ = f"importance * pow(0.5, floor({x}))", xp
            # the clock moves on by the whole half-lives applied, not to now
            stamp = (f"CASE WHEN floor({x}) >= 1 THEN CAST(decayed_at + floor({x}) * 3600.0 * "
                     f"? / ({speed}) AS INTEGER) ELSE decayed_at END")
            sp2 = [*xp, *xp, p.half_life_hours, *sp]
        else:
            new, np_ = f"importance * exp(-{LN2} * {x})", xp
        conn = self._conn()
        cur = conn.execute(
            f"UPDATE memories SET importance = {new}, decayed_at = {stamp}, flagged = 0 "
            "WHERE rowid BETWEEN ? AND ? AND decayed_at < ?",
            [*np_, *sp2, lo, hi, now])
        below = conn.execute(
            "SELECT agent_id, rowid FROM memories WHERE rowid BETWEEN ? AND ? AND importance < ?",
            (lo, hi, p.min_importance)).fetchall()
        return int(cur.rowcount), [(r[0], r[1]) for r in below]

    def reinforce(self, hits: dict[int, int], now: int, boost: float) -> None:
        """Recall hits: access count up, decay timer reset, importance raised in proportion
        to itself (valuable memories gain more), with diminishing returns for repeated hits."""
        self._conn().executemany(
            "UPDATE memories SET access_count = access_count + ?, "
            "last_accessed_at = max(last_accessed_at, ?), decayed_at = max(decayed_at, ?), "
            "importance = min(1.0, importance * (1.0 + ? * ln(1.0 + ?) / ?)) WHERE rowid = ?",
            [(n, now, now, boost, n, LN2, rowid) for rowid, n in hits.items()])


class SqliteFeedback:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def apply(self, agent_id: str, memory_id: str, rowid: int, signal: str, factor: float,
              now: int) -> tuple[float, float]:
        """Apply a feedback signal; returns (old, new) importance. A flag leaves importance
        as it is and makes the next decay cycle faster."""
        conn = self._conn()
        (old,) = conn.execute("SELECT importance FROM memories WHERE rowid = ?",
                              (rowid,)).fetchone()
        new = min(1.0, max(0.0, old * factor))
        conn.execute("UPDATE memories SET importance = ?, updated_at = ?, "
                     "flagged = flagged OR ? WHERE rowid = ?",
                     (new, now, signal == "flag", rowid))
        conn.execute("INSERT INTO feedback (agent_id, memory_id, signal, timestamp, "
                     "old_importance, new_importance) VALUES (?, ?, ?, ?, ?, ?)",
                     (agent_id, memory_id, signal, now, old, new))
        return float(old), float(new)

    def history(self, agent_id: str, memory_id: str) -> list[dict[str, Any]]:
        return [{"signal": r[0], "timestamp": r[1], "old_importance": r[2],
                 "new_importance": r[3]}
                for r in self._conn().execute(
                    "SELECT signal, timestamp, old_importance, new_importance FROM feedback "
                    "WHERE agent_id = ? AND memory_id = ? ORDER BY seq", (agent_id, memory_id))]

    def counts(self, agent_id: str) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn().execute(
            "SELECT signal, count(*) FROM feedback WHERE agent_id = ? GROUP BY signal",
            (agent_id,))}


class SqliteTrash:
    """Duplicates merged on store, kept restorable until their time is up."""

    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def put(self, agent_id: str, memory_id: str, survivor_id: str, memory: dict[str, Any],
            now: int, keep_secs: int, kind: str = "deduplication") -> None:
        """Keep a memory restorable for keep_secs (0: not kept at all). `kind` says what
        removed it: deduplication or consolidation (merged into `survivor_id`), or forgotten
        in the memory browser."""
        if keep_secs <= 0:
            return
        self._conn().execute(
            "INSERT OR REPLACE INTO deduplicated (id, agent_id, survivor_id, kind, memory, "
            "deleted_at, restorable_until) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (memory_id, agent_id, survivor_id, kind, _encode(memory).decode(), now,
             now + keep_secs))

    def peek(self, agent_id: str, memory_id: str, now: int) -> dict[str, Any] | None:
        """What was saved of a restorable entry, left in place."""
        row = self._conn().execute("SELECT memory FROM deduplicated WHERE agent_id = ? AND "
                                   "id = ? AND restorable_until > ?",
                                   (agent_id, memory_id, now)).fetchone()
        return None if row is None else dict(_decode(row[0]))

    def restorable(self, agent_id: str, now: int) -> list[dict[str, Any]]:
        out = []
        for r in self._conn().execute(
                "SELECT id, kind, survivor_id, deleted_at, restorable_until, memory FROM "
                "deduplicated WHERE agent_id = ? AND restorable_until > ? "
                "ORDER BY deleted_at DESC", (agent_id, now)):
            memory = _decode(r[5])
            out.append({"id": r[0], "kind": r[1], "survivor_id": r[2], "deleted_at": r[3],
                        "restorable_until": r[4], "session_id": memory.get("session_id"),
                        "content": memory.get("content")})
        return out

    def take(self, agent_id: str, memory_id: str, now: int) -> dict[str, Any] | None:
        """Remove a restorable entry and return what was saved of it."""
        conn = self._conn()
        row = conn.execute("SELECT memory FROM deduplicated WHERE agent_id = ? AND id = ? AND "
                           "restorable_until > ?", (agent_id, memory_id, now)).fetchone()
        if row is None:
            return None
        conn.execute("DELETE FROM deduplicated WHERE agent_id = ? AND id = ?",
                     (agent_id, memory_id))
        return dict(_decode(row[0]))

    def purge(self, now: int) -> int:
        return int(self._conn().execute(
            "DELETE FROM deduplicated WHERE restorable_until <= ?", (now,)).rowcount)


class SqlitePolicies:
    """Per-agent memory policies (the fields an agent changed from the defaults)."""

    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, agent_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT policy FROM agent_policies WHERE agent_id = ?",
                                   (agent_id,)).fetchone()
        return None if row is None else dict(_decode(row[0]))

    def set(self, agent_id: str, policy: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO agent_policies (agent_id, policy) VALUES (?, ?) ON CONFLICT "
            "(agent_id) DO UPDATE SET policy = excluded.policy",
            (agent_id, _encode(policy).decode()))


class SqliteMeta:
    """Server state kept in the database as JSON values by key."""

    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, key: str) -> Any:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else _decode(row[0])

    def set(self, key: str, value: Any) -> None:
        self._conn().execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = excluded.value", (key, _encode(value).decode()))
