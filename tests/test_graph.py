"""The knowledge graph in the service: edges made at store time (related_to, supersedes,
shares_entity, precedes), explicit links, edges dying with their memories, bounded walks,
paths, exports, recall's associated memories and the entity extraction config."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from app.errors import NotFoundError, UnprocessableError, ValidationError
from app.models import Edge
from app.service import Service
from app.service.linking import entity_weight, supersedes
from app.service.traverse import Limits, neighbourhood
from tests.conftest import MakeService

Edges = set[tuple[str, str, str]]


def edges_of(svc: Service, memory_id: str, agent: str, depth: int = 1) -> Edges:
    graph = svc.graph.memory_graph(memory_id, depth, agent)
    return {(e["from_id"], e["edge_type"], e["to_id"]) for e in graph["edges"]}


def table_counts(svc: Service) -> tuple[int, int]:
    store: Any = svc.parts().store
    conn = store.reader()
    return (conn.execute("SELECT count(*) FROM memory_edges").fetchone()[0],
            conn.execute("SELECT count(*) FROM memory_entities").fetchone()[0])


# -- the rules ------------------------------------------------------------------------------

@pytest.mark.parametrize(("newer", "older"), [
    ("Alice's rent is now $1,450 a month", "Alice's rent is $1,200 a month"),
    ("The team meeting moved to March 10", "The team meeting is on March 3"),
    ("Our build takes 14 minutes on the CI runner", "Our build takes 9 minutes on the CI runner"),
    ("Priya's flight lands at 18:40 on 2024-05-02", "Priya's flight lands at 17:05 on 2024-05-02"),
])
def test_supersedes_is_the_same_statement_with_other_values(newer: str, older: str) -> None:
    assert supersedes(newer, older)


@pytest.mark.parametrize(("newer", "older"), [
    # identifiers name another thing: two orders, two tickets
    ("Order 4418 shipped to Lisbon on Monday", "Order 4417 shipped to Lisbon on Monday"),
    ("Ticket OPS-4522 is assigned to Sam", "Ticket OPS-4521 is assigned to Sam"),
    # another subject, not another value
    ("Bob's rent is $1,450 a month", "Alice's rent is $1,200 a month"),
    # the same values: a repeat, not an update
    ("Alice's rent is $1,200 a month", "Alice's rent is $1,200 a month"),
    # no value to update
    ("Alice prefers dark mode", "Alice prefers light mode"),
    # too little in common to be the same fact
    ("Room 5", "Room 6"),
    # several values change: another fact of the same form, not an update
    ("Batch fact 22: shelf 5 holds box 22", "Batch fact 5: shelf 5 holds box 5"),
    ("The meeting is at 3 pm in the big room", "Lunch is at 1 pm on Friday"),
])
def test_supersedes_is_precise_rather_than_greedy(newer: str, older: str) -> None:
    assert not supersedes(newer, older)


def test_entity_weights() -> None:
    assert entity_weight("identifier", "ops-4521") == 0.9
    assert entity_weight("person", "priya raman") == 0.8
    assert entity_weight("date", "2024-03-05") == 0.6
    assert entity_weight("date", "2024-03") == entity_weight("date", "--03-05") == 0.4
    assert entity_weight("date", "2024") == 0.0  # a bare year tells nothing apart
    assert entity_weight("number_with_unit", "20 %") == 0.0


# -- edges at store time ----------------------------------------------------------------------

def test_store_links_by_meaning_values_entities_and_session(service: Service) -> None:
    agent = "kg"
    sid = service.sessions.start(agent).id
    store = service.memories.store
    old = store(agent, "Alice's rent is $1,200 a month", session_id=sid).memory
    new = store(agent, "Alice's rent is now $1,450 a month", session_id=sid).memory
    ticket = store(agent, "Bob from Acme Corp opened ticket OPS-4521").memory
    closed = store(agent, "Ticket OPS-4521 was closed by Priya Raman").memory
    edges = edges_of(service, new.id, agent)
    assert (new.id, "related_to", old.id) in edges
    assert (new.id, "supersedes", old.id) in edges
    assert (old.id, "precedes", new.id) in edges
    assert (old.id, "supersedes", new.id) not in edges
    assert (closed.id, "shares_entity", ticket.id) in edges_of(service, closed.id, agent)
    assert {e["value"] for e in service.extraction.memory_entities(closed.id)["entities"]} \
        >= {"OPS-4521", "Priya Raman"}
    # the two tickets are not similar in meaning: no related_to between them
    assert (closed.id, "related_to", ticket.id) not in edges_of(service, closed.id, agent)
    graph = service.graph.memory_graph(new.id, 1)
    weights = {e["edge_type"]: e["weight"] for e in graph["edges"]}
    assert weights["related_to"] >= 0.85 and weights["precedes"] == 0.5


def test_a_batch_links_within_itself(make_service: MakeService) -> None:
    svc = make_service()  # the hash embedder: identical texts have cosine 1
    sid = svc.sessions.start("b").id
    out = svc.memories.store_batch("b", [
        {"content": "the deploy key lives in vault path ops/deploy", "session_id": sid},
        {"content": "the deploy key lives in vault path ops/deploy", "session_id": sid},
        {"content": "unrelated words entirely here", "session_id": sid}])
    a, b, c = (m.id for m in out.memories)
    edges = edges_of(svc, b, "b")
    assert (b, "related_to", a) in edges  # met earlier in the same transaction
    assert (a, "precedes", b) in edges and (b, "precedes", c) in edges_of(svc, c, "b")
    # A batch of near-identical memories stays linear: each links to its 5 nearest only.
    same = svc.memories.store_batch("many", [{"content": "the same words each time"}] * 300)
    last = same.memories[-1].id
    out_edges = [e for e in edges_of(svc, last, "many") if e[0] == last]
    assert len(out_edges) == 5 and {e[1] for e in out_edges} == {"related_to"}
    assert svc.graph.query("many", limit=1000)["edge_count"] <= 5 * 300


def test_graph_and_extraction_can_be_turned_off(make_service: MakeService) -> None:
    svc = make_service(graph_on_store=False, extract_entities=False)
    sid = svc.sessions.start("off").id
    first = svc.memories.store("off", "Call Priya Raman about OPS-4521", session_id=sid).memory
    svc.memories.store("off", "Call Priya Raman about OPS-4521", session_id=sid)
    assert table_counts(svc) == (0, 0)
    # extraction off: the entities are found on demand and not kept
    found = svc.extraction.memory_entities(first.id)
    assert not found["extracted_at_store"] and found["count"] >= 1
    assert table_counts(svc) == (0, 0)


def test_namespace_config_decides_extraction(hash_service: Service) -> None:
    svc = hash_service
    ns = "_dakera_agent_cfg"
    assert svc.policies.ner(ns)["extract_entities"] is True
    assert "identifier" in svc.policies.ner(ns)["entity_types"]
    got = svc.policies.set_ner(ns, {"extract_entities": True,
                                    "entity_types": ["person", "organization"]}, replace=False)
    assert got == {"namespace": ns, "extract_entities": True, "entity_types": ["person", "org"]}
    m = svc.memories.store("cfg", "Priya Raman joined Acme Corp in Berlin").memory
    assert {e["entity_type"] for e in svc.extraction.memory_entities(m.id)["entities"]} == {
        "person", "org"}
    # PATCH merges; PUT replaces (no entity_types: the defaults again)
    assert svc.policies.set_ner(ns, {"extract_entities": False}, replace=False)[
        "entity_types"] == ["person", "org"]
    replaced = svc.policies.set_ner(ns, {"extract_entities": True}, replace=True)
    assert "location" in replaced["entity_types"]
    with pytest.raises(UnprocessableError, match="unknown field"):
        svc.policies.set_ner(ns, {"extract_entities": True, "provider": "x"}, replace=False)
    with pytest.raises(ValidationError, match="unknown entity type 'planet'"):
        svc.policies.set_ner(ns, {"entity_types": ["planet"]}, replace=False)
    with pytest.raises(NotFoundError):
        svc.policies.ner("not-an-agent-namespace")


# -- edges die with their memories ------------------------------------------------------------

def test_edges_and_entities_go_with_their_memories(make_service: MakeService) -> None:
    svc = make_service()
    sid = svc.sessions.start("del").id
    ids = [svc.memories.store("del", f"Ticket OPS-{n} for Priya Raman", session_id=sid
                              ).memory.id for n in (1, 2, 3)]
    svc.graph.link(ids[0], ids[2], "del", "same customer")
    edges, entities = table_counts(svc)
    assert edges >= 3 and entities == 6
    svc.memories.forget("del", memory_ids=[ids[1]])
    left = edges_of(svc, ids[0], "del", depth=2)
    assert all(ids[1] not in (a, b) for a, _, b in left) and left
    svc.memories.batch_forget("del", {"tags": []})  # every memory
    assert table_counts(svc) == (0, 0)


def test_update_renews_entities_and_derived_edges(make_service: MakeService) -> None:
    svc = make_service()
    m = svc.memories.store("up", "Meet Priya Raman in Lisbon").memory
    other = svc.memories.store("up", "Lisbon office moves to a new floor").memory
    assert (other.id, "shares_entity", m.id) in edges_of(svc, m.id, "up")
    svc.graph.link(m.id, other.id, "up")
    svc.memories.update("up", m.id, content="Meet Sam Okafor in Porto")
    values = {e["value"] for e in svc.extraction.memory_entities(m.id)["entities"]}
    assert values == {"Sam Okafor", "Porto"}
    edges = edges_of(svc, m.id, "up")
    assert (m.id, "linked_by", other.id) in edges  # explicit links stay
    assert (other.id, "shares_entity", m.id) in edges  # made by `other`: kept


# -- links, walks, paths ----------------------------------------------------------------------

def test_links_and_their_refusals(hash_service: Service) -> None:
    svc = hash_service
    a = svc.memories.store("ln", "first note").memory
    b = svc.memories.store("ln", "second note").memory
    out = svc.graph.link(a.id, b.id, "ln", "follows")
    assert out["edge"]["edge_type"] == "linked_by" and out["edge"]["weight"] == 1.0
    assert out["from_id"] == a.id and out["to_id"] == b.id and out["label"] == "follows"
    again = svc.graph.link(a.id, b.id, "ln", "caused")
    assert again["label"] == "caused"
    assert len([e for e in edges_of(svc, a.id, "ln") if e[1] == "linked_by"]) == 1
    with pytest.raises(UnprocessableError):
        svc.graph.link(a.id, b.id, None)
    with pytest.raises(ValidationError, match="itself"):
        svc.graph.link(a.id, a.id, "ln")
    with pytest.raises(NotFoundError):
        svc.graph.link(a.id, "mem_nope", "ln")
    other = svc.memories.store("ln2", "someone else's").memory
    with pytest.raises(NotFoundError):  # both must be the agent's
        svc.graph.link(a.id, other.id, "ln")


def test_paths(hash_service: Service) -> None:
    svc = hash_service
    ids = [svc.memories.store("p", f"note number {w}").memory.id
           for w in ("one", "two", "three", "four", "five")]
    svc.graph.link(ids[0], ids[1], "p")
    svc.graph.link(ids[1], ids[2], "p")
    svc.graph.link(ids[3], ids[2], "p")  # direction does not matter to a path
    path = svc.graph.memory_path(ids[0], ids[3])
    assert path["path"] == ids[:4] and path["hop_count"] == 3 == len(path["edges"])
    assert svc.graph.knowledge_path("p", ids[3], ids[0])["path"] == ids[3::-1]
    assert svc.graph.memory_path(ids[1], ids[1])["hop_count"] == 0
    with pytest.raises(NotFoundError, match="no path"):
        svc.graph.memory_path(ids[0], ids[4])


def test_walks_are_bounded(make_service: MakeService) -> None:
    """A hub with far more edges than a walk reads: per-node and node caps hold, and the
    answer says it was cut short."""
    svc = make_service(graph_on_store=False)
    hub = svc.memories.store("hub", "the hub").memory
    spokes = svc.memories.store_batch("hub", [{"content": f"spoke {i}"} for i in range(300)])
    rowids = [m.rowid for m in spokes.memories]
    svc.parts().store.write(lambda tx: tx.edges.add(
        [Edge(r, hub.rowid, "linked_by", 0.5 + i / 1000, 1) for i, r in enumerate(rowids)]))
    walk = neighbourhood(svc.parts().store.edges, lambda r: svc.parts().store.memories.by_rowids(
        r, svc.now()), [hub], 2, Limits(per_node=20, max_nodes=1000))
    assert len(walk.nodes) == 21  # the hub and its 20 strongest edges
    assert min(m.rowid for m, d in walk.nodes.values() if d == 1) == rowids[280]
    graph = svc.graph.memory_graph(hub.id, 5)
    assert graph["node_count"] == 51 and graph["depth"] == 5  # 50 per node by default
    capped = neighbourhood(svc.parts().store.edges, lambda r: svc.parts().store.memories.by_rowids(
        r, svc.now()), [hub], 1, Limits(per_node=100, max_nodes=10))
    assert len(capped.nodes) == 10 and capped.truncated
    with pytest.raises(ValidationError):
        svc.graph.memory_graph(hub.id, "deep")


def test_query_and_exports(hash_service: Service) -> None:
    svc = hash_service
    sid = svc.sessions.start("ex").id
    ids = [svc.memories.store("ex", f"fact <{i}> & more", session_id=sid).memory.id
           for i in range(4)]
    svc.graph.link(ids[0], ids[3], "ex", "see <also>")
    everything = svc.graph.query("ex")
    assert everything["edge_count"] == 4 and everything["node_count"] == 4
    links = svc.graph.query("ex", edge_type="linked_by")
    assert [(e["from_id"], e["to_id"]) for e in links["edges"]] == [(ids[0], ids[3])]
    near = svc.graph.query("ex", root_id=ids[0], max_depth=1, edge_type="precedes,linked_by")
    assert {(e["from_id"], e["to_id"]) for e in near["edges"]} == {(ids[0], ids[1]),
                                                                  (ids[0], ids[3])}
    assert svc.graph.query("ex", limit=2)["truncated"]
    assert svc.graph.query("ex", min_weight=0.9)["edge_count"] == 1
    with pytest.raises(ValidationError, match="unknown edge type"):
        svc.graph.query("ex", edge_type="friends")
    exported = svc.graph.export("ex")
    assert exported["edge_count"] == 4 and exported["node_count"] == 4
    assert svc.graph.agent_export("ex")["namespace"] == "_dakera_agent_ex"
    root = ET.fromstring(svc.graph.export("ex", "graphml"))
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert len(root.findall(".//g:node", ns)) == 4 and len(root.findall(".//g:edge", ns)) == 4
    contents = {d.text for d in root.findall(".//g:node/g:data[@key='content']", ns)}
    assert "fact <0> & more" in contents
    assert "see <also>" in {d.text for d in root.findall(".//g:edge/g:data", ns)}
    # what an export carries restores the graph (for imports)
    edges = svc.graph.edges_of("ex")
    svc.memories.forget("ex", memory_ids=[ids[3]])
    assert svc.graph.restore_edges("ex", edges) == 2  # the two to the forgotten one skipped


def test_recall_returns_graph_neighbours(service: Service) -> None:
    agent = "assoc"
    rent = service.memories.store(agent, "Alice's rent is $1,200 a month").memory
    landlord = service.memories.store(agent, "The landlord of the flat is Mr Okafor").memory
    service.memories.store(agent, "Alice plays the cello on Sundays")
    service.graph.link(rent.id, landlord.id, agent)
    plain = service.recall.recall(agent, "how much is the rent", top_k=1)
    assert plain.associated is None
    out = service.recall.recall(agent, "how much is the rent", top_k=1, include_associated=True)
    assert [h.memory.id for h in out.hits] == [rent.id]
    assert out.associated is not None
    assoc = {a.memory.id: a for a in out.associated}
    assert landlord.id in assoc
    item = assoc[landlord.id].to_dict()
    assert item["depth"] == 1 and item["edge_type"] == "linked_by"
    assert item["associated_with"] == rent.id and 0 < item["score"] <= 1
    assert service.recall.recall(agent, "rent", top_k=1, include_associated=True,
                                 associated_memories_min_weight=1.0).associated
    for bad in ({"associated_memories_cap": 11}, {"associated_memories_depth": 4},
                {"associated_memories_min_weight": 2}):
        with pytest.raises(ValidationError):
            service.recall.recall(agent, "rent", include_associated=True, **bad)


def test_similarity_graphs(service: Service) -> None:
    agent = "sim"
    texts = ["The cat sleeps on the sofa", "A cat naps on the couch", "Cats love sleeping",
             "The quarterly tax report is due in April", "Taxes for the quarter are due"]
    ids = [service.memories.store(agent, t, importance=0.5 + i / 10).memory.id
           for i, t in enumerate(texts)]
    seeded = service.knowledge.knowledge_graph(agent, ids[0], depth=2, min_similarity=0.5)
    found = {n["id"] for n in seeded["nodes"]}
    assert {ids[0], ids[1]} <= found and ids[3] not in found
    assert all(e["similarity"] >= 0.5 or e["relationship"] != "related_to"
               for e in seeded["edges"])
    full = service.knowledge.full_graph(agent, min_similarity=0.5, cluster_threshold=0.5,
                                        content_preview_chars=10)
    assert full["stats"]["node_count"] == 5 and all(len(n["content"]) <= 10
                                                   for n in full["nodes"])
    groups = [set(c["memory_ids"]) for c in full["clusters"]]
    assert {ids[0], ids[1]} <= groups[0] or {ids[0], ids[1]} <= groups[-1]
    assert not any({ids[0], ids[3]} <= g for g in groups)
    service.memories.store("sim2", "My cat sleeps on the sofa all day")
    net = service.knowledge.cross_agent(agent_ids=[agent, "sim2"], min_similarity=0.5)
    assert net["stats"]["total_agents"] == 2 and net["edges"]
    assert all(e["source_agent"] != e["target_agent"] for e in net["edges"])
    assert net["edges"][0]["similarity"] == max(e["similarity"] for e in net["edges"])


def test_the_settings_know_every_entity_type() -> None:
    import typing

    from app.config import EntityType
    from app.extract import ENTITY_TYPES

    assert set(typing.get_args(EntityType)) == set(ENTITY_TYPES)
