"""MemoryFilter as SQL over `memories m`: the one builder every query of the store uses."""

from __future__ import annotations

from typing import Any

import msgspec

from app.models import MemoryFilter

_encode = msgspec.json.encode

# A memory is live until it expires.
LIVE = "(m.expires_at IS NULL OR m.expires_at > ?)"


def json_list(values: Any) -> str:
    return _encode(list(values)).decode()


def filter_sql(agent_id: str, f: MemoryFilter, now: int | None) -> tuple[str, list[Any]]:
    """A WHERE clause (and its parameters) for the agent's memories matching `f`; live ones
    only unless `now` is None."""
    clauses = ["m.agent_id = ?"]
    params: list[Any] = [agent_id]
    if now is not None:
        clauses.append(LIVE)
        params.append(now)
    if f.memory_ids is not None:
        clauses.append("m.id IN (SELECT value FROM json_each(?))")
        params.append(json_list(f.memory_ids))
    if f.tags_any:
        clauses.append("EXISTS (SELECT 1 FROM json_each(m.tags) t WHERE t.value IN "
                       "(SELECT value FROM json_each(?)))")
        params.append(json_list(f.tags_any))
    if f.tags_all:
        clauses.append("(SELECT count(DISTINCT t.value) FROM json_each(m.tags) t WHERE t.value "
                       "IN (SELECT value FROM json_each(?))) = ?")
        params += [json_list(f.tags_all), len(set(f.tags_all))]
    for column, op, value in (("m.memory_type", "=", f.memory_type),
                              ("m.session_id", "=", f.session_id),
                              ("m.importance", ">=", f.min_importance),
                              ("m.importance", "<=", f.max_importance),
                              ("m.created_at", ">=", f.created_after),
                              ("m.created_at", "<=", f.created_before),
                              ("COALESCE(m.event_time, m.created_at)", ">=", f.since),
                              ("COALESCE(m.event_time, m.created_at)", "<=", f.until)):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    return " AND ".join(clauses), params
