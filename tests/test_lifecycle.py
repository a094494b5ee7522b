"""Decay, reinforcement, expiry, feedback and deduplication, driven by an injectable clock."""

from __future__ import annotations

import pytest

from app.errors import ConflictError, NotFoundError, ValidationError
from app.service import Service
from tests.conftest import Clock, MakeService

DAY = 86_400


@pytest.fixture
def svc(hash_service: Service) -> Service:
    return hash_service


def days(svc: Service, clock: Clock, n: int, each_day=None) -> None:  # type: ignore[no-untyped-def]
    """Let n days pass with a decay pass each day."""
    for _ in range(n):
        clock.now += DAY
        if each_day:
            each_day()
        svc.flush_access()
        svc.decay.run()


def importance(svc: Service, memory_id: str) -> float:
    return svc.memories.get(memory_id, "a").importance


def test_unused_memory_ranks_below_a_fresh_one(svc: Service, clock: Clock) -> None:
    old = svc.memories.store("a", "notes about the tomato harvest").memory
    days(svc, clock, 21)
    fresh = svc.memories.store("a", "notes about the tomato harvest").memory
    hits = svc.recall.recall("a", "tomato harvest", top_k=2).hits
    assert [h.memory.id for h in hits] == [fresh.id, old.id]
    assert hits[0].score == pytest.approx(hits[1].score, abs=0.02)  # equal relevance
    assert importance(svc, old.id) < 0.05


def test_a_memory_recalled_every_day_keeps_its_importance(svc: Service,
                                                         clock: Clock) -> None:
    used = svc.memories.store("a", "the alpha project deadline is in spring").memory
    unused = svc.memories.store("a", "the beta garden needs watering").memory

    def recall_alpha() -> None:
        hits = svc.recall.recall("a", "alpha project deadline", top_k=1).hits
        assert hits[0].memory.id == used.id

    days(svc, clock, 28, recall_alpha)
    assert importance(svc, used.id) >= 0.45
    assert svc.memories.get(used.id, "a").access_count == 28
    with pytest.raises(NotFoundError):  # decayed below the floor and deleted
        svc.memories.get(unused.id, "a")
    assert svc.decay.stats()["total_deleted"] == 1


def test_a_procedural_memory_outlives_an_episodic_one(svc: Service, clock: Clock) -> None:
    episodic = svc.memories.store("a", "we had pizza on friday", memory_type="episodic").memory
    procedural = svc.memories.store("a", "deploy with make release",
                                    memory_type="procedural").memory
    semantic = svc.memories.store("a", "paris is in france", memory_type="semantic").memory
    working = svc.memories.store("a", "scratch value is 7", memory_type="working").memory
    days(svc, clock, 3)
    assert importance(svc, working.id) < importance(svc, episodic.id) < importance(
        svc, semantic.id) < importance(svc, procedural.id)
    days(svc, clock, 37)
    with pytest.raises(NotFoundError):
        svc.memories.get(episodic.id, "a")
    assert importance(svc, procedural.id) > 0.05


def test_decay_floor_can_keep_memories(make_service: MakeService, clock: Clock) -> None:
    svc = make_service(decay_delete_below_floor=False)
    m = svc.memories.store("a", "kept forever, however faint").memory
    days(svc, clock, 60)
    assert importance(svc, m.id) < 0.01


def test_decay_config_is_persisted(make_service: MakeService, clock: Clock) -> None:
    svc = make_service()
    config = svc.decay.set_config(strategy="linear", half_life_hours=24, min_importance=0.05)
    assert config["strategy"] == "linear" and config["half_life_hours"] == 24.0
    with pytest.raises(ValidationError):
        svc.decay.set_config(strategy="sometimes")
    with pytest.raises(ValidationError):
        svc.decay.set_config(half_life_hours=0)
    m = svc.memories.store("a", "linear decay").memory
    clock.now += 12 * 3600
    svc.decay.run()  # 0.5 half-lives at 1.5x (never accessed): 0.5 - 0.5 * 0.75
    assert importance(svc, m.id) == pytest.approx(0.125)
    svc.close()
    svc = make_service()
    assert svc.decay.config()["strategy"] == "linear"
    assert svc.decay.stats()["cycles_completed"] == 1


