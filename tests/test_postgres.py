"""The PostgreSQL backend: what only it does (several servers on one database, its schema
versions) and the BM25 it computes in SQL, checked against the in-memory index's.

Runs on the local cluster `make pg-up` starts (see conftest's `postgres` fixture); skipped
with the reason when PostgreSQL cannot be set up here.
"""

from __future__ import annotations

import dataclasses
import queue
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from app import filter_dsl as dsl
from app.config import Settings
from app.errors import DataDirError, NotImplementedFeature, ValidationError
from app.index.text import TextIndex, doc
from app.models import DecayPolicy, Edge, Memory, MemoryFilter, Mention, Namespace, Session
from app.service import Service
from app.store import ItemWrite, MemoryRow, open_store
from app.store.postgres import PgStore
from app.store.postgres import schema as pg_schema
from app.store.postgres.filters import dsl_sql as pg_dsl_sql
from app.store.postgres.regex import glob_to_pg, regex_to_pg
from tests.conftest import LiveServer, Postgres
from tests.test_events import Subscriber
from tests.test_filter_dsl import DOCS, filters

WORDS = ("garden party blue bicycle garage lisbon river coffee meeting budget report "
         "holiday train ticket doctor appointment birthday cake music guitar lesson "
         "project deadline dinner friday monday march").split()


@pytest.fixture
def database(postgres: Postgres) -> str:
    return postgres.new_database()


@pytest.fixture
def pg_store(database: str) -> Iterator[PgStore]:
    store = open_store(Path("/nonexistent"), dimension=8, model_id="test-model", url=database)
    assert isinstance(store, PgStore)
    yield store
    store.close()


def _memory(agent: str, content: str, event_time: int | None, i: int) -> Memory:
    return Memory(id=f"m{i}", agent_id=agent, content=content, memory_type="episodic",
                  importance=0.5, tags=[], metadata={}, session_id=None, created_at=1000 + i,
                  updated_at=1000 + i, last_accessed_at=1000 + i, access_count=0,
                  ttl_seconds=None, expires_at=None, event_time=event_time)


def test_bm25_in_sql_scores_as_the_in_memory_index(pg_store: PgStore) -> None:
    """Same corpus, same queries: the same memories in the same order with the same BM25
    scores (float32 rounding aside), with another agent's memories beside them and after
    deletions and an update."""
    rng = random.Random(7)
    vectors = np.random.default_rng(7).random((300, 8), dtype=np.float32)
    rows = []
    for i in range(300):
        agent = "a" if i % 3 else "b"  # b's memories must not count in a's statistics
        content = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30)))
        when = 1_700_000_000 + rng.randint(0, 10**7) if i % 5 == 0 else None
        m = _memory(agent, content, when, i)
        rows.append(MemoryRow(m, vectors[i], f"h{i}"))
    pg_store.write(lambda tx: [tx.memories.insert(r) for r in rows])
    gone = [r.memory.rowid for r in rows[1:60:2] if r.memory.agent_id == "a"]
    pg_store.write(lambda tx: tx.memories.delete("a", gone))
    changed = next(r.memory for r in rows[100:] if r.memory.agent_id == "a")
    changed.content = "bicycle bicycle garage march"
    pg_store.write(lambda tx: tx.memories.update(
        changed, MemoryRow(changed, np.ones(8, np.float32), "h-new"), set_importance=False))

    index = TextIndex("a")
    live = [r.memory for r in rows if r.memory.agent_id == "a" and r.memory.rowid not in gone]
    index.add([m.rowid for m in live], [doc(m.content, m.event_time) for m in live])
    search = pg_store.shared_indexes().find_text("a")
    assert search is not None
    for query in (["bicycl"], ["garden", "parti"], ["march", "friday", "cake"], ["2023"],
                  ["nowher"]):
        want_labels, want_scores = index.search(query, 20)
        got_labels, got_scores = search.search(query, 20)
        assert got_scores == pytest.approx(want_scores, rel=1e-4)
        # the same memories with the same scores (ties at the cut may differ in label)
        got, want = dict(zip(got_labels.tolist(), got_scores.tolist(), strict=True)), dict(
            zip(want_labels.tolist(), want_scores.tolist(), strict=True))
        cut = min(want.values(), default=0.0) * (1 + 1e-4)
        above = {label for label, score in want.items() if score > cut}
        assert above <= set(got)
        assert all(got[label] == pytest.approx(want[label], rel=1e-4) for label in above)
        allowed = np.array(sorted(m.rowid for m in live[:40]))
        assert search.search(query, 20, allowed)[1] == pytest.approx(
            index.search(query, 20, allowed)[1], rel=1e-4)
    phrase = ["bicycl", "garag"]
    assert sorted(search.holding_all(phrase).tolist()) == sorted(
        index.holding_all(phrase).tolist())


