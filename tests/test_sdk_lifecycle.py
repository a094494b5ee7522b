"""Lifecycle endpoints through the SDK: feedback, importance, deduplication, decay admin."""

from __future__ import annotations

import httpx
import pytest
from dakera.exceptions import ConflictError, DakeraError, NotFoundError, ValidationError
from dakera.models import MemoryPolicy

from tests.conftest import LiveServer

# live-server tests: the source tree and the binary; SQLite and PostgreSQL
pytestmark = [pytest.mark.both_targets, pytest.mark.both_backends]


def test_feedback_routes(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "fb-agent"
    mid = client.store_memory(agent, "The user likes aisle seats")["id"]
    assert client.memory_feedback(agent, mid, "upvote")["new_importance"] == pytest.approx(0.575)
    down = client.feedback_memory(mid, agent, "downvote")
    assert down.new_importance == pytest.approx(0.575 * 0.85) and down.memory_id == mid
    client.feedback_memory(mid, agent, "flag")
    history = client.get_memory_feedback_history(mid, agent)
    assert [e.signal for e in history.entries] == ["upvote", "downvote", "flag"]
    with pytest.raises(ValidationError):
        client.memory_feedback(agent, mid, "shrug")
    client.patch_memory_importance(mid, agent, 0.3)
    assert client.get_memory(agent, mid)["importance"] == pytest.approx(0.3)
    summary = client.get_agent_feedback_summary(agent)
    assert (summary.upvotes, summary.downvotes, summary.flags) == (1, 1, 1)
    health = client.get_feedback_health(agent)
    assert health.memory_count == 1 and health.health_score == pytest.approx(0.3)
    with httpx.Client(base_url=live_server.url,
                      headers={"Authorization": f"Bearer {live_server.api_key}"}) as http:
        r = http.get(f"/v1/memories/{mid}/feedback")
        assert r.status_code == 400 and r.json()["code"] == "INVALID_REQUEST"


def test_deduplication_on_store(live_server: LiveServer) -> None:
    client = live_server.client()
    agent = "dedup-agent"
    first = client.store_memory(agent, "The user prefers dark mode in the editor",
                                memory_type="semantic")
    second = client.store_memory(agent, "The user prefers the dark mode in their editor",
                                 memory_type="semantic")  # cosine 0.98 with the real model
    assert second["id"] == first["id"]  # the SDK returns the memory merged into
    assert second["warnings"][0].startswith(f"duplicate of {first['id']}")
    dup_id = second["warnings"][0].split("deduplicated/")[1].split("/")[0]
    other = client.store_memory(agent, "Alice doesn't like coffee", memory_type="semantic")
    opposite = client.store_memory(agent, "Alice likes coffee", memory_type="semantic")
    assert opposite["id"] != other["id"]  # cosine 0.92: below the 0.95 threshold

    trash = client.list_deduplicated(agent)
    assert trash.count == 1
    assert trash.memories[0].id == dup_id
    restored = client.restore_deduplicated(agent, dup_id)
    assert restored["memory"]["id"] == dup_id
    with pytest.raises(ConflictError):  # it is back: the agent holds that id again
        client.restore_deduplicated(agent, dup_id)
    client.forget(agent, dup_id)
    with pytest.raises(NotFoundError):  # and the trash no longer has it
        client.restore_deduplicated(agent, dup_id)
    assert client.agent_stats(agent)["total_memories"] == 3

    ns = f"_dakera_agent_{agent}"
    policy = client.get_memory_policy(ns)
    assert policy.dedup_on_store and policy.dedup_threshold == pytest.approx(0.95)
    client.set_memory_policy(ns, MemoryPolicy(dedup_on_store=False))
    third = client.store_memory(agent, "The user prefers dark mode in the editor",
                                memory_type="semantic")
    assert "deduplicated" not in third
    with pytest.raises(NotFoundError):
        client.get_memory_policy("some-other-namespace")


def test_decay_admin(live_server: LiveServer) -> None:
    client = live_server.client()
    config = client.decay_config()
    assert config["strategy"] == "exponential" and config["half_life_hours"] == 168.0
    updated = client.decay_update_config(half_life_hours=336)
    assert updated["half_life_hours"] == 336.0
    with pytest.raises(DakeraError):
        client.decay_update_config(strategy="random")
    client.decay_update_config(half_life_hours=168)
    stats = client.decay_stats()
    assert "cycles_completed" in stats and "total_deleted" in stats
    with httpx.Client(base_url=live_server.url,
                      headers={"Authorization": f"Bearer {live_server.api_key}"}) as http:
        ran = http.post("/admin/decay/run").json()
        assert ran["stats"]["cycles_completed"] >= 1
        assert http.get("/admin/decay/config").json()["half_life_hours"] == 168.0
