"""Namespaces, raw vectors, text, full-text and hybrid search through the real `dakera` SDK
against a live server (source tree and frozen binary), and the request shapes of
dakera-mcp's hybrid and full-text tools (§4)."""

from __future__ import annotations

from typing import Any

import pytest
from dakera import DakeraClient, DistanceMetric
from dakera.exceptions import AuthorizationError, DakeraError, NotFoundError, ValidationError

from tests.conftest import LiveServer

# live-server tests: the source tree and the binary; SQLite and PostgreSQL
pytestmark = [pytest.mark.both_targets, pytest.mark.both_backends]

DOCS = [
    ("d1", "The cat sat on the warm windowsill in the afternoon sun", "pets", 2019),
    ("d2", "Dogs love long walks in the park and playing fetch", "pets", 2021),
    ("d3", "Quarterly revenue grew by twelve percent thanks to new customers", "finance", 2022),
    ("d4", "The central bank raised interest rates to curb inflation", "finance", 2023),
    ("d5", "Sourdough bread needs a starter, flour, water and patience", "food", 2020),
]


def unit(i: int, dim: int = 8) -> list[float]:
    return [1.0 if j == i else 0.0 for j in range(dim)]


def test_namespace_lifecycle(live_server: LiveServer) -> None:
    c = live_server.client()
    info = c.create_namespace("lifecycle", dimensions=8, distance=DistanceMetric.EUCLIDEAN)
    assert info.name == "lifecycle" and info.dimensions == 8
    with pytest.raises(DakeraError) as conflict:
        c.create_namespace("lifecycle", dimensions=8)
    assert conflict.value.status_code == 409

    configured = c.configure_namespace("lifecycle", dimension=8,
                                       distance=DistanceMetric.COSINE)
    assert configured.created is False and configured.distance == DistanceMetric.COSINE
    made = c.configure_namespace("configured", dimension=4)
    assert made.created is True and made.dimension == 4
    with pytest.raises(ValidationError):
        c.configure_namespace("configured", dimension=5)  # a dimension is fixed

    kinds = {n.name: n.kind for n in c.list_namespaces()}
    assert kinds["lifecycle"] == "data" and kinds["configured"] == "data"
    got = c.get_namespace("lifecycle")
    assert got.dimensions == 8 and got.index_type == "hnsw" and got.kind == "data"
    stats = c.get_index_stats("lifecycle")
    assert stats.dimensions == 8 and stats.total_vectors == 0

    c.delete_namespace("configured")
    assert "configured" not in {n.name for n in c.list_namespaces()}
    with pytest.raises(NotFoundError):
        c.get_namespace("configured")


def test_vectors_with_filters(live_server: LiveServer) -> None:
    c = live_server.client()
    vectors = [{"id": f"v{i}", "values": unit(i % 8),
                "metadata": {"kind": "even" if i % 2 == 0 else "odd", "n": i,
                             "tags": ["a", "b"] if i < 3 else ["c"], "name": f"item-{i}"}}
               for i in range(12)]
    assert c.upsert("vec", vectors)["upserted_count"] == 12  # created by its first upsert
    assert c.get_namespace("vec").dimensions == 8

    top = c.query("vec", unit(3), top_k=2)
    assert {r.id for r in top.results} == {"v3", "v11"}
    assert top.results[0].score == pytest.approx(1.0, abs=1e-5)
    assert top.results[0].metadata["n"] in (3, 11)

    odd = c.query("vec", unit(0), top_k=12, filter={"kind": "odd", "n": {"$gte": 5}},
                  include_values=True)
    assert {r.id for r in odd.results} == {"v5", "v7", "v9", "v11"}
    assert all(len(r.values or []) == 8 for r in odd.results)
    none = c.query("vec", unit(0), top_k=5, include_metadata=False)
    assert all(r.metadata is None for r in none.results)

    logic = {"$or": [{"tags": {"$arrayContains": "a"}}, {"name": {"$regex": "^item-1[01]$"}}],
             "$not": {"n": {"$in": [1]}}}
    assert c.count_vectors("vec", filter=logic)["count"] == 4  # v0, v2, v10, v11
    assert c.count_vectors("vec")["count"] == 12

    batch = c.batch_query("vec", [{"vector": unit(1), "top_k": 1},
                                  {"vector": unit(2), "top_k": 3, "filter": {"n": 10}}])
    assert batch[0].results[0].id in ("v1", "v9")
    assert [r.id for r in batch[1].results] == ["v10"]

    updated = c.bulk_update_vectors("vec", {"kind": "even"}, {"reviewed": True})
    assert updated["updated"] == 6
    assert c.count_vectors("vec", filter={"reviewed": True})["count"] == 6

    assert c.delete("vec", ids=["v0", "v1", "nope"])["deleted_count"] == 2
    assert c.bulk_delete_vectors("vec", {"n": {"$gte": 10}})["deleted"] == 2
    assert c.delete("vec", filter={"name": {"$startsWith": "item-9"}})["deleted"] == 1
    assert c.count_vectors("vec")["count"] == 7

    page = c.export_vectors("vec", limit=5)
    rest = c.export_vectors("vec", cursor=page["next_cursor"], limit=5)
    ids = [v["id"] for v in page["vectors"] + rest["vectors"]]
    assert len(ids) == 7 and len(set(ids)) == 7 and rest["next_cursor"] is None


