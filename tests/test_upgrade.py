"""A data dir written by an earlier release opens, migrates and answers.

`tests/data/dakera-ea5234d.db.gz` is the database a server at commit ea5234d (schema 2, the
last release before the service was cut into parts) wrote through its own HTTP API: four
memories of two agents, one session, tags, metadata and an importance, then a clean stop.
No index files come with it: they are caches, rebuilt from the database.
"""

from __future__ import annotations

import gzip
import shutil

import pytest

from app.store.db import connect
from app.store.migrations import MIGRATIONS
from tests.conftest import ROOT, LiveServer

pytestmark = pytest.mark.both_targets  # live-server tests: the source tree and the binary

OLD = ROOT / "tests" / "data" / "dakera-ea5234d.db.gz"


def test_a_schema_2_data_dir_opens_migrates_and_answers(fresh_server: LiveServer) -> None:
    fresh_server.data_dir.mkdir(parents=True)
    with gzip.open(OLD) as src, (fresh_server.data_dir / "dakera.db").open("wb") as dst:
        shutil.copyfileobj(src, dst)
    conn = connect(fresh_server.data_dir / "dakera.db", readonly=True)
    try:  # its vectors, in the vec0 table of schema 2
        old_vectors = dict(conn.execute("SELECT rowid, embedding FROM memory_vectors"))
    finally:
        conn.close()
    assert len(old_vectors) == 4
    fresh_server.start()
    client = fresh_server.client()

    hits = client.recall("caroline", "Which support group did Caroline go to?", top_k=3)
    assert hits.memories[0].content.startswith("Caroline: I went to the LGBTQ support group")
    first = client.get_memory("caroline", hits.memories[0].id)
    assert first["tags"] == ["support"] and first["importance"] == pytest.approx(0.8, abs=0.05)
    assert first["session_id"] == "s1"
    agents = {a["agent_id"]: a["memory_count"] for a in client.list_agents()}
    assert agents == {"caroline": 3, "ops": 1}
    # identifiers and BM25 over the rebuilt text index
    ops = client.recall("ops", "db-stage-26", top_k=1)
    assert "db-stage-26" in ops.memories[0].content
    # new sections work over old data: the graph, namespaces, a write
    r = fresh_server.http().get("/v1/knowledge/export", params={"agent_id": "caroline"})
    assert r.status_code == 200, r.text
    stored = client.store_memory("caroline", "Caroline: the adoption interview is on Friday.")
    assert client.get_memory("caroline", stored["id"])["content"].endswith("on Friday.")
    assert fresh_server.stop() == 0

    conn = connect(fresh_server.data_dir / "dakera.db", readonly=True)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        table = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'memory_vectors'"
                             ).fetchone()[0]
        vectors = dict(conn.execute("SELECT rowid, embedding FROM memory_vectors"))
    finally:
        conn.close()
    assert version == len(MIGRATIONS)
    # migration 10 moved the vectors, unchanged, out of vec0 into a plain table
    assert "vec0" not in table
    assert {rowid: vectors[rowid] for rowid in old_vectors} == old_vectors
