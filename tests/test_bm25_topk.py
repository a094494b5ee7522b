"""BM25 top-k (app/store/bm25.py) returns what scoring every match returns.

The reference is the plain query: score every FTS5 match of the agent, join to memories
for the filters, sort. The store must agree with it on skewed (Zipf) text with several
agents, expired, deleted and updated memories, with and without filters, and with the
agent token left out when one agent holds nearly everything. With a budget, a query of common
terms only is scored over the newest matches, and that too is checked against SQL.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from app.models import Memory, MemoryFilter
from app.store import MemoryRow, SqliteStore, Tx
from app.store import bm25 as bm25_module
from app.store.filters import filter_sql
from app.store.memories import agent_token

NOW = 1_800_000_000
WORDS = [f"w{i}" for i in range(60)]
WEIGHTS = [1.0 / (i + 1) ** 1.1 for i in range(len(WORDS))]


def text(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, WEIGHTS, k=rng.randint(3, 14)))


def memory(agent: str, content: str, i: int, rng: random.Random) -> MemoryRow:
    expires = NOW - 10 if rng.random() < 0.05 else (NOW + 1000 if rng.random() < 0.05
                                                     else None)
    # the event date is indexed beside the content (the context column, weight 0.5)
    event = NOW - rng.randrange(400) * 86_400 if rng.random() < 0.2 else None
    m = Memory(id=f"m{i}", agent_id=agent, content=content,
               memory_type=rng.choice(["episodic", "semantic"]), importance=0.5, tags=[],
               metadata={}, session_id=None, created_at=NOW - 100, updated_at=NOW - 100,
               last_accessed_at=NOW - 100, access_count=0, ttl_seconds=None,
               expires_at=expires, event_time=event)
    return MemoryRow(m, np.ones(4, dtype=np.float32) / 2, f"h{i}")


def insert(store: SqliteStore, rows: list[MemoryRow]) -> None:
    store.write(lambda tx: [tx.memories.insert(row) for row in rows])


def build(path: Path, agents: dict[str, int], seed: int) -> SqliteStore:
    rng = random.Random(seed)
    store = SqliteStore(path, dimension=4, model_id="test")
    rows = [memory(agent, text(rng), i, rng)
            for agent, n in agents.items() for i in range(n)]
    rng.shuffle(rows)
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        insert(store, chunk)
    # Some deletions and content updates, so that FTS5 holds deleted and replaced rows.
    live = [r.memory for r in rows]
    gone = rng.sample(live, len(live) // 20)
    changed = [m for m in rng.sample(live, len(live) // 10) if m not in gone]
    for m in changed:
        m.content = text(rng)

    def edit(tx: Tx) -> None:
        for m in gone:
            tx.memories.delete(m.agent_id, [m.rowid])
        for m in changed:
            tx.memories.update(m, MemoryRow(m, np.ones(4, dtype=np.float32) / 2, "x"), True)

    store.write(edit)
    return store


def reference(store: SqliteStore, agent: str, match: str, filters: MemoryFilter, limit: int
              ) -> list[tuple[int, float]]:
    where, params = filter_sql(agent, filters, NOW)
    sql = ("WITH hits AS MATERIALIZED (SELECT rowid, bm25(memories_fts, 1.0, 0.5, 0.0) AS s "
           "FROM memories_fts WHERE memories_fts MATCH ?) "
           "SELECT h.rowid, -h.s FROM hits h JOIN memories m ON m.rowid = h.rowid "
           f"WHERE {where} ORDER BY h.s LIMIT ?")
    expr = f'agent : "{agent_token(agent)}" AND ({match})'
    return [(r[0], r[1]) for r in store.reader().execute(sql, [expr, *params, limit])]


def same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    """Equal scores in order; equal rows except where a tie straddles the cut."""
    assert len(got) == len(want)
    assert [round(s, 9) for _, s in got] == [round(s, 9) for _, s in want]
    if want:
        cut = round(want[-1][1], 9)
        assert ({r for r, s in got if round(s, 9) > cut}
                == {r for r, s in want if round(s, 9) > cut})


def queries(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = list(dict.fromkeys(rng.choices(WORDS, WEIGHTS, k=rng.randint(1, 5))))
        if rng.random() < 0.2:
            words.append("absent")
        out.append(" OR ".join(f'"{w}"' for w in words))
    return out


@pytest.mark.parametrize("agents", [{"big": 2500, "small": 300}, {"only": 2500}],
                         ids=["two agents", "one agent"])
def test_exact_top_k_equals_scoring_every_match(tmp_path: Path,
                                                agents: dict[str, int]) -> None:
    store = build(tmp_path / "db.sqlite", agents, seed=3)
    store.memories.bm25_max_scored = 0
    plans: list[str] = []

    def bm25(agent: str, match: str, filters: MemoryFilter, limit: int
             ) -> list[tuple[int, float]]:
        where, params = filter_sql(agent, filters, NOW)
        q = bm25_module.Query(agent_id=agent, agent_token=agent_token(agent), where=where,
                              params=params, filtered=filters.any(), limit=limit)
        conn = store.reader()
        conn.execute("BEGIN")
        try:
            got = bm25_module.top(conn, q, match, 0, trace=plans)
        finally:
            conn.execute("COMMIT")
        assert got == store.memories.bm25(agent, match, filters, NOW, limit)
        return got

    try:
        for agent in agents:
            for i, match in enumerate(queries(seed=len(agent), n=120)):
                limit = (5, 10, 50)[i % 3]
                filters = MemoryFilter(memory_type="semantic") if i % 4 == 0 else (
                    MemoryFilter())
                same(bm25(agent, match, filters, limit),
                     reference(store, agent, match, filters, limit))
        # Writes change idf: a value cached before them must not be used after. Make a
        # common word rare (delete most rows holding it), so that a stale, low idf would
        # prune rows that now rank first.
        agent = next(iter(agents))
        match = '"w50" OR "w5"'
        same(bm25(agent, match, MemoryFilter(), 10),
             reference(store, agent, match, MemoryFilter(), 10))
        holding = [r[0] for r in store.reader().execute(
            "SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'w5'")]
        owners = dict(store.reader().execute("SELECT rowid, agent_id FROM memories"))
        doomed = [r for r in holding[:-20] if r in owners]
        store.write(lambda tx: [tx.memories.delete(owners[r], [r]) for r in doomed])
        rng = random.Random(11)
        insert(store, [memory(agent, "w5 w5", 10_000 + i, rng) for i in range(15)])
        same(bm25(agent, match, MemoryFilter(), 10),
             reference(store, agent, match, MemoryFilter(), 10))
        # identifier-style expressions and dates (the context column) take the plain path
        # and agree too
        for match in ('content : ("w3 w1")', '"w0 w1" OR "w2"', '"march" OR "w3"',
                      '"2025" OR "w40"'):
            for agent in agents:
                same(bm25(agent, match, MemoryFilter(), 10),
                     reference(store, agent, match, MemoryFilter(), 10))
    finally:
        store.close()
    assert "pruned" in plans and "full" in plans, plans  # both exact plans were exercised


def test_budget_scores_the_newest_matches_of_common_terms(tmp_path: Path) -> None:
    store = build(tmp_path / "db.sqlite", {"big": 2500, "small": 300}, seed=5)
    store.memories.bm25_max_scored = 300
    try:
        for agent in ("big", "small"):
            match = '"w0" OR "w1"'  # the two commonest words: in most rows
            got = store.memories.bm25(agent, match, MemoryFilter(), NOW, 10)
            where, params = filter_sql(agent, MemoryFilter(), NOW)
            # the newest 300 matches of the agent, or of the table when the agent holds
            # over four fifths of it (then the MATCH is not confined to the agent)
            expr = match if agent == "big" else f'agent : "{agent_token(agent)}" AND ({match})'
            want = [(r[0], r[1]) for r in store.reader().execute(
                "SELECT rowid, s FROM (SELECT f.rowid, -bm25(memories_fts, 1.0, 0.5, 0.0) "
                "AS s FROM memories_fts f WHERE memories_fts MATCH ? "
                "ORDER BY f.rowid DESC LIMIT 300) h WHERE EXISTS (SELECT 1 FROM memories m "
                f"WHERE m.rowid = h.rowid AND {where}) ORDER BY s DESC LIMIT 10",
                [expr, *params])]
            same(got, want)
            # a rare term still gets the exact answer under the same budget
            exact = store.memories.bm25(agent, '"w50" OR "w0"', MemoryFilter(), NOW, 10)
            same(exact, reference(store, agent, '"w50" OR "w0"', MemoryFilter(), 10))
    finally:
        store.close()


def test_no_rows_of_another_agent_and_none_expired(tmp_path: Path) -> None:
    store = build(tmp_path / "db.sqlite", {"big": 1500, "small": 200}, seed=9)
    try:
        owner = dict(store.reader().execute("SELECT rowid, agent_id FROM memories"))
        expiry = dict(store.reader().execute("SELECT rowid, expires_at FROM memories"))
        for agent in ("big", "small"):
            for match in queries(seed=1, n=30):
                for rowid, _ in store.memories.bm25(agent, match, MemoryFilter(), NOW, 50):
                    assert owner[rowid] == agent
                    assert expiry[rowid] is None or expiry[rowid] > NOW
    finally:
        store.close()