def test_distances(live_server: LiveServer) -> None:
    c = live_server.client()
    for name, distance in (("dist-dot", DistanceMetric.DOT_PRODUCT),
                           ("dist-l2", DistanceMetric.EUCLIDEAN)):
        c.create_namespace(name, dimensions=2, distance=distance)
        c.upsert(name, [{"id": "near", "values": [1.0, 0.0]},
                        {"id": "long", "values": [10.0, 10.0]}])
        results = c.query(name, [1.0, 0.1], top_k=2).results
        if distance == DistanceMetric.DOT_PRODUCT:  # the dot product favours length
            assert [r.id for r in results] == ["long", "near"]
            assert results[0].score == pytest.approx(11.0, rel=1e-4)
        else:  # 1 / (1 + distance)
            assert [r.id for r in results] == ["near", "long"]
            assert results[0].score == pytest.approx(1 / 1.1, rel=1e-4)


def test_bad_vectors_are_400_and_nothing_is_written(live_server: LiveServer) -> None:
    c = live_server.client()
    c.create_namespace("strict", dimensions=3)
    c.upsert("strict", [{"id": "ok", "values": [1, 2, 3]}])
    http = live_server.http()
    for values in ([1, 2], [1, 2, "x"], [1e39, 0, 0], [], [True, 1, 2]):
        r = http.post("/v1/namespaces/strict/vectors", json={"vectors": [
            {"id": "new", "values": [1, 1, 1]}, {"id": "bad", "values": values}]})
        assert r.status_code == 400, (values, r.text)
        assert r.json()["code"] in ("INVALID_REQUEST", "DIMENSION_MISMATCH", "EMPTY_VECTOR")
    r = http.post("/v1/namespaces/wide/vectors",
                  json={"vectors": [{"id": "w", "values": [0.5] * 4097}]})
    assert r.status_code == 400
    assert c.count_vectors("strict")["count"] == 1
    for bad in ({"n": {"$regex": "(a)\\1"}}, {"n": {"$gt": [1]}}, {"$foo": 1}, [1]):
        r = http.post("/v1/namespaces/strict/query", json={"vector": [1, 0, 0], "filter": bad})
        assert r.status_code == 400, (bad, r.text)
    r = http.post("/v1/namespaces/strict/query", json={"vector": [1, 0, 0],
                                                       "filter": {"n": {"$regex": "(x+x+)+y"}}})
    assert r.status_code == 200  # RE2: no catastrophic backtracking
    r = http.post("/v1/namespaces", json={"name": "no-dim"})
    assert r.status_code == 422