@pytest.mark.parametrize("path", ["exact", "hnsw"])
def test_vector_search_matches_exact_cosines(pg_store: PgStore, path: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways an agent is searched (every vector scored, or pgvector's HNSW index with
    an iterative scan filtered by agent) give the exact nearest neighbours here."""
    if path == "hnsw":
        monkeypatch.setattr("app.store.postgres.search.EXACT_UP_TO", 0)
        monkeypatch.setattr("app.store.postgres.search.NEAR_EXACT_UP_TO", 0)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [MemoryRow(_memory("a" if i % 2 else "b", f"text {i}", None, i), v, f"h{i}")
            for i, v in enumerate(vectors)]
    pg_store.write(lambda tx: [tx.memories.insert(r) for r in rows])
    search = pg_store.shared_indexes().find("a")
    assert search is not None and len(search) == 100
    q = vectors[5]
    labels, sims = search.search(q, 10)
    mine = [(r.memory.rowid, float(r.vector @ q)) for r in rows if r.memory.agent_id == "a"]
    mine.sort(key=lambda x: -x[1])
    assert labels.tolist() == [label for label, _ in mine[:10]]
    assert sims == pytest.approx([s for _, s in mine[:10]], abs=1e-5)
    many, many_sims = search.search_many(vectors[[5, 7, 9]], 10)
    assert many[0].tolist() == labels.tolist()
    assert many_sims[0] == pytest.approx(sims, abs=1e-5)
    for row, i in zip(many[1:], (7, 9), strict=True):
        assert row.tolist() == search.search(vectors[i], 10)[0].tolist()
    found, got = search.vectors(labels[:3].tolist())
    assert found == labels[:3].tolist()
    assert np.allclose(got, vectors[[label - 1 for label in found]])


def test_a_server_refuses_a_newer_schema(database: str, tmp_path: Path) -> None:
    store = open_store(tmp_path, dimension=8, model_id="test-model", url=database)
    store.close()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE dakera_schema SET version = 99")
    with pytest.raises(Exception, match="schema version 99, newer than this dakera knows"):
        open_store(tmp_path, dimension=8, model_id="test-model", url=database)


def test_schema_2_moves_the_vectors_beside_the_memories(database: str, tmp_path: Path
                                                        ) -> None:
    """A database written before migration 3 (vectors in the memories' rows) keeps every
    vector, now in memory_vectors, and answers searches and reads from there."""
    vectors = np.random.default_rng(3).random((5, 8), dtype=np.float32)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE dakera_schema (version INTEGER NOT NULL)")
        with conn.transaction():
            for migration in pg_schema.MIGRATIONS[:2]:
                migration(conn, 8)
            conn.execute("INSERT INTO dakera_schema (version) VALUES (2)")
        for i, v in enumerate(vectors):
            conn.execute(
                "INSERT INTO memories (id, agent_id, content, memory_type, importance, "
                "created_at, updated_at, last_accessed_at, content_hash, decayed_at, "
                "norm_hash, text_length, embedding, model_id) VALUES (%s, 'a', %s, "
                "'episodic', 0.5, 1, 1, 1, 'h', 1, 'n', 2, %s::float8[]::vector, 'test-model')",
                (f"m{i}", f"memory {i}", [float(x) for x in v]))
        conn.execute("INSERT INTO agents (agent_id, created_at, text_docs, text_length) "
                     "VALUES ('a', 1, 5, 10)")
    store = open_store(tmp_path, dimension=8, model_id="test-model", url=database)
    try:
        assert isinstance(store, PgStore)
        labels, got = store.vectors.get(list(range(1, 6)))
        assert sorted(labels.tolist()) == [1, 2, 3, 4, 5]
        order = np.argsort(labels)
        assert np.allclose(got[order], vectors, atol=1e-6)
        search = store.shared_indexes().find("a")
        assert search is not None
        found, _ = search.search(vectors[3], 1)
        assert found.tolist() == [4]
    finally:
        store.close()
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT version FROM dakera_schema").fetchone()[0] == len(
            pg_schema.MIGRATIONS)
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'memories'")}
        assert "embedding" not in columns


def test_one_store_leads_until_it_closes(database: str, tmp_path: Path) -> None:
    first = open_store(tmp_path, dimension=8, model_id="test-model", url=database)
    second = open_store(tmp_path, dimension=8, model_id="test-model", url=database)
    try:
        assert first.leads() and first.leads()
        assert not second.leads()
        first.close()
        assert second.leads()
    finally:
        first.close()
        second.close()


def test_two_servers_on_one_database(postgres: Postgres, tmp_path: Path) -> None:
    """A memory stored through one server is recalled through the other in the next
    request, and a forget on one is seen by the other at once (no node-local cache); a
    stream on one server sees the events of both, each once. Background work (here decay
    passes, every second) runs on one server at a time; a kill -9 of that server hands it
    to the other."""
    env = {"DAKERA_DATABASE_URL": postgres.new_database(), "DAKERA_DECAY_INTERVAL_SECS": "1"}
    servers = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        servers.append(LiveServer(tmp_path / name / "data", extra_env=env))
    leading = "now runs the background work"
    try:
        for server in servers:
            server.start()
        a, b = (s.client() for s in servers)
        stream = Subscriber(servers[1], "stream_memory_events")
        assert stream.next().event_type == "connected"
        mid = a.store_memory("shared", "Marta keeps her bicycle in the garage")["id"]
        stored = stream.next()  # stored through the other server
        assert (stored.event_type, stored.memory_id) == ("stored", mid)
        assert stored.content == "Marta keeps her bicycle in the garage"
        seen = [("stored", mid)]
        hits = b.recall("shared", "where is the bike stored?", top_k=1)
        assert [m.id for m in hits.memories] == [mid]
        assert b.recall("shared", "bicycle", top_k=1, routing="bm25").memories[0].id == mid
        other = b.store_memory("shared", "The garage door code is 4471")["id"]
        assert other in [m.id for m in a.recall("shared", "garage code", top_k=2).memories]
        assert b.forget("shared", mid)["deleted_count"] == 1
        while len(seen) < 3:  # its own events and the other's, each once, in order
            event = stream.next()
            if event.event_type in ("stored", "forgotten"):
                seen.append((event.event_type, event.memory_id))
        assert seen == [("stored", mid), ("stored", other), ("forgotten", mid)]
        with pytest.raises(queue.Empty):
            while True:  # nothing more: no event came twice
                event = stream.events.get(timeout=1)
                assert getattr(event, "event_type", None) not in ("stored", "forgotten")
        stream.close()
        assert mid not in [m.id for m in a.recall("shared", "bicycle", top_k=5).memories]
        with servers[0].http() as http:  # backups are pg_dump's: the server says so
            made = http.post("/v1/admin/backups", json={"name": "nightly"})
            assert made.status_code == 501 and "pg_dump" in made.json()["error"]

        deadline = time.monotonic() + 20
        while sum(leading in s.log() for s in servers) == 0:
            assert time.monotonic() < deadline, "no server took the lead"
            time.sleep(0.2)
        leader, follower = servers if leading in servers[0].log() else servers[::-1]
        time.sleep(2)  # a few more decay passes: the other server still does not lead
        assert leading not in follower.log()
        leader.kill()
        deadline = time.monotonic() + 20
        while leading not in follower.log():
            assert time.monotonic() < deadline, "the lead did not move"
            time.sleep(0.2)
    finally:
        for s in servers:
            if s.proc and s.proc.poll() is None:
                assert s.stop() == 0


# -- the filter language in jsonb ---------------------------------------------------------

@pytest.fixture(scope="module")
def docs_db(postgres: Postgres) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres.new_database(), autocommit=True) as conn:
        conn.execute("CREATE TABLE docs (n INTEGER PRIMARY KEY, doc JSONB NOT NULL)")
        for n, doc in enumerate(DOCS):
            conn.execute("INSERT INTO docs VALUES (%s, %s)", (n, Jsonb(doc)))
        yield conn


def _pg_matches(conn: psycopg.Connection[Any], node: dsl.Node) -> set[int]:
    where, params = pg_dsl_sql(node, "d.doc")
    return {r[0] for r in conn.execute(f"SELECT n FROM docs d WHERE {where}", params)}


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters)
def test_jsonb_filters_and_python_agree(docs_db: psycopg.Connection[Any],
                                        raw: dict[str, Any]) -> None:
    node = dsl.parse(raw)
    assert node is not None
    python = {n for n, doc in enumerate(DOCS) if dsl.matches(node, doc)}
    assert _pg_matches(docs_db, node) == python, raw


TEXTS = ["", "a", "ab", "abc", "aXc", "a.c", "a\nb", "x\ny\n", "foo bar", "foo_bar",
         "foo-bar", "Foo Bar", "FOO", "tab\there", "v\x0bt", "12-34", "Straße", "STRASSE",
         "naïve café", "日本語テキスト", "emoji 😀 ok", "[ab]", "*?", "back\\slash", "a{,2}",
         "h\\z", "\\x{41}",
         "ab" * 20, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "line1\nline2\nend"]
REGEXES = ["", "a", "^a", "c$", "^$", "a.c", "a.b", "(?s)a.b", "^b", "(?m)^b", "(?m)1$",
           "y$", "(?m)y$", "\\d+", "\\D", "^\\w+$", "\\W", "\\s", "\\S+", "[^a]",
           "[a-c]+", "[^\\d\\s]", "[\\w-]+", "\\bbar", "bar\\b", "\\Bar", "foo\\b_",
           "(?i)foo", "(?i)straße", "(?i)é", "a|b|^$", "(ab)+$", "(?:ab){20}", "a{2,3}",
           "a{3,}b", "a*?b", "a+?", "(a+)+$", "(x+x+)+y", "\\.", "[.]", "\\[ab\\]",
           "\\*\\?", "\\\\", "\\x41|\\x{1F600}", "😀", "[😀-😂]", "日本", "\\pL",
           "[[:alpha:]]+", "a{,2}", "(?i:foo)", "(?U)a+", "\\Qa.c\\E", "a{256}",
           "\\A\\w", "\\w\\z", "(?P<x>ab)c", "[^\\n]+$", "\\v", "\\t", "[\\x{41}-\\x{5A}]+",
           "h\\\\z", "\\\\x{41}"]


def _pg_regex_matches(conn: psycopg.Connection[Any], pattern: str) -> list[bool]:
    return [bool(r[0]) for r in conn.execute(
        "SELECT t ~ %s FROM unnest(%s::text[]) WITH ORDINALITY AS x(t, n) ORDER BY n",
        (pattern, TEXTS))]


@pytest.mark.parametrize("pattern", REGEXES)
def test_regex_matches_as_re2_or_is_refused(docs_db: psycopg.Connection[Any], pattern: str
                                           ) -> None:
    """$regex on PostgreSQL matches exactly the texts RE2 matches, or answers 501."""
    try:
        node = dsl.parse({"a": {"$regex": pattern}})
    except ValidationError:
        return  # not RE2: a 400 on both backends
    assert isinstance(node, dsl.Cond)
    try:
        translated = regex_to_pg(pattern)
    except NotImplementedFeature:
        assert pattern in REFUSED, f"{pattern!r} is refused but should translate"
        return
    assert pattern not in REFUSED, f"{pattern!r} translated to {translated!r}"
    expected = [dsl.matches(node, {"a": t}) for t in TEXTS]
    assert _pg_regex_matches(docs_db, translated) == expected, (pattern, translated)


REFUSED = {"a{,2}", "\\pL", "[[:alpha:]]+", "(?i:foo)", "(?U)a+", "\\Qa.c\\E", "a{256}"}


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="ab*?[]!-^\\.\n日", max_size=10))
def test_glob_matches_as_fnmatch(docs_db: psycopg.Connection[Any], pattern: str) -> None:
    """$glob on PostgreSQL matches exactly the texts fnmatch.fnmatchcase matches."""
    texts = ["", "a", "b", "ab", "ba", "a-b", "!", "^", "[", "]", "\\", ".", "a\nb", "日",
             "aab", "a]b", "*", "?", "a[b", pattern]
    node = dsl.parse({"a": {"$glob": pattern}})
    assert isinstance(node, dsl.Cond)
    translated = glob_to_pg(pattern)
    got = [bool(r[0]) for r in docs_db.execute(
        "SELECT t ~ %s FROM unnest(%s::text[]) WITH ORDINALITY AS x(t, n) ORDER BY n",
        (translated, texts))]
    assert got == [dsl.matches(node, {"a": t}) for t in texts], (pattern, translated)


def test_icontains_folds_case(docs_db: psycopg.Connection[Any]) -> None:
    node = dsl.parse({"a": {"$icontains": "BAR"}})
    assert node is not None
    where, params = pg_dsl_sql(node, "d.doc")
    got = {r[0] for r in docs_db.execute(
        f"SELECT t FROM (SELECT t, jsonb_build_object('a', t) AS doc FROM unnest(%s::text[]) "
        f"t) d WHERE {where}", [TEXTS, *params])}
    assert got == {t for t in TEXTS if "bar" in t.casefold()} == {"foo bar", "foo_bar",
                                                                 "foo-bar", "Foo Bar"}


def test_reads_and_writes_survive_dropped_connections(pg_store: PgStore, database: str
                                                      ) -> None:
    """A restart or failover of the database drops every connection: the next read and the
    next write go through on new connections (nothing had been committed on the old)."""
    rows = [MemoryRow(_memory("a", f"text {i}", None, i), np.ones(8, np.float32), f"h{i}")
            for i in range(3)]
    pg_store.write(lambda tx: tx.memories.insert(rows[0]))
    assert pg_store.memories.count("a", MemoryFilter(), 0) == 1
    assert pg_store.leads()
    name = database.rsplit("/", 1)[1]
    with psycopg.connect(database, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()) t", (name,)).fetchone()
    assert dropped is not None and dropped[0] >= 2  # the writer's and a reader's at least
    assert pg_store.memories.count("a", MemoryFilter(), 0) == 1
    pg_store.write(lambda tx: tx.memories.insert(rows[1]))
    assert pg_store.memories.count("a", MemoryFilter(), 0) == 2
    assert pg_store.write_fault() is None
    assert pg_store.leads()  # the lead was lost with its connection, and taken again


def test_reads_answer_as_sqlite(pg_store: PgStore, tmp_path: Path) -> None:
    """The same writes into both backends, then the read side asked the same questions:
    the same answers (rowids line up: both number memories from 1 in stored order)."""
    sqlite = open_store(tmp_path / "dakera.db", dimension=8, model_id="test-model")
    rng = random.Random(11)
    vectors = np.random.default_rng(11).random((120, 8), dtype=np.float32)
    rows = []
    for i in range(120):
        m = _memory("a" if i % 4 else "b", " ".join(rng.choice(WORDS) for _ in range(6)),
                    1_700_000_000 + i * 3600 if i % 3 == 0 else None, i)
        m.importance = round(rng.random(), 3)
        m.memory_type = rng.choice(["episodic", "semantic", "procedural"])
        m.tags = rng.sample(["x", "y", "z"], rng.randint(0, 2))
        m.session_id = f"s{i % 5}" if i % 2 else None
        m.access_count = rng.randint(0, 3)
        m.expires_at = 1500 if i % 17 == 0 else None  # expired at now=2000
        rows.append(MemoryRow(m, vectors[i], f"h{i}"))
    try:
        for store in (sqlite, pg_store):
            fresh = [MemoryRow(dataclasses.replace(r.memory), r.vector, r.content_hash)
                     for r in rows]
            store.write(lambda tx, fresh=fresh: [tx.memories.insert(r) for r in fresh])
            gone = [r.memory.rowid for r in fresh[5:40:7] if r.memory.agent_id == "a"]
            store.write(lambda tx, gone=gone: tx.memories.delete("a", gone))
        now = 2000
        filters = [MemoryFilter(), MemoryFilter(memory_type="semantic"),
                   MemoryFilter(tags_any=["x"]), MemoryFilter(tags_all=["x", "y"]),
                   MemoryFilter(min_importance=0.3, max_importance=0.8),
                   MemoryFilter(session_id="s1"), MemoryFilter(since=1_700_000_000),
                   MemoryFilter(where=dsl.parse({"importance": {"$gt": 0.5}}))]

        def ask(store: Any) -> list[Any]:
            r = store.memories
            out: list[Any] = []
            for f in filters:
                out += [r.count("a", f, now), sorted(r.rowids("a", f, now)),
                        [m.id for m in r.newest("a", f, now, limit=7, offset=2)]]
                for sort in ("recent", "oldest", "importance", "accessed"):
                    page, stop = r.browse("a", f, now, sort=sort, limit=6, scan=20)
                    out.append(([m.id for m in page], stop))
                    if page:
                        last = page[-1]
                        value = {"recent": last.created_at, "oldest": last.created_at,
                                 "importance": last.importance,
                                 "accessed": last.last_accessed_at}[sort]
                        after = r.browse("a", f, now, sort=sort, limit=6,
                                         after=(value, last.rowid))[0]
                        out.append([m.id for m in after])
            anchors = sorted(r.rowids("a", MemoryFilter(), now))[:30]
            out += [sorted(r.session_adjacent("a", anchors, MemoryFilter(), now, after=2,
                                              before=1)),
                    r.importance_histogram("a", 10), r.importance_histogram(None, 4),
                    r.type_counts("a"), r.type_counts(None), r.created_range("a"),
                    r.created_histogram("a", 1000, 20, 8),
                    round(r.importance_stats("a", now)[1] or 0, 9),  # summed in any order
                    [m.id for m in r.wake_up("a", now, 5, 0.1, 3600.0)[0]],
                    [m.id for m in r.most_important("a", now, limit=5)],
                    r.same_text("a", rows[1].memory.content, rows[1].memory.memory_type, now),
                    r.session_previous("a", "s1", 60), r.rowids_by_id("a", ["m1", "m2", "m9"]),
                    sorted(r.by_rowids(range(1, 30), now)), r.ids([1, 2, 3]),
                    sorted(r.existing_ids("a", ["m1", "m4", "m8"])),
                    store.agents.memory_counts(),
                    {**(st := store.agents.stats("a", now)),
                     "avg_importance": round(st["avg_importance"], 4)},
                    store.agents.overview()]
            return out

        assert ask(pg_store) == ask(sqlite)
    finally:
        sqlite.close()


def test_lifecycle_graph_and_sessions_answer_as_sqlite(pg_store: PgStore, tmp_path: Path
                                                       ) -> None:
    """Decay, reinforcement, feedback, the trash, edges, entities, sessions and keys: the
    same writes into both backends leave the same state."""
    sqlite = open_store(tmp_path / "dakera.db", dimension=8, model_id="test-model")
    vectors = np.random.default_rng(5).random((30, 8), dtype=np.float32)
    policy = DecayPolicy()
    try:
        def run(store: Any) -> list[Any]:
            rows = [MemoryRow(_memory("a", f"Alice met Bob in Paris, note {i}", None, i),
                              vectors[i], f"h{i}") for i in range(30)]
            for r in rows:
                r.memory.session_id = "s1" if r.memory.created_at % 2 else None
            store.write(lambda tx: [tx.memories.insert(r) for r in rows])
            ids = [r.memory.rowid for r in rows]
            edges = [Edge(ids[i], ids[i + 1], "related_to", 0.5 + i / 100, 5000)
                     for i in range(0, 20, 2)] + [Edge(ids[3], ids[9], "links", 1.0, 5000, "x")]
            mention = Mention("person", "Alice", "alice", 0.9, 0, 5)
            now = 1000 + 7 * 24 * 3600
            session = Session(id="s2", agent_id="a", started_at=1000, last_activity_at=1000)

            def job(tx: Any) -> Any:
                tx.edges.add(edges)
                tx.edges.add([Edge(ids[0], ids[1], "related_to", 0.9, 6000)])  # stronger
                tx.edges.repoint([ids[9]], ids[10], ["links"])
                tx.entities.add([(ids[i], "a", mention) for i in range(0, 30, 3)])
                tx.entities.replace(ids[3], "a", [])
                tx.decay.reinforce({ids[1]: 2, ids[2]: 1}, now - 100, 0.2)
                changed = tx.decay.decay(ids[0], ids[-1], now, policy)
                fb = tx.feedback.apply("a", "m4", ids[4], "downvote", 0.5, now)
                tx.feedback.apply("a", "m5", ids[5], "flag", 1.0, now)
                tx.trash.put("a", "gone1", "m1", {"content": "x", "session_id": None}, now, 60)
                tx.sessions.start(session)
                states = tx.sessions.activity("a", {"s1", "s2", "s3"}, now, 3600)
                idle = tx.sessions.expire_idle(now + 7200, 3600)
                ended = tx.sessions.end("s3", now + 10, "done", 3600)
                tx.meta.set("k", {"v": [1, 2]})
                return changed, fb, states, sorted(idle), ended

            result = store.write(job)
            r = store
            return [result,
                    sorted((e.src, e.dst, e.edge_type, round(e.weight, 6), e.label)
                           for e in r.edges.incident(ids[:12], 3)),
                    [(e.src, e.dst) for e in r.edges.between(ids[:12], limit=5)],
                    sorted((a, b) for _, a, b in r.edges.of_agent("a", now)),
                    r.edges.count_of_agent("a"), r.edges.get(ids[0], ids[1], "related_to"),
                    r.entities.memories_with("a", "person", "alice", 3, count_upto=100),
                    r.entities.of_memory(ids[6]), r.entities.of_memory(ids[3]),
                    [(m.id, round(m.importance, 9), m.access_count)
                     for m in r.memories.newest("a", MemoryFilter(), now, limit=30)],
                    r.decay.state(ids[5]), r.feedback.history("a", "m4"),
                    r.feedback.counts("a"), r.trash.restorable("a", now),
                    r.sessions.newest("a", False, 10, 0), r.sessions.get("s1"),
                    r.meta.get("k"), r.decay.expired(now, 10)]

        assert run(pg_store) == run(sqlite)
    finally:
        sqlite.close()


def test_reindex_moves_the_database_to_another_model(database: str, tmp_path: Path) -> None:
    old = open_store(tmp_path, dimension=8, model_id="old-model", url=database)
    rows = [MemoryRow(_memory("a", f"text {i}", None, i), np.eye(8, dtype=np.float32)[i % 8],
                      f"h{i}", sentences=np.eye(8, dtype=np.float32)[:2] if i == 3 else None)
            for i in range(10)]
    old.write(lambda tx: [tx.memories.insert(r) for r in rows])
    assert len(old.memories.sentence_vectors(r.memory.rowid for r in rows)) == 1
    old.close()
    with psycopg.connect(database, application_name="dakera/99999"):  # a running server
        store = open_store(tmp_path, dimension=4, model_id="new-model", url=database,
                           check_model=False)
        with pytest.raises(DataDirError, match="stop every server"):
            store.write(lambda tx: tx.reindex.begin("new-model"))
    with psycopg.connect(database, autocommit=True) as admin:
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name "
                            "= 'dakera/99999'").fetchone() != (0,):  # the backend ends
            assert time.monotonic() < deadline
            time.sleep(0.05)
    store.write(lambda tx: tx.reindex.begin("new-model"))
    assert store.reindex.count_pending() == 10
    batch = store.reindex.pending(6)
    new = np.eye(4, dtype=np.float32)
    store.write(lambda tx: tx.reindex.stage([(r, new[r % 4], h, new[:3] if r == batch[0][0]
                                              else None) for r, _, h in batch]))
    assert store.reindex.count_pending() == 4  # resumable: the rest is still pending
    rest = store.reindex.pending(100)
    store.write(lambda tx: tx.reindex.stage([(r, new[r % 4], h, None) for r, _, h in rest]))
    assert store.write(lambda tx: tx.reindex.finish("new-model", 4)) == 10
    store.close()
    with pytest.raises(DataDirError, match="old-model"):
        open_store(tmp_path, dimension=8, model_id="old-model", url=database)
    moved = open_store(tmp_path, dimension=4, model_id="new-model", url=database)
    try:
        # the sentences staged with the new vectors, under the new model; the old ones gone
        kept = moved.memories.sentence_vectors(r.memory.rowid for r in rows)
        assert list(kept) == [batch[0][0]] and np.array_equal(kept[batch[0][0]], new[:3])
        search = moved.shared_indexes().find("a")
        assert search is not None
        labels, sims = search.search(new[1], 3)
        assert sims[0] == pytest.approx(1.0) and labels[0] % 4 == 1
    finally:
        moved.close()


def test_deduplication_across_servers(postgres: Postgres, tmp_path: Path) -> None:
    """The same fact stored at the same moment through two servers is kept once: a store
    holds its agent (an advisory lock) until it commits, so the other server's
    deduplication sees it."""
    url = postgres.new_database()
    services = [Service(Settings.from_env(env={}, data_dir=str(tmp_path / name),
                                          embedding_model="hash", decay_interval=0,
                                          database_url=url))
                for name in ("one", "two")]
    for svc in services:
        svc.start(wait=True)
    try:
        for round_no in range(5):
            text = f"The staging database runs on host number {round_no} with backups"
            start = threading.Barrier(6)

            def store(svc: Service, text: str = text, start: threading.Barrier = start
                      ) -> None:
                start.wait()
                svc.memories.store("dedup", text, memory_type="semantic")

            threads = [threading.Thread(target=store, args=(services[i % 2],))
                       for i in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        stored = services[0].parts().store.memories.newest("dedup", MemoryFilter(), 10**10,
                                                           limit=100)
        assert sorted(m.content for m in stored) == sorted(
            f"The staging database runs on host number {i} with backups" for i in range(5))
    finally:
        for svc in services:
            svc.close()


@pytest.mark.parametrize("distance", ["cosine", "dot_product", "euclidean"])
def test_namespaces_answer_as_sqlite(pg_store: PgStore, tmp_path: Path, distance: str) -> None:
    """Data namespaces: the same writes into both backends, the same answers (full text
    ranked as FTS5's bm25 over every namespace's documents; vector search with hnswlib's
    scores for the namespace's distance)."""
    from app.index import IndexRegistry

    sqlite = open_store(tmp_path / "dakera.db", dimension=8, model_id="test-model")
    vecs = np.random.default_rng(3).standard_normal((40, 4)).astype(np.float32)
    now = 1000
    try:
        def run(store: Any) -> list[Any]:
            rng = random.Random(3)
            for name in ("docs", "other"):
                store.write(lambda tx, name=name: tx.namespaces.create(Namespace(
                    name=name, dimension=None, distance=distance, created_at=now,
                    updated_at=now)))
                store.write(lambda tx, name=name: tx.namespaces.configure(
                    name, dimension=4, now=now))
            writes = [ItemWrite(id=f"i{i}", vector=vecs[i] if i % 5 else None,
                                metadata={"n": i, "kind": rng.choice(["a", "b"])},
                                text=(" ".join(rng.choice(WORDS) for _ in range(8))
                                      if i % 3 else None),
                                expires_at=500 if i == 7 else None)
                      for i in range(30)]
            store.write(lambda tx: tx.namespaces.upsert("docs", writes, now))
            store.write(lambda tx: tx.namespaces.upsert("other", [ItemWrite(
                id="o1", vector=vecs[35], text="garden garden party")], now))
            r = store.namespaces
            # Before any text is replaced or deleted: SQLite's FTS5 table (contentless_delete)
            # goes on counting deleted documents in its statistics, PostgreSQL does not.
            texts = [[(rowid, round(score, 4))
                      for rowid, score in r.fulltext("docs", words, None, now, 5)]
                     for words in (["garden"], ["bicycle", "garage"],
                                   ["party", "report", "monday"])]
            store.write(lambda tx: tx.namespaces.upsert("docs", [
                ItemWrite(id="i4", text="bicycle garage report"),
                ItemWrite(id="i8", metadata={"n": 80})], now + 1))
            r = store.namespaces
            gone = store.write(lambda tx: tx.namespaces.delete(
                "docs", [r.existing("docs", ["i10"])["i10"]]))
            unindexed = store.write(lambda tx: tx.namespaces.unindex_text("docs", ["i2", "i3"]))
            merged = store.write(lambda tx: tx.namespaces.merge_metadata(
                list(r.existing("docs", ["i1", "i2"]).values()),
                {"kind": None, "extra": {"x": 1}}, now + 2))
            where = dsl.parse({"kind": "a"})
            out: list[Any] = [gone, unindexed, merged,
                              [(n.name, n.dimension, n.distance) for n in r.all()],
                              r.stats("docs", now), r.count("docs", where, now),
                              sorted(r.rowids("docs", where, now)), r.size("docs"),
                              {k: (v.metadata, v.text) for k, v in
                               r.by_ids("docs", ["i1", "i4", "i8"], now).items()},
                              [(it.id, it.text) for it in r.page("docs", None, now, 0, 50)],
                              r.text_stats("docs", now), r.expired(now, 10), texts]
            labels, matrix = r.vectors("docs", where, now)
            order = np.argsort(labels)  # in no particular order on either backend
            out.append((labels[order].tolist(), np.round(matrix[order], 4).tolist()))
            shared = store.shared_indexes(namespaces=True)
            index = shared if shared is not None else IndexRegistry(
                store.namespace_vectors, tmp_path / "ns-indexes", "raw-vectors", 64,
                lambda fn: store.write(lambda tx: fn()))
            search = index.find("docs")
            assert search is not None
            found, scores = search.search(vecs[3], 6)
            out.append((found.tolist(), np.round(scores, 4).tolist(), len(search)))
            out.append(store.write(lambda tx: tx.namespaces.drop("other")))
            return out

        assert run(pg_store) == run(sqlite)
    finally:
        sqlite.close()


def test_sentence_vectors_follow_every_write_on_postgres(postgres: Postgres,
                                                         tmp_path: Path) -> None:
    """The best-sentence lever on PostgreSQL: the sentence vectors are written, replaced,
    merged, imported and deleted with their memory, and recall reads them."""
    from app.recall.sentences import sentences
    from tests.test_recall_sentences import LONG, OTHER, assert_fresh

    svc = Service(Settings.from_env(env={}, data_dir=str(tmp_path / "pg"),
                                    embedding_model="hash", decay_interval=0,
                                    database_url=postgres.new_database()))
    svc.start(wait=True)
    try:
        memory = svc.memories.store("a", LONG).memory
        svc.memories.store("a", OTHER)
        assert assert_fresh(svc, "a") == 1
        hit = svc.recall.recall("a", "went swimming in the lake with the kids",
                                routing="vector", top_k=1).hits[0]
        embed = svc.parts().embedder.embed
        best = float((embed(sentences(LONG)) @ embed(
            ["went swimming in the lake with the kids"], query=True)[0]).max())
        assert hit.memory.id == memory.id and hit.vector_score == pytest.approx(best, abs=1e-5)
        svc.memories.update("a", memory.id, content="Melanie: we baked bread on Sunday. "
                                                    "Then the kids painted the fence blue.")
        assert assert_fresh(svc, "a") == 1
        other = svc.memories.store("a", "Melanie: the kids painted the fence blue. It took "
                                        "all afternoon.").memory
        svc.consolidation.consolidate("a", memory_ids=[memory.id, other.id])
        assert assert_fresh(svc, "a") == 1
        data = b"".join(svc.transfer.export("a", "jsonl", include_vectors=True).chunks)
        path = tmp_path / "f.jsonl"
        path.write_bytes(data)
        job = svc.transfer.wait(svc.transfer.submit("b", path, None, owned=False)["job_id"], 60)
        assert job["imported"] == 2
        assert assert_fresh(svc, "b") == 1
        store = svc.parts().store.memories
        svc.memories.forget("a", memory_ids=[store.by_rowid(r).id for r in store.rowids(
            "a", MemoryFilter(), None)])
        assert assert_fresh(svc, "a") == 0
    finally:
        svc.close()
