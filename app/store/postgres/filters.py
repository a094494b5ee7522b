"""MemoryFilter as PostgreSQL SQL over `memories m`, and the filter language (app/filter_dsl)
compiled to SQL over jsonb with the same meaning as `filter_dsl.evaluate`.

jsonb's own equality is the language's: 1 equals 1.0, booleans are not numbers, lists and
objects compare deeply. Differences left: a field part made of digits ("a.0") indexes an
array in jsonb's path, where the language finds no such field; $icontains folds case with
PostgreSQL's lower() (the database's locale) where Python casefolds ("ß" is not "ss"); $glob
and $regex become PostgreSQL regular expressions (regex.py), and a pattern that cannot be
said the same way answers 501.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from app import filter_dsl as dsl
from app.errors import NotImplementedFeature
from app.models import MemoryFilter
from app.store.filters import scalar_conditions
from app.store.postgres.regex import glob_to_pg, regex_to_pg

LIVE = "(m.expires_at IS NULL OR m.expires_at > %s)"

# A memory as filter expressions see it (app/models.Memory.filter_view).
MEMORY_DOC = (
    "jsonb_build_object('id', m.id, 'agent_id', m.agent_id, 'content', m.content, "
    "'memory_type', m.memory_type, 'importance', m.importance, 'tags', m.tags, "
    "'session_id', m.session_id, 'created_at', m.created_at, 'updated_at', m.updated_at, "
    "'last_accessed_at', m.last_accessed_at, 'access_count', m.access_count, "
    "'expires_at', m.expires_at, 'metadata', m.metadata)")


def filter_sql(agent_id: str, f: MemoryFilter, now: int | None) -> tuple[str, list[Any]]:
    """A WHERE clause (and its parameters) for the agent's memories matching `f`; live ones
    only unless `now` is None."""
    clauses = ["m.agent_id = %s"]
    params: list[Any] = [agent_id]
    if now is not None:
        clauses.append(LIVE)
        params.append(now)
    if f.memory_ids is not None:
        clauses.append("m.id = ANY(%s)")
        params.append(list(f.memory_ids))
    if f.tags_any:
        clauses.append("m.tags ?| %s::text[]")
        params.append(list(f.tags_any))
    if f.tags_all:
        clauses.append("m.tags ?& %s::text[]")
        params.append(list(f.tags_all))
    for column, op, value in scalar_conditions(f):
        clauses.append(f"{column} {op} %s")
        params.append(value)
    if f.where is not None:
        sql, more = dsl_sql(f.where, MEMORY_DOC)
        clauses.append(sql)
        params += more
    return " AND ".join(clauses), params


def dsl_sql(node: dsl.Node, doc: str) -> tuple[str, list[Any]]:
    """A boolean SQL expression (and its parameters) for documents passing `node`; `doc` is
    an SQL expression giving each row's document as jsonb."""
    if isinstance(node, (dsl.And, dsl.Or)):
        parts = [dsl_sql(c, doc) for c in node.children]
        joiner = " AND " if isinstance(node, dsl.And) else " OR "
        return "(" + joiner.join(p[0] for p in parts) + ")", [x for p in parts for x in p[1]]
    if isinstance(node, dsl.Not):
        inner, params = dsl_sql(node.child, doc)
        return f"(NOT {inner})", params
    return _cond_sql(node, doc)


def _eq(x: str, path: list[str], value: Any) -> tuple[str, list[Any]]:
    """'The value at the path equals `value`' (null: null or missing); never NULL."""
    if value is None:
        return f"({x} IS NULL OR {x} = 'null'::jsonb)", [path, path]
    return f"coalesce({x} = %s, false)", [path, Jsonb(value)]


def _member(x: str, path: list[str], value: Any) -> tuple[str, list[Any]]:
    """'The value at the path is an array holding an element equal to `value`'."""
    return (f"coalesce(jsonb_typeof({x}) = 'array' AND EXISTS (SELECT 1 FROM "
            f"jsonb_array_elements({x}) e(v) WHERE e.v = %s), false)",
            [path, path, Jsonb(value)])


def _cond_sql(c: dsl.Cond, doc: str) -> tuple[str, list[Any]]:
    path = c.field.split(".")
    x = f"({doc} #> %s::text[])"
    text = f"({doc} #>> %s::text[])"
    op, v = c.op, c.value
    if op in ("$eq", "$ne"):
        sql, params = _eq(x, path, v)
        return (f"(NOT {sql})" if op == "$ne" else sql), params
    if op in dsl.COMPARE:
        sym = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
        if isinstance(v, str):  # strings compare by code point, as Python's do
            return (f"coalesce(CASE WHEN jsonb_typeof({x}) = 'string' THEN "
                    f"{text} COLLATE \"C\" {sym} %s COLLATE \"C\" END, false)",
                    [path, path, v])
        return (f"coalesce(CASE WHEN jsonb_typeof({x}) = 'number' THEN "
                f"({x})::numeric {sym} %s::numeric END, false)", [path, path, v])
    if op in ("$in", "$nin"):
        if not v:
            return ("true", []) if op == "$nin" else ("false", [])
        parts = [_eq(x, path, a) for a in v]
        sql = "(" + " OR ".join(p[0] for p in parts) + ")"
        params = [p for part in parts for p in part[1]]
        return (f"(NOT {sql})" if op == "$nin" else sql), params
    if op == "$exists":
        return (f"{x} IS NOT NULL" if v else f"{x} IS NULL"), [path]
    if op == "$arrayContains":
        return _member(x, path, v)
    if op == "$contains":
        member, params = _member(x, path, v)
        if not isinstance(v, str):
            return member, params
        return (f"(coalesce(jsonb_typeof({x}) = 'string' AND strpos({text}, %s) > 0, false) "
                f"OR {member})", [path, path, v, *params])
    if op in ("$arrayContainsAll", "$arrayContainsAny"):
        if not v:
            return ((f"coalesce(jsonb_typeof({x}) = 'array', false)", [path])
                    if op == "$arrayContainsAll" else ("false", []))
        parts = [_member(x, path, a) for a in v]
        joiner = " AND " if op == "$arrayContainsAll" else " OR "
        return ("(" + joiner.join(p[0] for p in parts) + ")",
                [p for part in parts for p in part[1]])
    if op == "$startsWith":
        return (f"coalesce(jsonb_typeof({x}) = 'string' AND left({text}, length(%s)) = %s, "
                "false)", [path, path, v, v])
    if op == "$endsWith":
        return (f"coalesce(jsonb_typeof({x}) = 'string' AND (%s = '' OR "
                f"right({text}, length(%s)) = %s), false)", [path, v, path, v, v])
    if op == "$icontains":  # lower() folds by the database's locale (Python: casefold)
        return (f"coalesce(jsonb_typeof({x}) = 'string' AND "
                f"strpos(lower({text}), lower(%s)) > 0, false)", [path, path, v])
    if op in ("$glob", "$regex"):
        pattern = glob_to_pg(v) if op == "$glob" else regex_to_pg(v)
        return (f"coalesce(jsonb_typeof({x}) = 'string' AND {text} ~ %s, false)",
                [path, path, pattern])
    raise NotImplementedFeature(f"the filter operator {op} is not available on the "
                                "PostgreSQL backend")