def test_expired_memories_are_gone_everywhere(svc: Service, clock: Clock) -> None:
    gone = svc.memories.store("a", "the door code is 4411", ttl_seconds=3600, importance=0.9).memory
    svc.memories.store("a", "the door code was changed")
    clock.now += 3601
    hits = svc.recall.recall("a", "door code 4411", top_k=5).hits
    assert all(h.memory.id != gone.id for h in hits)
    with pytest.raises(NotFoundError):
        svc.memories.get(gone.id, "a")
    assert gone.id not in [m.id for m in svc.agents.memories("a")]
    assert gone.id not in [m.id for m in svc.agents.wake_up("a")[0]]
    assert svc.memories.batch_recall("a", {})["total"] == 1
    assert svc.decay.purge_expired() == 1
    assert svc.memories.batch_recall("a", {}, 10)["filtered"] == 1


def test_ttl_and_expiry_on_update(svc: Service, clock: Clock) -> None:
    m = svc.memories.store("a", "temporary parking spot B7").memory
    svc.memories.update("a", m.id, ttl_seconds=60)
    assert svc.memories.get(m.id, "a").expires_at == int(clock.now) + 60
    clock.now += 61
    with pytest.raises(NotFoundError):
        svc.memories.get(m.id, "a")


def test_feedback(svc: Service, clock: Clock) -> None:
    m = svc.memories.store("a", "prefers window seats").memory
    up = svc.feedback.give("a", m.id, "upvote")
    assert up == {"memory_id": m.id, "new_importance": pytest.approx(0.575), "signal": "upvote"}
    for _ in range(10):
        svc.feedback.give("a", m.id, "positive")
    assert importance(svc, m.id) == 1.0  # capped
    down = svc.feedback.give("a", m.id, "downvote")
    assert down["new_importance"] == pytest.approx(0.85)
    with pytest.raises(ValidationError):
        svc.feedback.give("a", m.id, "meh")
    history = svc.feedback.history("a", m.id)["entries"]
    assert len(history) == 12 and history[0]["old_importance"] == 0.5
    assert history[-1]["signal"] == "downvote"

    flagged = svc.memories.store("a", "flagged twin").memory
    twin = svc.memories.store("a", "unflagged twin").memory
    assert svc.feedback.give("a", flagged.id, "flag")["new_importance"] == pytest.approx(0.5)
    clock.now += DAY
    svc.decay.run()
    assert importance(svc, flagged.id) < importance(svc, twin.id)
    before = importance(svc, flagged.id) / importance(svc, twin.id)
    clock.now += DAY
    svc.decay.run()  # the flag speeds up one cycle only
    assert importance(svc, flagged.id) / importance(svc, twin.id) == pytest.approx(before)

    summary = svc.feedback.summary("a")
    assert (summary["upvotes"], summary["downvotes"], summary["flags"]) == (11, 1, 1)
    assert summary["total_feedback"] == 13
    health = svc.feedback.health("a")
    assert health["memory_count"] == 3 and 0 < health["health_score"] <= 1


def test_duplicates_merge_and_can_be_restored(svc: Service) -> None:
    first = svc.memories.store("a", "The user's favourite colour is green.", memory_type="semantic",
                      tags=["prefs"], importance=0.6).memory
    again = svc.memories.store("a", "the user's favourite colour is GREEN", memory_type="semantic",
                      tags=["colour"], importance=0.8)
    assert 0 in again.duplicates and again.memory.id == first.id
    merged = svc.memories.get(first.id, "a")
    assert merged.importance == 0.8 and merged.tags == ["prefs", "colour"]
    assert svc.memories.batch_recall("a", {})["total"] == 1

    trash = svc.memories.list_deduplicated("a")
    assert trash["count"] == 1
    item = trash["memories"][0]
    assert item["survivor_id"] == first.id and item["id"] == again.duplicates[0]
    restored = svc.memories.restore_deduplicated("a", item["id"])
    assert restored.id == item["id"] and restored.content == "the user's favourite colour is GREEN"
    assert svc.memories.batch_recall("a", {})["total"] == 2
    with pytest.raises(ConflictError):
        svc.memories.restore_deduplicated("a", item["id"])
    with pytest.raises(NotFoundError):
        svc.memories.restore_deduplicated("a", "mem_never")


