"""How memories age, in SQL: decay, reinforcement, feedback, expiry, the duplicate trash,
per-agent policies and persisted settings. Write functions are jobs for the writer."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from app.models import DecayPolicy
from app.store.db import Connection

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


def decay_job(conn: Connection, lo: int, hi: int, now: int, p: DecayPolicy
              ) -> tuple[int, list[tuple[str, int]]]:
    """Decay the memories with rowid in [lo, hi] for the time since their last decay or
    reinforcement. Returns how many changed and the (agent, rowid) now below the floor."""
    speed, sp = _speed_sql(p)
    # x = half-lives elapsed at this memory's speed
    x = f"((? - decayed_at) / 3600.0 / ? * {speed})"
    xp: list[Any] = [now, p.half_life_hours, *sp]
    if p.strategy == "linear":
        new, np_ = f"max(0.0, importance - 0.5 * {x})", xp
        stamp, sp2 = "?", [now]
    elif p.strategy == "step":  # halve once per whole half-life; keep the remainder pending
        new, np_ = f"importance * pow(0.5, floor({x}))", xp
        stamp, sp2 = f"CASE WHEN floor({x}) >= 1 THEN ? ELSE decayed_at END", [*xp, now]
    else:
        new, np_ = f"importance * exp(-{LN2} * {x})", xp
        stamp, sp2 = "?", [now]
    cur = conn.execute(
        f"UPDATE memories SET importance = {new}, decayed_at = {stamp}, flagged = 0 "
        "WHERE rowid BETWEEN ? AND ? AND decayed_at < ?",
        [*np_, *sp2, lo, hi, now])
    below = conn.execute(
        "SELECT agent_id, rowid FROM memories WHERE rowid BETWEEN ? AND ? AND importance < ?",
        (lo, hi, p.min_importance)).fetchall()
    return int(cur.rowcount), [(r[0], r[1]) for r in below]


def reinforce_job(conn: Connection, hits: dict[int, int], now: int, boost: float) -> None:
    """Recall hits: access count up, decay timer reset, importance raised in proportion to
    itself (valuable memories gain more), with diminishing returns for repeated hits."""
    conn.executemany(
        "UPDATE memories SET access_count = access_count + ?, "
        "last_accessed_at = max(last_accessed_at, ?), decayed_at = max(decayed_at, ?), "
        "importance = min(1.0, importance * (1.0 + ? * ln(1.0 + ?) / ?)) WHERE rowid = ?",
        [(n, now, now, boost, n, LN2, rowid) for rowid, n in hits.items()])


def rowid_range(conn: Connection) -> tuple[int, int]:
    row = conn.execute("SELECT min(rowid), max(rowid) FROM memories").fetchone()
    return (int(row[0] or 0), int(row[1] or 0))


def expired(conn: Connection, now: int, limit: int) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT agent_id, rowid FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ? "
        "LIMIT ?", (now, limit))]


# -- feedback --------------------------------------------------------------------------

def feedback_job(conn: Connection, agent_id: str, memory_id: str, rowid: int, signal: str,
                 factor: float, now: int) -> tuple[float, float]:
    """Apply a feedback signal; returns (old, new) importance. A flag leaves importance as
    it is and makes the next decay cycle faster."""
    (old,) = conn.execute("SELECT importance FROM memories WHERE rowid = ?",
                          (rowid,)).fetchone()
    new = min(1.0, max(0.0, old * factor))
    conn.execute("UPDATE memories SET importance = ?, updated_at = ?, "
                 "flagged = flagged OR ? WHERE rowid = ?",
                 (new, now, signal == "flag", rowid))
    conn.execute("INSERT INTO feedback (agent_id, memory_id, signal, timestamp, old_importance, "
                 "new_importance) VALUES (?, ?, ?, ?, ?, ?)",
                 (agent_id, memory_id, signal, now, old, new))
    return float(old), float(new)


def feedback_history(conn: Connection, agent_id: str, memory_id: str) -> list[dict[str, Any]]:
    return [{"signal": r[0], "timestamp": r[1], "old_importance": r[2], "new_importance": r[3]}
            for r in conn.execute(
                "SELECT signal, timestamp, old_importance, new_importance FROM feedback "
                "WHERE agent_id = ? AND memory_id = ? ORDER BY seq", (agent_id, memory_id))]


def feedback_counts(conn: Connection, agent_id: str) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT signal, count(*) FROM feedback WHERE agent_id = ? GROUP BY signal",
        (agent_id,))}


def importance_health(conn: Connection, agent_id: str, now: int) -> tuple[int, float | None]:
    row = conn.execute("SELECT count(*), avg(importance) FROM memories WHERE agent_id = ? AND "
                       "(expires_at IS NULL OR expires_at > ?)", (agent_id, now)).fetchone()
    return int(row[0]), (None if row[1] is None else float(row[1]))


# -- deduplication ---------------------------------------------------------------------

def same_text(conn: Connection, agent_id: str, norm_hash: str, memory_type: str,
              now: int) -> int | None:
    """Rowid of a live memory of the agent with the same normalised text and type."""
    row = conn.execute(
        "SELECT rowid FROM memories WHERE agent_id = ? AND norm_hash = ? AND memory_type = ? "
        "AND (expires_at IS NULL OR expires_at > ?) ORDER BY rowid LIMIT 1",
        (agent_id, norm_hash, memory_type, now)).fetchone()
    return None if row is None else int(row[0])


def merge_duplicate_job(conn: Connection, survivor_rowid: int, importance: float,
                        tags: list[str], now: int) -> None:
    """The survivor absorbs the duplicate: the higher importance, the union of tags."""
    row = conn.execute("SELECT importance, tags FROM memories WHERE rowid = ?",
                       (survivor_rowid,)).fetchone()
    merged_tags = list(dict.fromkeys([*_decode(row[1]), *tags]))
    conn.execute("UPDATE memories SET importance = ?, tags = ?, updated_at = ?, "
                 "decayed_at = ? WHERE rowid = ?",
                 (max(row[0], importance), _encode(merged_tags).decode(), now, now,
                  survivor_rowid))


def trash_job(conn: Connection, agent_id: str, memory_id: str, survivor_id: str,
              memory: dict[str, Any], now: int, keep_secs: int) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO deduplicated (id, agent_id, survivor_id, memory, deleted_at, "
        "restorable_until) VALUES (?, ?, ?, ?, ?, ?)",
        (memory_id, agent_id, survivor_id, _encode(memory).decode(), now, now + keep_secs))


def trash_list(conn: Connection, agent_id: str, now: int) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute(
            "SELECT id, kind, survivor_id, deleted_at, restorable_until, memory FROM "
            "deduplicated WHERE agent_id = ? AND restorable_until > ? ORDER BY deleted_at DESC",
            (agent_id, now)):
        memory = _decode(r[5])
        out.append({"id": r[0], "kind": r[1], "survivor_id": r[2], "deleted_at": r[3],
                    "restorable_until": r[4], "session_id": memory.get("session_id"),
                    "content": memory.get("content")})
    return out


def trash_take_job(conn: Connection, agent_id: str, memory_id: str,
                   now: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT memory FROM deduplicated WHERE agent_id = ? AND id = ? AND "
                       "restorable_until > ?", (agent_id, memory_id, now)).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM deduplicated WHERE agent_id = ? AND id = ?", (agent_id, memory_id))
    return dict(_decode(row[0]))


def trash_purge_job(conn: Connection, now: int) -> int:
    return int(conn.execute("DELETE FROM deduplicated WHERE restorable_until <= ?",
                            (now,)).rowcount)


# -- policies and persisted settings ----------------------------------------------------

def get_policy(conn: Connection, agent_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT policy FROM agent_policies WHERE agent_id = ?",
                       (agent_id,)).fetchone()
    return None if row is None else dict(_decode(row[0]))


def set_policy_job(conn: Connection, agent_id: str, policy: dict[str, Any]) -> None:
    conn.execute("INSERT INTO agent_policies (agent_id, policy) VALUES (?, ?) ON CONFLICT "
                 "(agent_id) DO UPDATE SET policy = excluded.policy",
                 (agent_id, _encode(policy).decode()))


def get_meta(conn: Connection, key: str) -> Any:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else _decode(row[0])


def set_meta_job(conn: Connection, key: str, value: Any) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                 "value = excluded.value", (key, _encode(value).decode()))
