"""Any user text becomes a valid FTS5 query (property-based, against a real FTS5 table)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.recall.query import fts_match, identifier_match, terms
from app.store.db import sqlite3
from app.store.memories import fts_text


@pytest.fixture(scope="module")
def fts():  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(content, context, agent, content='', "
                 "contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO t (rowid, content, context, agent) VALUES "
                 "(1, 'ticket 4417-XQ-93 for the blender', '', 'a1'), "
                 "(2, 'AND OR NOT near', '', 'a1')")
    yield conn
    conn.close()


QUOTED_OR = re.compile(r'"[^"]*"(?: OR "[^"]*")*')


def match_rows(fts, expr: str) -> list[int]:  # type: ignore[no-untyped-def]
    return sorted(r[0] for r in fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_only_quoted_phrases(fts, text: str) -> None:  # type: ignore[no-untyped-def]
    """No user text is read as FTS5 syntax: the expression is an OR of quoted phrases (no
    quote inside a phrase) that FTS5 accepts, and it exists exactly when the text has words."""
    expr = fts_match(text)
    assert (expr is None) == (terms(text) == [])
    if expr is not None:
        assert QUOTED_OR.fullmatch(expr), expr
        match_rows(fts, expr)
    ident = identifier_match(text)
    if ident is not None:
        assert ident.startswith("content : (") and QUOTED_OR.fullmatch(ident[11:-1]), ident
        match_rows(fts, ident)


WORDS = st.sampled_from(["blender", "ticket", "Ärger", "naïve", "AND", "OR", "NOT", "NEAR",
                         "x1", "42", "über", "don't", "e-mail", "a_b", "café"])
SEPARATORS = st.sampled_from([" ", "  ", ", ", "; ", ' "', "* ", ":", "(", ")", "-", "^",
                              "?", "\n", "🙄"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=8))
def test_a_text_finds_itself(fts, parts: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    """Stored as a memory, a text is found by its own words as a query, whatever
    operators, quotes, punctuation and emoji it holds (the store indexes fts_text)."""
    text = "".join(w + sep for w, sep in parts)
    fts.execute("INSERT INTO t (rowid, content, context, agent) VALUES (99, ?, '', 'a1')",
                (fts_text(text),))
    try:
        expr = fts_match(text)
        assert expr is not None
        assert 99 in match_rows(fts, expr), repr(text)
    finally:
        fts.execute("DELETE FROM t WHERE rowid = 99")


@pytest.mark.parametrize(("text", "rows"), [
    ('"', None), ("AND", [2]), ("NEAR(a b)", [2]), ("content:x", []), ("*", None),
    ("-", None), ("^", None), ("(", None), ("a:b", []), ("🙄", None), ("x OR y NOT z", []),
    ("\x00", None), ("blender ticket", [1]), ("near the BLENDER", [1, 2])])
def test_operators_are_plain_words(fts, text: str, rows: list[int] | None) -> None:  # type: ignore[no-untyped-def]
    """FTS5 operators and column filters in a query are words like any other: they match
    the rows holding them (rows: None when the text has no words)."""
    expr = fts_match(text)
    if rows is None:
        assert expr is None
    else:
        assert expr is not None and match_rows(fts, expr) == rows


def test_terms_drop_stop_words_unless_nothing_else() -> None:
    assert terms("What did Caroline do last weekend?") == ["caroline", "last", "weekend"]
    assert terms("what is it") == ["what", "is", "it"]
    assert terms("!!!") == []
    assert fts_match("🙄") is None


def test_identifiers_match_as_exact_phrases(fts) -> None:  # type: ignore[no-untyped-def]
    assert identifier_match("what about ticket 4417-XQ-93?") == 'content : ("4417 xq 93")'
    assert identifier_match("hello there") is None
    expr = identifier_match("4417-XQ-93")
    assert expr is not None
    assert fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall() == [(1,)]
    miss = identifier_match("4417-XQ-39")
    assert miss is not None
    assert fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (miss,)).fetchall() == []
