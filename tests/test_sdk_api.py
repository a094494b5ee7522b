"""Every core endpoint of the contract (§1.1) through the SDK method named for it."""

from __future__ import annotations

import asyncio

import pytest
from dakera import AsyncDakeraClient, ChatMemorySession
from dakera.exceptions import ConflictError, NotFoundError, ValidationError
from dakera.models import (
    BatchForgetRequest,
    BatchMemoryFilter,
    BatchRecallRequest,
    BatchStoreMemoryItem,
    BatchStoreMemoryRequest,
)

from tests.conftest import LiveServer, counts_of

# live-server tests: the source tree and the binary; SQLite and PostgreSQL
pytestmark = [pytest.mark.both_targets, pytest.mark.both_backends]


def test_health_and_capabilities(live_server: LiveServer) -> None:
    client = live_server.client()
    assert client.health()["status"] == "healthy"
    assert client.is_ready()
    client.wait_until_ready(timeout=5)
    assert client.health_live()["alive"] is True
    caps = client.capabilities()
    assert caps.server_version
    assert [m.dimension for m in caps.models] == [384]
    assert caps.default_model.value == "minilm"
    assert caps.sessions.idle_timeout_secs == 14_400 and caps.sessions.touch
    assert caps.naming.agent_id_max_bytes == 241
    assert caps.search_mode.value == "hybrid"


def test_importance(live_server: LiveServer) -> None:
    client = live_server.client()
    mid = client.store_memory("imp-agent", "Budget meeting moved to Thursday")["id"]
    updated = client.update_importance("imp-agent", [mid], 0.95)
    assert updated["importance"] == pytest.approx(0.95)
    assert client.get_memory("imp-agent", mid)["importance"] == pytest.approx(0.95)
    with pytest.raises(ValidationError):
        client.update_importance("imp-agent", [mid], 2.0)
    with pytest.raises(NotFoundError):
        client.update_importance("imp-agent", ["mem_nope"], 0.5)