def test_what_is_not_merged(svc: Service) -> None:
    # Episodic memories are events: "thanks!" twice is two events.
    svc.memories.store("a", "Thanks!", memory_type="episodic")
    assert not svc.memories.store("a", "thanks", memory_type="episodic").duplicates
    # Different types, different numbers, custom ids: kept apart.
    svc.memories.store("a", "Meeting room is 101", memory_type="semantic")
    assert not svc.memories.store("a", "Meeting room is 102", memory_type="semantic").duplicates
    assert not svc.memories.store("a", "Meeting room is 101", memory_type="procedural").duplicates
    assert not svc.memories.store_batch("a", [{"content": "Meeting room is 101",
                                      "memory_type": "semantic", "id": "mine"}]).duplicates
    assert svc.memories.batch_recall("a", {"memory_type": "semantic"})["filtered"] == 3


def test_agent_policy(svc: Service) -> None:
    policy = svc.policies.get("_dakera_agent_a")
    assert policy["dedup_on_store"] and policy["dedup_memory_types"] == ["semantic",
                                                                         "procedural"]
    svc.policies.set("_dakera_agent_a", {**policy, "dedup_memory_types": ["episodic"]})
    svc.memories.store("a", "Thanks!")
    assert svc.memories.store("a", "thanks").duplicates
    svc.policies.set("_dakera_agent_a", {"dedup_on_store": False})
    assert not svc.memories.store("a", "thanks").duplicates
    assert svc.policies.get("_dakera_agent_b")["dedup_on_store"]  # other agents keep the default
    with pytest.raises(ValidationError):
        svc.policies.set("_dakera_agent_a", {"dedup_threshold": 3})


def test_duplicates_within_one_batch(svc: Service) -> None:
    result = svc.memories.store_batch("a", [
        {"content": "Berlin is the capital of Germany", "memory_type": "semantic"},
        {"content": "berlin is the capital of germany.", "memory_type": "semantic"},
        {"content": "Bonn was the capital of West Germany", "memory_type": "semantic"},
    ])
    assert list(result.duplicates) == [1]
    assert result.memories[1].id == result.memories[0].id
    assert svc.memories.batch_recall("a", {})["total"] == 2


def test_recent_use_ranks_higher_without_any_decay_pass(svc: Service, clock: Clock) -> None:
    # decay passes are off in test services: only the recency factor acts
    old = svc.memories.store("a", "the quarterly report template").memory
    clock.now += 30 * DAY
    fresh = svc.memories.store("a", "the quarterly report template").memory
    hits = svc.recall.recall("a", "quarterly report template", top_k=2).hits
    assert [h.memory.id for h in hits] == [fresh.id, old.id]
    assert svc.memories.get(old.id, "a").importance == 0.5  # importance itself untouched


def test_an_update_keeps_a_boost_committed_after_it_read(svc: Service) -> None:
    import threading

    from app.store import SqliteStore

    m = svc.memories.store("a", "the boiler is serviced in October").memory
    store = svc.parts().store
    assert isinstance(store, SqliteStore)
    gate, holding = threading.Event(), threading.Event()

    def hold(tx: object) -> None:
        holding.set()
        gate.wait()

    store.submit(hold)  # hold the writer (its group is formed: later jobs queue)
    assert holding.wait(30)
    now = svc.now()
    boost = store.submit(lambda tx: tx.decay.reinforce({m.rowid: 1}, now, 0.05))
    done: list[object] = []
    worker = threading.Thread(
        target=lambda: done.append(svc.memories.update("a", m.id, tags=["home"])))
    worker.start()  # reads importance 0.5, queues its write behind the boost
    for _ in range(30_000):  # until the update's write is queued behind the boost
        if store.writer._queue.qsize() >= 2:
            break
        threading.Event().wait(0.001)
    assert store.writer._queue.qsize() == 2
    gate.set()
    boost.result()
    worker.join()
    assert svc.memories.get(m.id, "a").importance == pytest.approx(0.525)
    assert svc.memories.get(m.id, "a").tags == ["home"]