def test_text_fulltext_and_hybrid(live_server: LiveServer) -> None:
    c = live_server.client()
    up = c.upsert_text("texts", [{"id": i, "text": t, "metadata": {"topic": topic, "year": y}}
                                 for i, t, topic, y in DOCS])
    assert up.upserted_count == 5 and up.model.value == "minilm"

    found = c.query_text("texts", "monetary policy and borrowing costs", top_k=2)
    assert found.results[0].id == "d4" and found.results[0].text == DOCS[3][1]
    pets = c.query_text("texts", "animals", top_k=5, filter={"topic": "pets"})
    assert {r.id for r in pets.results} == {"d1", "d2"}
    batch = c.batch_query_text("texts", ["baking", "company earnings"], top_k=1,
                               filter={"year": {"$gte": 2020}})
    assert [r[0].id for r in batch.results] == ["d5", "d3"]

    # Full-text: English stemming ("walking" finds "walks"), filters, stats, delete.
    assert c.fulltext_search("texts", "walking dog")[0].id == "d2"
    hits = c.fulltext_search("texts", "rates", filter={"topic": {"$ne": "finance"}})
    assert hits == []
    c.index_documents("texts", [{"id": "d6", "text": "Walking the dog before breakfast",
                                 "metadata": {"topic": "pets", "year": 2024}}])
    stats = c.fulltext_stats("texts")
    assert stats.document_count == 6 and stats.unique_terms > 20 and stats.avg_doc_length > 4
    walking = {r.id for r in c.fulltext_search("texts", "walking", top_k=10)}
    assert walking == {"d2", "d6"}
    assert c.fulltext_delete("texts", ["d6"])["deleted_count"] == 1
    assert {r.id for r in c.fulltext_search("texts", "walking")} == {"d2"}

    # Hybrid: BM25 only without a vector; with one, fused; the weight moves the balance.
    bm25 = c.hybrid_search("texts", "inflation interest", top_k=3)
    assert bm25[0].id == "d4" and bm25[0].vector_score is None
    qvec = c.query_text("texts", "bread", top_k=1, include_vectors=True).results[0].vector
    assert qvec is not None and len(qvec) == 384
    fused = c.hybrid_search("texts", "inflation", vector=qvec, top_k=5, vector_weight=0.5)
    assert {fused[0].id, fused[1].id} == {"d4", "d5"}
    assert all(r.vector_score is not None for r in fused)
    vector_only = c.hybrid_search("texts", "inflation", vector=qvec, top_k=1,
                                  vector_weight=1.0)
    assert vector_only[0].id == "d5"
    filtered = c.hybrid_search("texts", "inflation", vector=qvec, top_k=5,
                               filter={"topic": "finance"})
    assert {r.id for r in filtered} <= {"d3", "d4"}


def test_agent_namespaces_are_views_of_memories(live_server: LiveServer) -> None:
    c = live_server.client()
    c.store_memory("nsagent", "Maria adopted a grey kitten named Pixel",
                   metadata={"source": "chat"})
    c.store_memory("nsagent", "The deploy pipeline failed on the staging cluster",
                   memory_type="semantic")
    kinds = {n.name: n.kind for n in c.list_namespaces()}
    assert kinds["_dakera_agent_nsagent"] == "agent"
    info = c.get_namespace("_dakera_agent_nsagent")
    assert info.vector_count == 2 and info.dimensions == 384

    hybrid = c.hybrid_search("_dakera_agent_nsagent", "kitten", top_k=2)
    assert "Pixel" in (hybrid[0].content or "")
    text = c.fulltext_search("_dakera_agent_nsagent", "pipeline",
                             filter={"memory_type": "semantic"})
    assert [r.content for r in text] == ["The deploy pipeline failed on the staging cluster"]
    assert c.fulltext_search("_dakera_agent_nsagent", "pipeline",
                             filter={"source": "chat"}) == []
    assert c.count_vectors("_dakera_agent_nsagent", filter={"source": "chat"})["count"] == 1
    by_text = c.query_text("_dakera_agent_nsagent", "a new pet cat", top_k=1)
    assert "Pixel" in (by_text.results[0].text or "")
    with pytest.raises(ValidationError):  # written through /v1/memory, not here
        c.upsert("_dakera_agent_nsagent", [{"id": "x", "values": [0.0] * 384}])


