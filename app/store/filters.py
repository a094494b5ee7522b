"""MemoryFilter as SQL over `memories m`: the one builder every query of the store uses."""

from __future__ import annotations

from typing import Any

import msgspec

from app import filter_dsl as dsl
from app.models import MemoryFilter

_encode = msgspec.json.encode

# A memory is live until it expires.
LIVE = "(m.expires_at IS NULL OR m.expires_at > ?)"


def json_list(values: Any) -> str:
    return _encode(list(values)).decode()


def scalar_conditions(f: MemoryFilter) -> list[tuple[str, str, Any]]:
    """(column, operator, value) of the filter's set single-value conditions, in the SQL both
    backends share (each adds its own placeholder)."""
    return [(column, op, value) for column, op, value in (
        ("m.memory_type", "=", f.memory_type),
        ("m.session_id", "=", f.session_id),
        ("m.importance", ">=", f.min_importance),
        ("m.importance", "<=", f.max_importance),
        ("m.created_at", ">=", f.created_after),
        ("m.created_at", "<=", f.created_before),
        ("COALESCE(m.event_time, m.created_at)", ">=", f.since),
        ("COALESCE(m.event_time, m.created_at)", "<=", f.until)) if value is not None]


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
    for column, op, value in scalar_conditions(f):
        clauses.append(f"{column} {op} ?")
        params.append(value)
    if f.where is not None:
        sql, more = dsl_sql(f.where, MEMORY_DOC)
        clauses.append(sql)
        params += more
    return " AND ".join(clauses), params


# A memory as the document filter expressions see (app/models.Memory.filter_view).
MEMORY_DOC = (
    "json_object('id', m.id, 'agent_id', m.agent_id, 'content', m.content, "
    "'memory_type', m.memory_type, 'importance', m.importance, 'tags', json(m.tags), "
    "'session_id', m.session_id, 'created_at', m.created_at, 'updated_at', m.updated_at, "
    "'last_accessed_at', m.last_accessed_at, 'access_count', m.access_count, "
    "'expires_at', m.expires_at, 'metadata', json(m.metadata))")


# -- the filter language (app/filter_dsl.py) as SQL over a JSON document ------------------

JSON_NUM = "('integer', 'real')"
UDF = "dakera_filter"  # evaluates a (sub)filter in Python: registered on every connection


def dsl_sql(node: dsl.Node, doc: str) -> tuple[str, list[Any]]:
    """A WHERE clause (and its parameters) for documents passing `node`; `doc` is an SQL
    expression giving each row's document as JSON text. What SQL cannot say exactly as
    app/filter_dsl.evaluate does is evaluated by it, through the SQL function UDF."""
    compiled = _node_sql(node, doc)
    if compiled is not None:
        return compiled
    if isinstance(node, dsl.And):  # the parts SQL can do narrow the rows first
        sql_parts, params, rest = [], [], []
        for child in node.children:
            part = _node_sql(child, doc)
            if part is None:
                rest.append(child)
            else:
                sql_parts.append(part[0])
                params += part[1]
        residual = rest[0] if len(rest) == 1 else dsl.And(tuple(rest))
        sql_parts.append(f"{UDF}({doc}, ?)")
        return "(" + " AND ".join(sql_parts) + ")", [*params, dsl.to_json(residual)]
    return f"{UDF}({doc}, ?)", [dsl.to_json(node)]


def _udf(doc: str | None, raw: str) -> int:
    """dakera_filter(document JSON, filter JSON): 1 when the document passes."""
    node = dsl.from_json(raw)
    if node is None:
        return 1
    if doc is None:
        return 0
    return int(dsl.matches(node, msgspec.json.decode(doc)))


def register(conn: Any) -> None:
    """Make the filter language's SQL function available on a connection."""
    conn.create_function(UDF, 2, _udf, deterministic=True)


def _path(field: str) -> str:
    return "$" + "".join(f'."{part}"' for part in field.split("."))


def _node_sql(node: dsl.Node, doc: str) -> tuple[str, list[Any]] | None:
    if isinstance(node, (dsl.And, dsl.Or)):
        parts = [_node_sql(c, doc) for c in node.children]
        if any(p is None for p in parts):
            return None
        joiner = " AND " if isinstance(node, dsl.And) else " OR "
        return ("(" + joiner.join(p[0] for p in parts if p) + ")",
                [x for p in parts if p for x in p[1]])
    if isinstance(node, dsl.Not):
        inner = _node_sql(node.child, doc)
        return None if inner is None else (f"(NOT {inner[0]})", inner[1])
    return _cond_sql(node, doc)


def _scalar_eq(value: Any, t: str, x: str) -> tuple[str, list[Any]] | None:
    """SQL for 'the value at (t = json_type, x = json_extract) equals `value`'."""
    if value is None:
        return f"({t} IS NULL OR {t} = 'null')", []
    if isinstance(value, bool):
        return f"{t} = '{'true' if value else 'false'}'", []
    if isinstance(value, (int, float)):
        return f"({t} IN {JSON_NUM} AND {x} = ?)", [value]
    if isinstance(value, str):
        return f"({t} = 'text' AND {x} = ?)", [value]
    return None  # lists and objects: compared in Python


