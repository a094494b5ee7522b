"""The filter language: one meaning, whether SQLite (app/store/filters.dsl_sql) or Python
(app/filter_dsl.evaluate) applies it; bad filters are 400s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import filter_dsl as dsl
from app.errors import ValidationError
from app.store.db import connect
from app.store.filters import dsl_sql

DOCS: list[dict[str, Any]] = [
    {},
    {"a": 1}, {"a": 1.5}, {"a": "1"}, {"a": True}, {"a": False}, {"a": None},
    {"a": [1, 2, "x"]}, {"a": {"b": 2}}, {"a": "hello World"}, {"a": "é"},
    {"a": 3, "b": "x"}, {"a": ["x", "y"], "b": 7}, {"a": {"b": "deep", "c": [True]}},
    {"a": "a.b*c"}, {"a": ""}, {"b": None}, {"a": -4, "b": [None]},
]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5),
                    st.sampled_from([1.5, -0.5]), st.sampled_from(["1", "x", "", "hello",
                                                                      "é", "World", "a*"]))
fields = st.sampled_from(["a", "b", "a.b", "a.c", "zz"])


def cond() -> st.SearchStrategy[dict[str, Any]]:
    ops = st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne"]), st.one_of(scalars, st.just([1, 2, "x"]))),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
                  st.one_of(st.integers(-5, 5), st.sampled_from(["a", "x", "hello"]))),
        st.tuples(st.sampled_from(["$in", "$nin", "$arrayContainsAll", "$arrayContainsAny"]),
                  st.lists(scalars, max_size=3)),
        st.tuples(st.just("$exists"), st.booleans()),
        st.tuples(st.sampled_from(["$contains", "$arrayContains"]), scalars),
        st.tuples(st.sampled_from(["$icontains", "$startsWith", "$endsWith"]),
                  st.sampled_from(["", "h", "hello", "WORLD", "é", "lo Wo"])),
        st.tuples(st.just("$glob"), st.sampled_from(["h*", "*d", "a.b?c", "[ab]*"])),
        st.tuples(st.just("$regex"), st.sampled_from(["^h", "o W", "[0-9]", "^$"])),
    )
    return st.builds(lambda f, o: {f: {o[0]: o[1]}}, fields, ops)


filters = st.recursive(
    cond(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, inner)),
    max_leaves=6)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    conn = connect(Path(tmp_path_factory.mktemp("dsl")) / "t.db")
    conn.execute("CREATE TABLE docs (n INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
    for n, doc in enumerate(DOCS):
        conn.execute("INSERT INTO docs VALUES (?, ?)", (n, msgspec.json.encode(doc).decode()))
    return conn


def sql_matches(conn: Any, node: dsl.Node) -> set[int]:
    where, params = dsl_sql(node, "d.doc")
    return {r[0] for r in conn.execute(f"SELECT n FROM docs d WHERE {where}", params)}


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters)
def test_sql_and_python_agree(db: Any, raw: dict[str, Any]) -> None:
    node = dsl.parse(raw)
    assert node is not None
    python = {n for n, doc in enumerate(DOCS) if dsl.matches(node, doc)}
    assert sql_matches(db, node) == python, raw
    assert dsl.parse(dsl.to_raw(node)) == node


@pytest.mark.parametrize(("raw", "expected"), [
    ({"a": 1}, {1}),
    ({"a": {"$gt": 1}}, {2, 11}),
    ({"a": {"$gte": "a"}}, {9, 10, 14}),  # strings compare with strings only
    ({"a": None}, {0, 6, 16}),  # null matches missing too
    ({"a": {"$exists": False}}, {0, 16}),
    ({"a": {"$in": [1, "1", True]}}, {1, 3, 4}),  # true is not 1
    ({"a": {"$contains": "x"}}, {7, 12}),
    ({"a": {"$contains": "World"}}, {9}),
    ({"a": {"$icontains": "world"}}, {9}),
    ({"a.b": "deep"}, {13}),
    ({"a": {"$regex": "^h.*d$"}}, {9}),
    ({"a": {"$glob": "a.b?c"}}, {14}),
    ({"$or": [{"a": 3}, {"b": 7}]}, {11, 12}),
    ({"a": {"$ne": 1}, "b": {"$exists": True}}, {11, 12, 16, 17}),
    ({"$not": {"a": {"$exists": True}}}, {0, 16}),
    ({"a": {"$arrayContainsAll": ["x", "y"]}}, {12}),
    ({"a": {"$not": {"$lt": 0}}}, set(range(len(DOCS))) - {17}),
])
def test_examples(db: Any, raw: dict[str, Any], expected: set[int]) -> None:
    node = dsl.parse(raw)
    assert node is not None
    assert {n for n, doc in enumerate(DOCS) if dsl.matches(node, doc)} == expected
    assert sql_matches(db, node) == expected


@pytest.mark.parametrize("raw", [
    [1], "x", {"a": {"$nope": 1}}, {"$and": []}, {"$or": {}}, {"$foo": []},
    {"a": {"$gt": True}}, {"a": {"$gt": [1]}}, {"a": {"$in": 3}}, {"a": {"$exists": 1}},
    {"a": {"$regex": "(a)\\1"}}, {"a": {"$regex": "x" * 300}}, {"a": {"$startsWith": 3}},
    {'a"b': 1}, {"a..b": 1}, {"": 1}, {"a": {"$gt": float("nan")}},
    {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {
        "$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {"$not": {
            "a": 1}}}}}}}}}}}}}}}}}}},
    {"$or": [{"a": i} for i in range(300)]},
])
def test_bad_filters_are_400(raw: Any) -> None:
    with pytest.raises(ValidationError):
        dsl.parse(raw)


def test_catastrophic_patterns_run_in_linear_time() -> None:
    node = dsl.parse({"a": {"$regex": "(x+x+)+y"}})
    assert node is not None
    assert not dsl.matches(node, {"a": "x" * 200_000})


def test_empty_filter_is_no_filter() -> None:
    assert dsl.parse(None) is None
    assert dsl.parse({}) is None
