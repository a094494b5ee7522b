"""The core flows through the real `dakera` SDK against a live server on loopback."""

from __future__ import annotations

import time

import pytest
from dakera import DakeraClient
from dakera.exceptions import AuthenticationError, NotFoundError, ValidationError

from tests.conftest import LiveServer

# live-server tests: the source tree and the binary; SQLite and PostgreSQL
pytestmark = [pytest.mark.both_targets, pytest.mark.both_backends]

# One long memory names ticket 4417-XQ-93; short ones name look-alike tickets, which the
# embedding ranks above it (the test checks that): only the exact token tells them apart.
ORDERS = [
    "Jenny phoned on Tuesday: the blender she bought arrived with a cracked jug, so we sent "
    "a replacement under ticket 4417-XQ-93 and she was happy.",
    "Ticket 4417-XQ-39",
    "Ticket 4471-XQ-93",
    "Ticket 4417-QX-93",
    "Ticket 1447-XQ-93",
    "Ticket 4417-XO-93",
]
FACTS = [
    "The user prefers dark mode in every editor they use.",
    "Bob goes hiking in the Alps every August.",
    "The staging database runs on db-stage-02 with nightly backups.",
    "Alice is allergic to peanuts and shellfish.",
]


def ids_of(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.id for m in result.memories]


def test_store_then_recall_by_meaning_and_by_keyword(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "agent-recall"
    stored = {text: client.store_memory(agent, text)["id"] for text in FACTS + ORDERS}

    # A paraphrase sharing no words with the stored text: found by meaning.
    meaning = client.recall(agent, "Which colour scheme does this person like for coding?",
                            top_k=3)
    assert ids_of(meaning)[0] == stored[FACTS[0]]

    # An exact rare token: found by BM25 even where the embedding cannot tell ids apart.
    target = stored[ORDERS[0]]
    keyword = client.recall(agent, "4417-XQ-93", top_k=3)
    assert ids_of(keyword)[0] == target
    vector_only = client.recall(agent, "4417-XQ-93", top_k=1, routing="vector")
    assert ids_of(vector_only) != [target], "the test corpus must defeat vector search alone"

    first = keyword.memories[0]
    assert first.content == ORDERS[0]
    assert first.rank_score is not None and first.text_score is not None
    scores = [m.rank_score for m in keyword.memories]
    assert scores == sorted(scores, reverse=True)


def test_get_update_forget(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "agent-crud"
    memory = client.store_memory(agent, "The office wifi password is tangerine-42",
                                 importance=0.9, tags=["office"], metadata={"source": "chat"})
    mid = memory["id"]

    got = client.get_memory(agent, mid)
    assert got["content"] == "The office wifi password is tangerine-42"
    assert got["importance"] == pytest.approx(0.9)
    assert got["tags"] == ["office"] and got["metadata"] == {"source": "chat"}
    assert client.get_memory(None, mid)["id"] == mid  # agent_id is optional on get

    updated = client.update_memory(agent, mid, content="The office wifi password is "
                                   "blueberry-77", tags=["office", "secrets"])
    assert updated["content"].endswith("blueberry-77")
    assert updated["tags"] == ["office", "secrets"]
    hits = client.recall(agent, "blueberry-77", top_k=1)
    assert ids_of(hits) == [mid] and hits.memories[0].content.endswith("blueberry-77")
    assert client.recall(agent, "tangerine-42", top_k=5, routing="bm25").memories == []

    assert client.forget(agent, mid)["deleted_count"] == 1
    assert mid not in ids_of(client.recall(agent, "wifi password", top_k=5))
    with pytest.raises(NotFoundError):
        client.get_memory(agent, mid)


def test_recall_reinforces_returned_memories(live_server: LiveServer) -> None:
    client = live_server.client()
    mid = client.store_memory("agent-access", "Carol's birthday is on the 3rd of May")["id"]
    hits = client.recall("agent-access", "When is Carol's birthday?", top_k=1)
    assert hits.memories[0].id == mid
    # Access statistics are written in the background, within about a second.
    deadline = time.monotonic() + 10
    while client.get_memory("agent-access", mid)["access_count"] == 0:
        assert time.monotonic() < deadline, "access count never written"
        time.sleep(0.1)
    assert client.get_memory("agent-access", mid)["access_count"] == 1


def test_errors(live_server: LiveServer) -> None:
    with pytest.raises(AuthenticationError):
        live_server.client(api_key="dk_wrong").recall("agent-x", "anything")
    with pytest.raises(AuthenticationError):
        DakeraClient(base_url=live_server.url, max_retries=1).recall("agent-x", "anything")
    client = live_server.client()
    with pytest.raises(NotFoundError):
        client.get_memory("agent-x", "mem_does_not_exist")
    with pytest.raises(ValidationError):
        client.store_memory("agent-x", "")
    # An agent with no memories recalls nothing (not 404).
    assert client.recall("agent-nobody", "anything").memories == []
    assert client.search_memories("agent-nobody", "anything") == []


def test_health(live_server: LiveServer) -> None:
    client = live_server.client()
    assert client.health()["status"] == "healthy"
    assert client.health_ready()["ready"] is True
    assert client.health_live()["alive"] is True
    assert DakeraClient(base_url=live_server.url).health()["status"] == "healthy"  # open


def test_search(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "agent-search"
    for text in FACTS:
        client.store_memory(agent, text, tags=["fact"])
    results = client.search_memories(agent, "peanut allergy", top_k=2)
    assert results[0]["content"] == FACTS[3]
    assert "score" in results[0]
    assert client.search_memories(agent, "peanut allergy", tags=["other"]) == []


def test_everything_survives_a_restart(fresh_server: LiveServer, dakera_backend: str) -> None:
    if dakera_backend == "postgres":  # nothing is kept in the server: a restart is a start
        pytest.skip("the SQLite backend's saved indexes; PostgreSQL keeps none (time saved)")
    fresh_server.start()
    client = fresh_server.client()
    agent = "agent-restart"
    ids = [client.store_memory(agent, text)["id"] for text in FACTS + ORDERS]
    assert fresh_server.stop() == 0
    assert "Traceback" not in fresh_server.log()
    rebuilds = fresh_server.log().count("rebuilt")

    fresh_server.start()
    client = fresh_server.client()
    for mid, text in zip(ids, FACTS + ORDERS, strict=True):
        assert client.get_memory(agent, mid)["content"] == text
    assert ids_of(client.recall(agent, "4417-XQ-93", top_k=1)) == [ids[len(FACTS)]]
    assert ids_of(client.recall(agent, "Which colour scheme does this person like for coding?",
                                top_k=1)) == [ids[0]]
    assert fresh_server.stop() == 0
    # The clean shutdown saved the index: the restart loaded it instead of rebuilding.
    assert fresh_server.log().count("rebuilt") == rebuilds
