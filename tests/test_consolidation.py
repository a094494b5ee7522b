"""Consolidation, deduplication and AutoPilot without a language model: merges keep every
distinct sentence, sources go to the restorable trash, explicit links move to the merged
memory, different facts are never merged, and summarize/compress say they need a model."""

from __future__ import annotations

import pytest

from app.errors import ConflictError, FeatureDisabledError, NotFoundError, ValidationError
from app.service import Service
from app.service.consolidation import dbscan, merged_text
from tests.conftest import Clock, MakeService


def test_merged_text_keeps_every_distinct_sentence(hash_service: Service) -> None:
    store = hash_service.memories.store
    a = store("t", "Alice likes tea. She drinks it at 4 pm").memory
    b = store("t", "alice likes tea! She takes it without sugar.").memory
    assert merged_text([a, b]) == ("Alice likes tea. She drinks it at 4 pm. "
                                   "She takes it without sugar.")


def test_dbscan() -> None:
    near = {0: [1], 1: [0, 2], 2: [1], 3: [], 4: [5], 5: [4]}
    assert dbscan(near, 2) == [[0, 1, 2], [4, 5]]
    assert dbscan(near, 3) == [[0, 1, 2]]  # 1 is the only core point; 0 and 2 border it


def test_consolidate_chosen_memories(hash_service: Service) -> None:
    svc = hash_service
    sid = svc.sessions.start("c").id
    a = svc.memories.store("c", "The VPN needs the new client", tags=["vpn"], importance=0.4,
                           session_id=sid, metadata={"src": "a", "keep": 1}).memory
    b = svc.memories.store("c", "Install VPN client 5.2 first", tags=["it"], importance=0.8,
                           session_id=sid, metadata={"src": "b"}).memory
    other = svc.memories.store("c", "Unrelated note about lunch").memory
    svc.graph.link(other.id, b.id, "c", "see")
    out = svc.consolidation.consolidate("c", memory_ids=[a.id, b.id], target_type="procedural")
    merged = out["consolidated_memory"]
    assert out["source_memory_ids"] == [a.id, b.id] and out["memories_removed"] == 2
    assert merged["content"] == "The VPN needs the new client. Install VPN client 5.2 first."
    assert merged["memory_type"] == "procedural" and merged["importance"] == 0.8
    assert merged["tags"] == ["vpn", "it"] and merged["session_id"] == sid
    assert merged["metadata"] == {"src": "b", "keep": 1}
    for gone in (a.id, b.id):
        with pytest.raises(NotFoundError):
            svc.memories.get(gone, "c")
    # the explicit link moved to the merged memory
    graph = svc.graph.memory_graph(merged["id"], 1)
    assert {(e["from_id"], e["edge_type"]) for e in graph["edges"]} >= {(other.id, "linked_by")}
    trash = svc.memories.list_deduplicated("c")["memories"]
    assert {(t["id"], t["kind"], t["survivor_id"]) for t in trash} == {
        (a.id, "consolidation", merged["id"]), (b.id, "consolidation", merged["id"])}
    restored = svc.memories.restore_deduplicated("c", a.id)
    assert restored.content == a.content and restored.tags == ["vpn"]


def test_consolidate_refusals(hash_service: Service) -> None:
    svc = hash_service
    a = svc.memories.store("r", "keep me").memory
    b = svc.memories.store("r", "I expire", ttl_seconds=3600).memory
    with pytest.raises(ValidationError, match="expires"):
        svc.consolidation.consolidate("r", memory_ids=[a.id, b.id])
    with pytest.raises(ValidationError, match="2 to 100"):
        svc.consolidation.consolidate("r", memory_ids=[a.id])
    with pytest.raises(NotFoundError):
        svc.consolidation.consolidate("r", memory_ids=[a.id, "mem_nope"])
    with pytest.raises(ValidationError, match="target_type"):
        svc.consolidation.consolidate("r", memory_ids=[a.id, b.id], target_type="poem")
    svc.memories.forget("r", memory_ids=[b.id])
    assert svc.consolidation.consolidate("r")["consolidated_memory"] is None  # nothing alike


def test_consolidate_picks_near_duplicates(hash_service: Service) -> None:
    svc = hash_service
    ids = [svc.memories.store("pick", "standup is at nine in room four").memory.id
           for _ in range(3)]  # episodic: not deduplicated on store
    svc.memories.store("pick", "completely different words here")
    out = svc.consolidation.consolidate("pick")
    assert sorted(out["source_memory_ids"]) == sorted(ids)
    assert out["consolidated_memory"]["content"] == "standup is at nine in room four."


def test_merge_refuses_what_changed_meanwhile(hash_service: Service, clock: Clock) -> None:
    svc = hash_service
    a = svc.memories.store("chg", "first").memory
    b = svc.memories.store("chg", "second").memory
    clock.now += 5
    svc.memories.update("chg", b.id, content="second, edited")
    with pytest.raises(ConflictError):
        svc.memories.merge_into([a, b], svc.memories._validate_new("chg", "x"))
    assert svc.memories.get(a.id, "chg").content == "first"  # nothing was applied