def test_batch_store_recall_forget(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "batch-agent"
    items = [BatchStoreMemoryItem(f"Batch fact {i}: shelf {i % 17} holds box {i}",
                                  importance=(i % 10) / 10, tags=[f"shelf{i % 3}", "batch"],
                                  memory_type="semantic" if i % 2 else "episodic")
             for i in range(1000)]
    items[0] = BatchStoreMemoryItem("The custom one", id="custom-id-1", tags=["batch"])
    stored = client.store_memories_batch(BatchStoreMemoryRequest(agent, items))
    assert stored.stored_count == 1000 and len(stored.stored) == 1000
    assert stored.stored[0].id == "custom-id-1"
    assert stored.stored[5].content == items[5].content
    assert client.get_memory(agent, "custom-id-1")["content"] == "The custom one"
    assert [m.id for m in client.recall(agent, "shelf 5 box 390", top_k=3).memories]

    listed = client.batch_recall(BatchRecallRequest(agent, BatchMemoryFilter(
        tags=["shelf1", "batch"], min_importance=0.5, memory_type="semantic"), limit=10))
    assert listed.total == 1000 and listed.truncated and len(listed.memories) == 10
    assert all(m.importance >= 0.5 and m.memory_type == "semantic" for m in listed.memories)
    assert all({"shelf1", "batch"} <= set(client.get_memory(agent, m.id)["tags"])
               for m in listed.memories)
    assert client.batch_recall(BatchRecallRequest("nobody-here")).memories == []

    with pytest.raises(ValidationError):  # the empty-filter guard
        client.batch_forget(BatchForgetRequest(agent))
    deleted = client.batch_forget(BatchForgetRequest(agent, BatchMemoryFilter(tags=["shelf0"])))
    assert deleted.deleted_count == 333
    assert client.batch_recall(BatchRecallRequest(agent, limit=1)).total == 667


def test_a_bad_batch_is_refused_whole(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "batch-bad"
    before = counts_of(live_server)
    items = [BatchStoreMemoryItem(f"good item {i}") for i in range(50)]
    items[37] = BatchStoreMemoryItem("x", importance=7.0)
    with pytest.raises(ValidationError, match=r"memories\[37\]"):
        client.store_memories_batch(BatchStoreMemoryRequest(agent, items))
    items[37] = BatchStoreMemoryItem("x", id="dup")
    items[38] = BatchStoreMemoryItem("y", id="dup")
    with pytest.raises(ConflictError, match="dup"):
        client.store_memories_batch(BatchStoreMemoryRequest(agent, items))
    with pytest.raises(ValidationError, match="1 to 1000"):
        client.store_memories_batch(BatchStoreMemoryRequest(
            agent, [BatchStoreMemoryItem("z")] * 1001))
    assert counts_of(live_server) == before
    assert client.batch_recall(BatchRecallRequest(agent)).memories == []


def test_sessions(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "session-agent"
    session = client.start_session(agent, metadata={"channel": "chat"}, idle_timeout_secs=0)
    sid = session["id"]
    assert session["agent_id"] == agent and session["ended_at"] is None
    stored = client.store_memory(agent, "We talked about the garden party", session_id=sid)
    assert stored["session_state"] == "active"
    client.store_memory(agent, "Unrelated memory outside the session")

    got = client.get_session(sid)
    assert got["memory_count"] == 1 and got["metadata"] == {"channel": "chat"}
    assert got["idle_timeout_secs"] == 0
    assert [m["content"] for m in client.session_memories(sid)] == [
        "We talked about the garden party"]
    assert client.session_memories(sid, content_preview_chars=5)[0]["content"] == "We ta"
    assert [h.content for h in client.recall(agent, "garden party", session_id=sid).memories
            ] == ["We talked about the garden party"]

    touched = client.touch_session(sid)
    assert touched.is_active and touched.idle_deadline_at is None  # timeout 0: never
    listed = client.list_sessions(agent_id=agent, active_only=True)
    assert listed["total"] == 1 and listed["sessions"][0]["id"] == sid

    ended = client.end_session(sid, summary="Garden party plans")
    assert ended["session"]["ended_reason"] == "client" and ended["memory_count"] == 1
    again = client.end_session(sid, summary="ignored")  # idempotent: keeps its state
    assert again["session"]["summary"] == "Garden party plans"
    assert client.touch_session(sid).session_state == "ended"  # never reopens
    late = client.store_memory(agent, "stored after the end", session_id=sid)
    assert late["session_state"] == "ended"
    assert client.list_sessions(agent_id=agent, active_only=True)["total"] == 0

    unknown = client.end_session("sess_unknown")
    assert unknown["session"]["agent_id"] == "" and unknown["session"]["started_at"] == 0
    with pytest.raises(NotFoundError) as err:
        client.get_session("sess_unknown")
    assert err.value.code.value == "VECTOR_NOT_FOUND"
    assert err.value.response_body["resource"] == "session"

    # Session ids may contain ':' (a store with an unknown session id starts it).
    client.store_memory(agent, "chat turn", session_id="urn:chat:42")
    assert client.get_session("urn:chat:42")["memory_count"] == 1


def test_chat_memory_session_helper(live_server: LiveServer) -> None:
    client = live_server.client()
    with ChatMemorySession.create(client, "helper-agent") as chat:
        chat.store("user", "User's favourite dessert is tiramisu", importance=0.8)
        hits = chat.recall("What dessert does the user like?", top_k=3)
        assert hits and hits[0].content == "User's favourite dessert is tiramisu"
        assert chat.touch().is_active
        sid = chat.session_id
    assert client.get_session(sid)["ended_reason"] == "client"


def test_async_client_store_and_recall(live_server: LiveServer) -> None:
    async def run() -> list[str]:
        async with AsyncDakeraClient(base_url=live_server.url,
                                     api_key=live_server.api_key) as client:
            await asyncio.gather(*[client.store_memory("async-agent", f"async note {i}: "
                                                       f"{w}") for i, w in
                                   enumerate(["violin lessons", "tax return", "dog walk"])])
            result = await client.recall("async-agent", "music practice", top_k=1)
            return [m.content for m in result.memories]

    assert asyncio.run(run()) == ["async note 0: violin lessons"]


def test_agents(live_server: LiveServer) -> None:
    client = live_server.client()
    created = client.create_agent("fresh-agent")
    assert created.created and created.namespace == "_dakera_agent_fresh-agent"
    assert created.dimension == 384
    assert not client.create_agent("fresh-agent").created
    with pytest.raises(ValidationError):
        client.create_agent("_dakera_bad")

    agent = "listing-agent"
    for i, imp in enumerate([0.1, 0.9, 0.5]):
        client.store_memory(agent, f"listing memory {i}", importance=imp,
                            memory_type="semantic" if i == 1 else "episodic")
    client.start_session(agent)
    rows = {a["agent_id"]: a for a in client.list_agents()}
    assert rows["fresh-agent"]["memory_count"] == 0
    assert rows[agent]["memory_count"] == 3 and rows[agent]["active_sessions"] == 1

    listed = client.agent_memories(agent, limit=2)
    assert [m["content"] for m in listed] == ["listing memory 2", "listing memory 1"]
    assert [m["content"] for m in client.agent_memories(agent, offset=2)] == [
        "listing memory 0"]
    assert client.agent_memories(agent, content_preview_chars=3)[0]["content_truncated"]

    stats = client.agent_stats(agent)
    assert stats["total_memories"] == 3
    assert stats["memories_by_type"] == {"episodic": 2, "semantic": 1}
    assert stats["total_sessions"] == 1 and stats["active_sessions"] == 1
    assert stats["avg_importance"] == pytest.approx(0.5)

    woke = client.wake_up(agent, top_n=2)
    assert [m.content for m in woke.memories] == ["listing memory 1", "listing memory 2"]
    assert woke.total_available == 3
    assert client.wake_up(agent, min_importance=0.6).total_available == 1
    with pytest.raises(ValidationError):
        client.wake_up(agent, top_n=101)
