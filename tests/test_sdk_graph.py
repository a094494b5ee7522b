"""The knowledge graph, entity extraction and consolidation through the SDK methods named
for them (§2.5, §2.6, §3.1), against a live server: the source tree and the binary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from dakera.exceptions import (
    DakeraError,
    FeatureNotAvailableError,
    NotFoundError,
    ValidationError,
)
from dakera.models import EdgeType

from tests.conftest import LiveServer

# live-server tests: the source tree and the binary; SQLite and PostgreSQL
pytestmark = [pytest.mark.both_targets, pytest.mark.both_backends]


def test_links_graph_and_paths(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "sdk-graph"
    sid = client.start_session(agent)["id"]
    old = client.store_memory(agent, "Alice's rent is $1,200 a month", session_id=sid)["id"]
    new = client.store_memory(agent, "Alice's rent is now $1,450 a month",
                              session_id=sid)["id"]
    far = client.store_memory(agent, "The cellist rehearses on Thursdays")["id"]

    link = client.memory_link(far, new, agent_id=agent, label="mentioned together")
    assert link.edge.edge_type == EdgeType.LINKED_BY and link.edge.weight == 1.0
    assert (link.from_id, link.to_id) == (far, new)
    with pytest.raises(DakeraError) as err:  # agent_id is required: 422
        client._request("POST", f"/v1/memories/{far}/links", data={"target_id": new})
    assert err.value.status_code == 422

    graph = client.memory_graph(new, depth=1)
    assert graph.root_id == new and {n.memory_id for n in graph.nodes} == {old, new, far}
    kinds = {(e.source_id, e.edge_type.value, e.target_id) for e in graph.edges}
    assert {(new, "related_to", old), (new, "supersedes", old), (old, "precedes", new),
            (far, "linked_by", new)} <= kinds
    root = next(n for n in graph.nodes if n.memory_id == new)
    assert root.depth == 0 and root.content_preview.startswith("Alice's rent is now")
    only = client.memory_graph(new, types=["supersedes"])
    assert {e.edge_type.value for e in only.edges} == {"supersedes"}
    assert client.memory_graph(new, depth=99).depth == 5  # capped

    path = client.memory_path(far, old)
    assert path.path[0] == far and path.path[-1] == old and path.hops == 2
    kg_path = client.knowledge_path(agent, old, far)
    assert kg_path.hop_count == 2 and kg_path.path[0] == old
    lonely = client.store_memory(agent, "An unconnected memory about volcanoes")["id"]
    with pytest.raises(NotFoundError):
        client.knowledge_path(agent, old, lonely)
    with pytest.raises(NotFoundError):
        client.memory_graph("mem_does_not_exist")

    query = client.knowledge_query(agent, edge_type="supersedes,linked_by")
    assert {e.edge_type.value for e in query.edges} == {"supersedes", "linked_by"}
    assert query.edge_count == 2 and query.node_count == 3
    rooted = client.knowledge_query(agent, root_id=far, max_depth=1)
    assert {(e.source_id, e.target_id) for e in rooted.edges} == {(far, new)}
    with pytest.raises(ValidationError):
        client.knowledge_query(agent, edge_type="friend_of")

    recalled = client.recall(agent, "how much is the rent now", top_k=1,
                             include_associated=True, associated_memories_depth=2)
    assert recalled.memories[0].id == new
    assoc = {m.id: m for m in recalled.associated_memories or []}
    assert old in assoc and assoc[old].depth == 1 and far in assoc


def test_exports(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "sdk-export"
    a = client.store_memory(agent, "Server <db-1> & its replica")["id"]
    b = client.store_memory(agent, "Backups of db-1 run nightly")["id"]
    client.memory_link(a, b, agent_id=agent, label="backup of")
    exported = client.knowledge_export(agent)
    assert exported.edge_count >= 1 and exported.node_count == 2
    assert any(e.source_id == a and e.target_id == b for e in exported.edges)
    agent_export = client.agent_graph_export(agent)
    assert agent_export.namespace == "_dakera_agent_sdk-export"
    assert agent_export.edge_count == exported.edge_count
    with live_server.http() as http:
        response = http.get("/v1/knowledge/export", params={"agent_id": agent,
                                                             "format": "graphml"})
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert {n.get("id") for n in root.findall(".//g:node", ns)} == {a, b}
    assert "Server <db-1> & its replica" in {
        d.text for d in root.findall(".//g:data[@key='content']", ns)}


def test_knowledge_graphs(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "sdk-kg"
    ids = [client.store_memory(agent, text, importance=0.5 + i / 10)["id"] for i, text in
           enumerate(["The cat sleeps on the sofa", "A cat naps on the couch",
                      "The quarterly tax report is due in April"])]
    seeded = client.knowledge_graph(agent, memory_id=ids[0], depth=2, min_similarity=0.5)
    assert {n["id"] for n in seeded["nodes"]} == {ids[0], ids[1]}
    assert seeded["edges"][0]["similarity"] >= 0.5 and "clusters" in seeded
    with pytest.raises(ValueError):
        client.knowledge_graph(agent)  # the SDK insists on a seed
    full = client.full_knowledge_graph(agent, max_nodes=10, min_similarity=0.5,
                                       cluster_threshold=0.5, content_preview_chars=5)
    assert full["stats"]["node_count"] == 3 and full["nodes"][0]["content_len"] > 5
    assert [set(c["memory_ids"]) for c in full["clusters"]] == [{ids[0], ids[1]}]
    client.store_memory("sdk-kg-2", "My cat sleeps on the sofa all afternoon")
    net = client.cross_agent_network(agent_ids=[agent, "sdk-kg-2"], min_similarity=0.5)
    assert net.stats.total_agents == 2 and net.edges
    assert {net.edges[0].source_agent, net.edges[0].target_agent} == {agent, "sdk-kg-2"}
    assert {a.agent_id for a in net.agents} == {agent, "sdk-kg-2"}


def test_entities(live_server: LiveServer) -> None:
    client = live_server.client()
    found = client.extract_entities("Dr. Priya Raman joined Acme Corp in Berlin on 3 March "
                                    "2024; mail priya@acme.io")
    got = {(e.entity_type, e.value) for e in found.entities}
    assert got == {("person", "Priya Raman"), ("org", "Acme Corp"), ("location", "Berlin"),
                   ("date", "3 March 2024"), ("email", "priya@acme.io")}
    assert all(0 < e.score <= 1 for e in found.entities)
    only = client.extract_entities("Deploy took 14 minutes on db-stage-02",
                                   entity_types=["number_with_unit", "identifier"])
    assert {e.value for e in only.entities} == {"14 minutes", "db-stage-02"}
    with pytest.raises(ValidationError):
        client.extract_entities("x", entity_types=["planet"])
    text = client.extract_text("Sam Okafor moved to Lisbon", provider="gliner")
    assert text.provider == "rules" and {e["value"] for e in text.entities} == {
        "Sam Okafor", "Lisbon"}
    with pytest.raises(FeatureNotAvailableError):
        client.extract_text("x", provider="openai")

    agent = "sdk-ner"
    ns = f"_dakera_agent_{agent}"
    config = client.get_namespace_entity_config(ns)
    assert config["extract_entities"] is True and "person" in config["entity_types"]
    assert client.configure_namespace_ner(ns, True, ["person", "location"])[
        "entity_types"] == ["person", "location"]
    mid = client.store_memory(agent, "Sam Okafor from Acme Corp moved to Lisbon")["id"]
    entities = client.memory_entities(mid)
    assert entities.memory_id == mid and entities.count == 2
    assert {(e.entity_type, e.value) for e in entities.entities} == {
        ("person", "Sam Okafor"), ("location", "Lisbon")}
    replaced = client.replace_namespace_ner_config(ns, False)
    assert replaced["extract_entities"] is False
    with pytest.raises(DakeraError) as err:
        client._request("PATCH", f"/v1/namespaces/{ns}/config",
                        data={"extract_entities": True, "gliner_threshold": 0.5})
    assert err.value.status_code == 422
    with pytest.raises(NotFoundError):
        client.memory_entities("mem_does_not_exist")


def test_consolidation_and_dedup(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "sdk-cons"
    a = client.store_memory(agent, "The office wifi is called Orbit", importance=0.4)["id"]
    b = client.store_memory(agent, "Its password rotates monthly", importance=0.7,
                            tags=["wifi"])["id"]
    out = client.consolidate(agent, memory_ids=[a, b], target_type="semantic")
    merged = out["consolidated_memory"]
    assert out["source_memory_ids"] == [a, b] and out["memories_removed"] == 2
    assert merged["content"] == "The office wifi is called Orbit. Its password rotates monthly."
    assert merged["memory_type"] == "semantic" and merged["importance"] == pytest.approx(0.7)
    trash = client.list_deduplicated(agent)
    assert {(m.id, m.kind, m.survivor_id) for m in trash.memories} == {
        (a, "consolidation", merged["id"]), (b, "consolidation", merged["id"])}
    assert client.restore_deduplicated(agent, a)["memory"]["content"] == (
        "The office wifi is called Orbit")
    with pytest.raises(ValueError):
        client.consolidate(agent, dry_run=True)  # the SDK refuses; the server has no dry run
    with pytest.raises(ValidationError):
        client._request("POST", "/v1/memory/consolidate",
                        data={"agent_id": agent, "memory_ids": [a, b], "dry_run": True})

    dup = "The standup moved to room 4"
    first = client.store_memory(agent, dup)["id"]
    second = client.store_memory(agent, dup)["id"]  # episodic: kept on store
    client.store_memory(agent, "The standup moved to room 5")  # another fact
    dry = client.deduplicate(agent, dry_run=True, threshold=0.9)
    assert dry["groups"] == [[first, second]] and dry["duplicates_merged"] == 0
    done = client.deduplicate(agent, threshold=0.9)
    assert done["duplicates_merged"] == 1 and done["removed_count"] == 1
    assert client.get_memory(agent, first)["content"] == dup
    with pytest.raises(NotFoundError):
        client.get_memory(agent, second)

    for _ in range(2):
        client.store_memory("sdk-dbscan", "Parking is behind building C", importance=0.5)
    config = client.patch_consolidation_config("sdk-dbscan", epsilon=0.05,
                                               soft_deprecation_days=7)
    assert config["epsilon"] == 0.05 and config["soft_deprecation_days"] == 7
    run = client.consolidate_agent("sdk-dbscan")
    assert run["clusters_found"] == 1 and run["memories_deprecated"] == 1
    log = client.get_consolidation_log("sdk-dbscan")
    assert log[0]["deprecated_ids"] == run["deprecated_ids"]

    with pytest.raises(FeatureNotAvailableError, match="language model"):
        client.summarize(agent, memory_ids=[first, merged["id"]])
    with pytest.raises(FeatureNotAvailableError, match="language model"):
        client.compress_agent(agent)


def test_autopilot(live_server: LiveServer) -> None:
    client = live_server.client()
    status = client.autopilot_status()
    assert status["enabled"] is False and status["config"]["dedup_mode"] == "off"
    updated = client.autopilot_update_config(dedup_mode="report", trash_retention_hours=48)
    assert updated["config"]["dedup_mode"] == "report"
    assert updated["config"]["trash_retention_hours"] == 48
    ran = client.autopilot_trigger("all")
    assert ran["dedup"]["mode"] == "report" and "consolidation" in ran
    with pytest.raises(ValidationError):
        client.autopilot_trigger("everything")
    with pytest.raises(ValidationError):
        client.autopilot_update_config(dedup_mode="sometimes")
    with live_server.http() as http:  # also under /admin
        assert http.get("/admin/autopilot/status").json()["config"]["dedup_mode"] == "report"
    client.autopilot_update_config(dedup_mode="off", trash_retention_hours=720)
