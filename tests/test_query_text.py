"""Any user text becomes a valid FTS5 query (property-based, against a real FTS5 table)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.recall.query import fts_match, identifier_match, terms
from app.store.db import sqlite3


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


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_valid_match_expression(fts, text: str) -> None:  # type: ignore[no-untyped-def]
    for expr in (fts_match(text), identifier_match(text)):
        if expr is not None:
            fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()


@pytest.mark.parametrize("text", ['"', "AND", "NEAR(a b)", "content:x", "*", "-", "^", "(",
                                  "a:b", "🙄", "x OR y NOT z", "\x00"])
def test_fts_syntax_is_quoted(fts, text: str) -> None:  # type: ignore[no-untyped-def]
    expr = fts_match(text)
    if expr is not None:
        fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()


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
