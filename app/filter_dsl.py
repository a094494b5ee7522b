"""The filter language of the Dakera contract (§2.1), implemented once.

A filter is `{field: value}` (equality) or `{field: {op: value, ...}}`, combined with
`$and`, `$or` (lists of filters) and `$not` (a filter); several keys in one object must all
hold. Operators: $eq $ne $gt $gte $lt $lte $in $nin $exists $contains $icontains
$startsWith $endsWith $glob $regex $arrayContains $arrayContainsAll $arrayContainsAny.
A field names a key of the document (a vector's metadata, or a memory's fields and
metadata); dots reach into nested objects ("a.b").

`parse` checks a filter and turns it into a tree (`Node`); `evaluate` applies a tree to a
document in Python. The store compiles trees to SQL over JSON (app/store/filters.py) and
falls back to `evaluate` (as an SQL function) for what SQL cannot say the same way.

Semantics, the same in both: comparisons ($gt ...) hold only between two numbers or two
strings; a missing field fails every test but $ne, $nin, $exists false and $not; $eq null
matches null and missing; booleans equal only booleans. $regex is RE2 syntax (no
backreferences or lookaround), matched in time linear in the text by Google's RE2 engine:
no pattern can stall the server; a pattern is at most MAX_PATTERN characters.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import re2

from app.errors import ValidationError

MAX_DEPTH = 16
MAX_NODES = 256
MAX_LIST = 1000
MAX_PATTERN = 256

COMPARE = ("$gt", "$gte", "$lt", "$lte")
STRING_OPS = ("$icontains", "$startsWith", "$endsWith", "$glob", "$regex")
OPERATORS = ("$eq", "$ne", *COMPARE, "$in", "$nin", "$exists", "$contains", *STRING_OPS,
             "$arrayContains", "$arrayContainsAll", "$arrayContainsAny")


class Missing:
    """A field the document does not have."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


@dataclass(frozen=True, slots=True)
class Cond:
    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Cond | And | Or | Not


def parse(raw: Any, where: str = "filter") -> Node | None:
    """The tree of a filter; None for no filter (None or {}). Raises ValidationError (400)
    naming what is wrong."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError(f"'{where}' must be an object")
    if not raw:
        return None
    budget = [MAX_NODES]
    return _filter(raw, where, 0, budget)


def _filter(raw: Any, where: str, depth: int, budget: list[int]) -> Node:
    if not isinstance(raw, Mapping) or not raw:
        raise ValidationError(f"'{where}' must be a non-empty object")
    if depth > MAX_DEPTH:
        raise ValidationError(f"'{where}' is nested more than {MAX_DEPTH} levels deep")
    parts: list[Node] = []
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ValidationError(f"'{where}': keys must be strings")
        here = f"{where}.{key}"
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise ValidationError(f"'{here}' must be a non-empty list of filters")
            children = tuple(_filter(v, f"{here}[{i}]", depth + 1, budget)
                             for i, v in enumerate(value))
            parts.append(And(children) if key == "$and" else Or(children))
        elif key == "$not":
            parts.append(Not(_filter(value, here, depth + 1, budget)))
        elif key.startswith("$"):
            raise ValidationError(f"'{here}': unknown operator (a filter's keys are fields, "
                                  "$and, $or or $not)")
        else:
            parts.append(_field(_check_field(key, where), value, here, depth, budget))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _check_field(name: str, where: str) -> str:
    segments = name.split(".")
    if (not name or len(name) > 256 or any(not s for s in segments)
            or any(c in name for c in '"\\') or any(ord(c) < 32 for c in name)):
        raise ValidationError(f"'{where}': {name[:60]!r} is not a usable field name (1-256 "
                              "characters, no quotes or backslashes, dots between non-empty "
                              "parts)")
    return name


def _field(name: str, value: Any, where: str, depth: int, budget: list[int]) -> Node:
    if isinstance(value, Mapping) and value and all(
            isinstance(k, str) and k.startswith("$") for k in value):
        conds: list[Node] = []
        for op, arg in value.items():
            if op == "$not":
                conds.append(Not(_field(name, arg, f"{where}.$not", depth + 1, budget)))
            else:
                conds.append(_cond(name, op, arg, f"{where}.{op}", budget))
        return conds[0] if len(conds) == 1 else And(tuple(conds))
    return _cond(name, "$eq", value, where, budget)


def _cond(name: str, op: str, arg: Any, where: str, budget: list[int]) -> Cond:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValidationError(f"the filter has more than {MAX_NODES} conditions")
    if op not in OPERATORS:
        raise ValidationError(f"'{where}': unknown operator; known: {', '.join(OPERATORS)}")
    _check_json(arg, where)
    if op in COMPARE and _kind(arg) not in ("num", "str"):
        raise ValidationError(f"'{where}' must be a number or a string")
    if op in ("$in", "$nin", "$arrayContainsAll", "$arrayContainsAny") and (
            not isinstance(arg, list) or len(arg) > MAX_LIST):
        raise ValidationError(f"'{where}' must be a list of at most {MAX_LIST} values")
    if op == "$exists" and not isinstance(arg, bool):
        raise ValidationError(f"'{where}' must be true or false")
    if op in STRING_OPS:
        if not isinstance(arg, str):
            raise ValidationError(f"'{where}' must be a string")
        if op in ("$regex", "$glob") and len(arg) > MAX_PATTERN:
            raise ValidationError(f"'{where}': patterns are at most {MAX_PATTERN} "
                                  "characters")
        if op == "$regex":
            try:
                _compiled(arg)
            except re2.error as exc:
                reason = exc.args[0] if exc.args else exc
                if isinstance(reason, bytes):
                    reason = reason.decode(errors="replace")
                raise ValidationError(f"'{where}' is not a valid RE2 pattern: {reason}"
                                      ) from None
    return Cond(name, op, arg)


def _check_json(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"'{where}' must be a finite number")


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False  # a client's bad pattern is a 400, not a server log line
    return re2.compile(pattern, options)


# -- evaluation ------------------------------------------------------------------------


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "num"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, Mapping):
        return "obj"
    return "other"


def equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0, lists and objects deeply."""
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return False
    if ka == "list":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "obj":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