def _element_eq(value: Any) -> tuple[str, list[Any]] | None:
    """SQL over a json_each row `e` for 'this element equals `value`'."""
    if value is None:
        return "e.type = 'null'", []
    if isinstance(value, bool):
        return f"e.type = '{'true' if value else 'false'}'", []
    if isinstance(value, (int, float)):
        return f"(e.type IN {JSON_NUM} AND e.value = ?)", [value]
    if isinstance(value, str):
        return "(e.type = 'text' AND e.value = ?)", [value]
    return None


def _cond_sql(c: dsl.Cond, doc: str) -> tuple[str, list[Any]] | None:
    path = _path(c.field)
    t, x = f"json_type({doc}, ?)", f"json_extract({doc}, ?)"
    op, v = c.op, c.value

    if op in ("$eq", "$ne"):
        eq = _scalar_eq(v, t, x)
        if eq is None:
            return None
        sql = f"coalesce({eq[0]}, 0)"
        params = _interleave(eq[0], t, x, path, eq[1])
        return (f"(NOT {sql})" if op == "$ne" else sql), params
    if op in dsl.COMPARE:
        sym = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
        kind = f"IN {JSON_NUM}" if isinstance(v, (int, float)) else "= 'text'"
        sql = f"coalesce(({t} {kind} AND {x} {sym} ?), 0)"
        return sql, _interleave(sql, t, x, path, [v])
    if op in ("$in", "$nin"):
        parts = [_scalar_eq(a, t, x) for a in v]
        if any(p is None for p in parts):
            return None
        if not parts:
            return ("1", []) if op == "$nin" else ("0", [])
        strings = [a for a in v if isinstance(a, str)]
        numbers = [a for a in v if isinstance(a, (int, float)) and not isinstance(a, bool)]
        others = [p for a, p in zip(v, parts, strict=True)
                  if not isinstance(a, (str, int, float)) or isinstance(a, bool)]
        terms, params = [], []
        if strings:
            terms.append(f"({t} = 'text' AND {x} IN (SELECT value FROM json_each(?)))")
            params += [path, path, json_list(strings)]
        if numbers:
            terms.append(f"({t} IN {JSON_NUM} AND {x} IN (SELECT value FROM json_each(?)))")
            params += [path, path, json_list(numbers)]
        for p in others:
            assert p is not None
            terms.append(p[0])
            params += _interleave(p[0], t, x, path, p[1])
        sql = "coalesce((" + " OR ".join(terms) + "), 0)"
        return (f"(NOT {sql})" if op == "$nin" else sql), params
    if op == "$exists":
        return (f"{t} IS NOT NULL" if v else f"{t} IS NULL"), [path]
    if op in ("$contains", "$arrayContains"):
        el = _element_eq(v)
        if el is None:
            return None
        member = (f"({t} = 'array' AND EXISTS (SELECT 1 FROM json_each({doc}, ?) e "
                  f"WHERE {el[0]}))")
        params = [path, path, *el[1]]
        if op == "$contains" and isinstance(v, str):
            sql = f"coalesce((({t} = 'text' AND instr({x}, ?) > 0) OR {member}), 0)"
            return sql, [path, path, v, *params]
        return f"coalesce({member}, 0)", params
    if op in ("$arrayContainsAll", "$arrayContainsAny"):
        subs = [_cond_sql(dsl.Cond(c.field, "$arrayContains", a), doc) for a in v]
        if any(s is None for s in subs):
            return None
        if not subs:  # every one of no values: any array
            return ((f"coalesce({t} = 'array', 0)", [path]) if op == "$arrayContainsAll"
                    else ("0", []))
        joiner = " AND " if op == "$arrayContainsAll" else " OR "
        return ("(" + joiner.join(s[0] for s in subs if s) + ")",
                [p for s in subs if s for p in s[1]])
    if op == "$startsWith":
        return (f"coalesce(({t} = 'text' AND substr({x}, 1, length(?)) = ?), 0)",
                [path, path, v, v])
    if op == "$endsWith":
        return (f"coalesce(({t} = 'text' AND (? = '' OR substr({x}, -length(?)) = ?)), 0)",
                [path, v, path, v, v])
    return None  # $icontains (Unicode case folding), $glob, $regex: in Python


def _interleave(sql: str, t: str, x: str, path: str, values: list[Any]) -> list[Any]:
    """Parameters for `sql` in order: `path` for each json_type/json_extract call, and the
    `values` for the remaining placeholders, in the order they appear."""
    out: list[Any] = []
    values = list(values)
    i = 0
    while i < len(sql):
        if sql.startswith(t, i):
            out.append(path)
            i += len(t)
        elif sql.startswith(x, i):
            out.append(path)
            i += len(x)
        elif sql[i] == "?":
            out.append(values.pop(0))
            i += 1
        else:
            i += 1
    return out