def test_deduplicate_dry_run_then_merge(hash_service: Service) -> None:
    svc = hash_service
    keep = svc.memories.store("dd", "the printer is on floor three", tags=["a"]).memory
    dup = svc.memories.store("dd", "the printer is on floor three", tags=["b"],
                             importance=0.9).memory
    number = svc.memories.store("dd", "the printer is on floor 3").memory  # another fact
    other_type = svc.memories.store("dd", "the printer is on floor three",
                                    memory_type="working").memory
    dry = svc.consolidation.deduplicate("dd", dry_run=True)
    assert dry["groups"] == [[keep.id, dup.id]] and dry["duplicates_found"] == 1
    assert dry["duplicates_merged"] == 0
    assert svc.memories.get(dup.id, "dd")  # untouched
    done = svc.consolidation.deduplicate("dd")
    assert done["duplicates_merged"] == done["removed_count"] == 1
    kept = svc.memories.get(keep.id, "dd")
    assert kept.importance == 0.9 and kept.tags == ["a", "b"]
    assert svc.memories.get(number.id, "dd") and svc.memories.get(other_type.id, "dd")
    trash = svc.memories.list_deduplicated("dd")["memories"]
    assert [(t["id"], t["kind"], t["survivor_id"]) for t in trash] == [
        (dup.id, "deduplication", keep.id)]
    with pytest.raises(ValidationError):
        svc.consolidation.deduplicate("dd", dry_run="yes")


def test_agent_consolidation_folds_clusters(hash_service: Service) -> None:
    svc = hash_service
    same = "the build server is ci-7 in rack b"
    low = svc.memories.store("ac", same, importance=0.3).memory
    protected = svc.memories.store("ac", same, importance=0.85).memory
    anchor = svc.memories.store("ac", same, importance=0.9).memory
    alone = svc.memories.store("ac", "nothing like the others").memory
    cfg = svc.consolidation.set_config("ac", {"soft_deprecation_days": 2, "min_samples": 2})
    assert cfg == {"agent_id": "ac", "enabled": True, "epsilon": 0.1, "min_samples": 2,
                   "soft_deprecation_days": 2}
    out = svc.consolidation.consolidate_agent("ac")
    # the most important is the anchor; above 0.8 is never folded, so only `low` goes
    assert out["clusters_found"] == 1 and out["anchor_ids"] == [anchor.id]
    assert out["deprecated_ids"] == [low.id] and out["memories_deprecated"] == 1
    assert svc.memories.get(protected.id, "ac") and svc.memories.get(alone.id, "ac")
    assert svc.memories.get(anchor.id, "ac").importance == 0.9
    trash = svc.memories.list_deduplicated("ac")["memories"]
    assert trash[0]["restorable_until"] - trash[0]["deleted_at"] == 2 * 86_400
    log = svc.consolidation.log("ac")
    assert log[0]["deprecated_ids"] == [low.id] and log[0]["trigger"] == "api"
    with pytest.raises(ValidationError):
        svc.consolidation.set_config("ac", {"min_samples": 1})
    with pytest.raises(ValidationError):
        svc.consolidation.set_config("ac", {"epsilon": 0})


def test_summarize_and_compress_need_a_model(hash_service: Service) -> None:
    with pytest.raises(FeatureDisabledError, match="language model") as err:
        hash_service.consolidation.summarize()
    assert err.value.status == 501 and err.value.code == "FEATURE_DISABLED"
    with pytest.raises(FeatureDisabledError, match="compress writes new text"):
        hash_service.consolidation.compress("a")


def test_autopilot(make_service: MakeService, clock: Clock) -> None:
    svc = make_service(dedup_on_store=False)
    for _ in range(2):
        svc.memories.store("ap", "the wifi password rotates monthly", memory_type="semantic")
    svc.consolidation.set_config("ap", {"enabled": False})  # AutoPilot's dedup alone here
    status = svc.autopilot.status()
    assert status["enabled"] is False and status["config"]["dedup_mode"] == "off"
    assert status["next_dedup_at"] is None
    assert svc.autopilot.run_due() == 0  # off
    report = svc.autopilot.trigger("dedup")
    assert report["dedup"]["mode"] == "report" and report["dedup"]["duplicates_found"] == 1
    assert svc.memories.batch_recall("ap")["total"] == 2
    cfg = svc.autopilot.set_config({"enabled": True, "dedup_mode": "merge",
                                    "trash_retention_hours": 1})["config"]
    assert cfg["dedup_mode"] == "merge" and cfg["trash_retention_hours"] == 1
    assert svc.autopilot.run_due() == 1  # consolidation; the triggered dedup ran just now
    assert svc.autopilot.status()["last_consolidation"]["agents"] == 0
    assert svc.memories.batch_recall("ap")["total"] == 2
    clock.now += 25 * 3600
    assert svc.autopilot.run_due() == 2
    assert svc.memories.batch_recall("ap")["total"] == 1
    trash = svc.memories.list_deduplicated("ap")["memories"]
    assert trash[0]["restorable_until"] - trash[0]["deleted_at"] == 3600
    assert svc.autopilot.run_due() == 0  # not due again for 24 hours
    assert svc.autopilot.status()["last_dedup"]["mode"] == "merge"
    with pytest.raises(ValidationError):
        svc.autopilot.trigger("everything")
    with pytest.raises(ValidationError):
        svc.autopilot.set_config({"trash_retention_hours": 9000})
    # the config is kept in the database
    svc.close()
    again = make_service(dedup_on_store=False)
    assert again.autopilot.status()["config"]["trash_retention_hours"] == 1