def lookup(doc: Mapping[str, Any], field: str) -> Any:
    """The value at a dotted path of a document, or MISSING."""
    value: Any = doc
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def evaluate(node: Node, get: Callable[[str], Any]) -> bool:
    """Whether a document passes the filter; `get(field)` gives a field's value or MISSING."""
    if isinstance(node, And):
        return all(evaluate(c, get) for c in node.children)
    if isinstance(node, Or):
        return any(evaluate(c, get) for c in node.children)
    if isinstance(node, Not):
        return not evaluate(node.child, get)
    return _test(node.op, get(node.field), node.value)


def matches(node: Node | None, doc: Mapping[str, Any]) -> bool:
    return node is None or evaluate(node, functools.partial(lookup, doc))


def _test(op: str, v: Any, arg: Any) -> bool:
    present = v is not MISSING
    if op == "$eq":
        return (v is MISSING or v is None) if arg is None else present and equal(v, arg)
    if op == "$ne":
        return not _test("$eq", v, arg)
    if op in COMPARE:
        if not present or _kind(v) != _kind(arg):
            return False
        return bool({"$gt": v > arg, "$gte": v >= arg, "$lt": v < arg, "$lte": v <= arg}[op])
    if op == "$in":
        return any(_test("$eq", v, a) for a in arg)
    if op == "$nin":
        return not _test("$in", v, arg)
    if op == "$exists":
        return present is arg
    if op == "$contains":
        if isinstance(v, str) and isinstance(arg, str):
            return arg in v
        return isinstance(v, list) and any(equal(x, arg) for x in v)
    if op == "$arrayContains":
        return isinstance(v, list) and any(equal(x, arg) for x in v)
    if op == "$arrayContainsAll":
        return isinstance(v, list) and all(any(equal(x, a) for x in v) for a in arg)
    if op == "$arrayContainsAny":
        return isinstance(v, list) and any(any(equal(x, a) for x in v) for a in arg)
    if not isinstance(v, str):
        return False
    if op == "$icontains":
        return arg.casefold() in v.casefold()
    if op == "$startsWith":
        return v.startswith(arg)
    if op == "$endsWith":
        return v.endswith(arg)
    if op == "$glob":
        return fnmatch.fnmatchcase(v, arg)
    return _compiled(arg).search(v) is not None  # $regex


def rename(node: Node, name: Callable[[str], str]) -> Node:
    """The same filter over renamed fields (to map a client's names onto a document)."""
    if isinstance(node, And):
        return And(tuple(rename(c, name) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(rename(c, name) for c in node.children))
    if isinstance(node, Not):
        return Not(rename(node.child, name))
    return Cond(name(node.field), node.op, node.value)


# -- the tree as JSON (what the store hands its SQL function) --------------------------


def to_raw(node: Node) -> Any:
    """The filter object of a tree (parse(to_raw(n)) == n)."""
    if isinstance(node, And):
        return {"$and": [to_raw(c) for c in node.children]}
    if isinstance(node, Or):
        return {"$or": [to_raw(c) for c in node.children]}
    if isinstance(node, Not):
        return {"$not": to_raw(node.child)}
    return {node.field: {node.op: node.value}}


def to_json(node: Node) -> str:
    return msgspec.json.encode(to_raw(node)).decode()


@functools.lru_cache(maxsize=256)
def from_json(text: str) -> Node | None:
    return parse(msgspec.json.decode(text))


__all__ = ["MISSING", "And", "Cond", "Node", "Not", "Or", "equal",
           "evaluate", "from_json", "lookup", "matches", "parse", "rename", "to_json",
           "to_raw"]