def mcp_post(server: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A request as dakera-mcp sends it (src/tools/fulltext.rs)."""
    r = server.http().post(path, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_mcp_hybrid_and_fulltext_request_shapes(live_server: LiveServer) -> None:
    c = live_server.client()
    c.upsert_text("mcp-docs", [{"id": i, "text": t, "metadata": {"topic": topic}}
                               for i, t, topic, _ in DOCS])
    qvec = c.query_text("mcp-docs", "pets", top_k=1, include_vectors=True).results[0].vector
    hybrid = mcp_post(live_server, "/v1/namespaces/mcp-docs/hybrid", {
        "vector": qvec, "text": "fetch in the park", "top_k": 3, "vector_weight": 0.3,
        "include_metadata": True, "include_vectors": False, "filter": {"topic": "pets"}})
    assert hybrid["results"][0]["id"] == "d2"
    assert {r["id"] for r in hybrid["results"]} <= {"d1", "d2"}
    assert all({"score", "vector_score", "text_score"} <= set(r) for r in hybrid["results"])
    # newer dakera-mcp: the vector is optional (BM25 only), older GO: query + alpha
    assert mcp_post(live_server, "/v1/namespaces/mcp-docs/hybrid", {
        "text": "sourdough", "top_k": 10, "vector_weight": 0.5})["results"][0]["id"] == "d5"
    assert mcp_post(live_server, "/v1/namespaces/mcp-docs/hybrid", {
        "query": "sourdough", "alpha": 0.0})["results"][0]["id"] == "d5"
    fulltext = mcp_post(live_server, "/v1/namespaces/mcp-docs/fulltext/search", {
        "query": "interest rates", "top_k": 10, "filter": {"topic": "finance"}})
    assert fulltext["results"][0]["id"] == "d4" and fulltext["results"][0]["content"]
    # ... and an agent's namespace, as the core profile uses it
    c.store_memory("mcpagent", "The office wifi password is on the fridge")
    agent = mcp_post(live_server, "/v1/namespaces/_dakera_agent_mcpagent/fulltext/search",
                     {"query": "wifi password", "top_k": 10})
    assert "wifi" in agent["results"][0]["content"]
    agent_hybrid = mcp_post(live_server, "/v1/namespaces/_dakera_agent_mcpagent/hybrid",
                            {"text": "internet access code", "top_k": 10,
                             "vector_weight": 0.5})
    assert "wifi" in agent_hybrid["results"][0]["content"]


def test_namespace_grants(live_server: LiveServer) -> None:
    """A key granted one namespace reads and writes it, and nothing of another; a read key
    writes nothing; deleting a namespace takes an admin key."""
    root = live_server.client()
    root.upsert("grant-y", [{"id": "y1", "values": unit(0, 4), "metadata": {"k": 1}}])
    root.index_documents("grant-y", [{"id": "t1", "text": "the other team's notes"}])
    made = root.create_key("x-writer", scope="write", namespaces=["grant-x"])
    writer = DakeraClient(base_url=live_server.url, api_key=made["key"], max_retries=1)
    assert writer.upsert("grant-x", [{"id": "x1", "values": unit(1, 4)}])["upserted_count"] == 1
    assert writer.query("grant-x", unit(1, 4), top_k=1).results[0].id == "x1"
    assert writer.get_namespace("grant-x").dimensions == 4
    assert [n.name for n in writer.list_namespaces()] == ["grant-x"]

    refused = {
        "query": lambda: writer.query("grant-y", unit(0, 4)),
        "upsert": lambda: writer.upsert("grant-y", [{"id": "y2", "values": unit(2, 4)}]),
        "get": lambda: writer.get_namespace("grant-y"),
        "count": lambda: writer.count_vectors("grant-y"),
        "delete": lambda: writer.delete("grant-y", ids=["y1"]),
        "bulk-update": lambda: writer.bulk_update_vectors("grant-y", {"k": 1}, {"k": 2}),
        "export": lambda: writer.export_vectors("grant-y"),
        "query-text": lambda: writer.query_text("grant-y", "notes"),
        "upsert-text": lambda: writer.upsert_text("grant-y", [{"id": "t2", "text": "mine"}]),
        "fulltext": lambda: writer.fulltext_search("grant-y", "notes"),
        "hybrid": lambda: writer.hybrid_search("grant-y", "notes"),
        "create": lambda: writer.create_namespace("grant-z", dimensions=4),
        "agent namespace": lambda: writer.query("_dakera_agent_someone", unit(0, 4)),
    }
    for name, call in refused.items():
        with pytest.raises(AuthorizationError) as denied:
            call()
        assert denied.value.code is not None, name
        assert denied.value.code.value == "NAMESPACE_ACCESS_DENIED", name
    with pytest.raises(AuthorizationError) as scope:  # deleting a namespace needs admin
        writer.delete_namespace("grant-x")
    assert scope.value.code is not None and scope.value.code.value == "INSUFFICIENT_SCOPE"

    reader = DakeraClient(base_url=live_server.url, max_retries=1, api_key=root.create_key(
        "x-reader", scope="read", namespaces=["grant-x"])["key"])
    assert reader.query("grant-x", unit(1, 4), top_k=1).results[0].id == "x1"
    with pytest.raises(AuthorizationError):
        reader.upsert("grant-x", [{"id": "x2", "values": unit(2, 4)}])
    # nothing of grant-y changed, nothing new was made
    assert root.count_vectors("grant-y")["count"] == 1
    assert "grant-z" not in {n.name for n in root.list_namespaces()}
    assert root.query("grant-y", unit(0, 4), top_k=1).results[0].metadata == {"k": 1}

    # index statistics of every namespace (admin), filtered by the key's grants
    stats = root.index_stats()["namespaces"]
    assert stats["grant-y"]["vector_count"] == 1 and stats["grant-x"]["dimension"] == 4
    with pytest.raises(AuthorizationError):
        writer.index_stats()
    admin = DakeraClient(base_url=live_server.url, max_retries=1, api_key=root.create_key(
        "x-admin", scope="admin", namespaces=["grant-x"])["key"])
    assert list(admin.index_stats()["namespaces"]) == ["grant-x"]
