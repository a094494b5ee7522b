"""Memory lifecycle: decay passes, expiry, feedback, deduplication and per-agent policies.

A mixin of MemoryService (app/service.py); it uses the service's parts, clock and settings.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from functools import partial
from typing import Any

import numpy as np

from app import validate
from app.errors import ConflictError, NotFoundError, ValidationError
from app.models import DECAY_STRATEGIES, MEMORY_TYPES, DecayPolicy, Memory, NewMemory
from app.recall import IndexRegistry
from app.service_base import ServiceBase
from app.store import MemoryRow, Store
from app.store import lifecycle as lc
from app.store.db import Connection
from app.text import numbers

log = logging.getLogger("dakera.lifecycle")

DECAY_BATCH = 1000
FEEDBACK_FACTORS = {"upvote": 1.15, "downvote": 0.85, "flag": 1.0}
SIGNAL_ALIASES = {"positive": "upvote", "relevant": "upvote", "negative": "downvote",
                  "irrelevant": "downvote"}
DEDUP_CANDIDATES = 5


class Lifecycle(ServiceBase):
    # -- decay --------------------------------------------------------------------------

    def decay_policy(self) -> DecayPolicy:
        s = self.settings
        policy = DecayPolicy(strategy=s.decay_strategy, half_life_hours=s.decay_half_life_hours,
                             min_importance=s.decay_min_importance,
                             delete_below_floor=s.decay_delete_below_floor)
        store, *_ = self._parts()
        saved = lc.get_meta(store.reader(), "decay_config")
        return dataclasses.replace(policy, **saved) if saved else policy

    def decay_config(self) -> dict[str, Any]:
        p = self.decay_policy()
        return {"strategy": p.strategy, "half_life_hours": p.half_life_hours,
                "min_importance": p.min_importance, "delete_below_floor": p.delete_below_floor,
                "interval_secs": self.settings.decay_interval, "type_speeds": p.type_speeds,
                "never_accessed_multiplier": p.never_accessed_multiplier,
                "access_boost": p.access_boost}

    def set_decay_config(self, *, strategy: Any = None, half_life_hours: Any = None,
                         min_importance: Any = None, delete_below_floor: Any = None
                         ) -> dict[str, Any]:
        """Change the decay settings; they are kept in the database across restarts."""
        changes: dict[str, Any] = {}
        if strategy is not None:
            changes["strategy"] = validate.choice(strategy, DECAY_STRATEGIES, "strategy")
        if half_life_hours is not None:
            if (isinstance(half_life_hours, bool) or not isinstance(half_life_hours, int | float)
                    or not half_life_hours > 0):
                raise ValidationError("'half_life_hours' must be a number above 0")
            changes["half_life_hours"] = float(half_life_hours)
        if min_importance is not None:
            changes["min_importance"] = validate.importance(min_importance, "min_importance")
        if delete_below_floor is not None:
            if not isinstance(delete_below_floor, bool):
                raise ValidationError("'delete_below_floor' must be true or false")
            changes["delete_below_floor"] = delete_below_floor
        store, *_ = self._parts()
        saved = lc.get_meta(store.reader(), "decay_config") or {}
        store.writer.run(partial(lc.set_meta_job, key="decay_config",
                                 value={**saved, **changes}))
        return self.decay_config()

    def decay_stats(self) -> dict[str, Any]:
        store, *_ = self._parts()
        stats = lc.get_meta(store.reader(), "decay_stats") or {}
        return {"memories_decayed": stats.get("last_decayed", 0),
                "total_decayed": stats.get("total_decayed", 0),
                "total_deleted": stats.get("total_deleted", 0),
                "total_hard_deleted": stats.get("total_deleted", 0),
                "total_expired": stats.get("total_expired", 0),
                "last_decay_at": stats.get("last_run_at"),
                "last_run_at": stats.get("last_run_at"),
                "last_run_duration_ms": stats.get("last_duration_ms"),
                "cycles_completed": stats.get("cycles", 0)}

    def run_decay(self) -> dict[str, Any]:
        """One decay pass over every memory, in bounded batches through the writer (other
        writes interleave between batches; reads are never blocked)."""
        store, indexes, _, _ = self._parts()
        policy = self.decay_policy()
        now = self.now()
        start = time.perf_counter()
        lo, hi = lc.rowid_range(store.reader())
        decayed, below = 0, []
        for first in range(lo, hi + 1, DECAY_BATCH):
            n, low = store.writer.run(partial(lc.decay_job, lo=first,
                                              hi=first + DECAY_BATCH - 1, now=now, p=policy))
            decayed += n
            below += low
        deleted = 0
        if policy.delete_below_floor:
            deleted = self._delete_pairs(store, indexes, below)
        expired = self.purge_expired()
        store.writer.run(partial(lc.trash_purge_job, now=now))
        if deleted or expired:
            indexes.compact()
        duration = (time.perf_counter() - start) * 1000
        stats = lc.get_meta(store.reader(), "decay_stats") or {}
        stats.update(last_decayed=decayed, total_decayed=stats.get("total_decayed", 0) + decayed,
                     total_deleted=stats.get("total_deleted", 0) + deleted,
                     total_expired=stats.get("total_expired", 0) + expired,
                     last_run_at=now, last_duration_ms=round(duration, 1),
                     cycles=stats.get("cycles", 0) + 1)
        store.writer.run(partial(lc.set_meta_job, key="decay_stats", value=stats))
        log.info("decay pass: %d memories decayed, %d below the floor deleted, %d expired "
                 "removed in %.0f ms", decayed, deleted, expired, duration)
        return {"decayed": decayed, "deleted": deleted, "expired": expired,
                "duration_ms": duration}

    def purge_expired(self) -> int:
        """Delete memories past their expiry (reads never return them anyway)."""
        store, indexes, _, _ = self._parts()
        total = 0
        while True:
            batch = lc.expired(store.reader(), self.now(), DECAY_BATCH)
            if not batch:
                return total
            total += self._delete_pairs(store, indexes, batch)

    def _delete_pairs(self, store: Store, indexes: IndexRegistry,
                      pairs: list[tuple[str, int]]) -> int:
        by_agent: dict[str, list[int]] = {}
        for agent, rowid in pairs:
            by_agent.setdefault(agent, []).append(rowid)
        deleted = 0
        for agent, rowids in by_agent.items():
            for i in range(0, len(rowids), DECAY_BATCH):
                deleted += self._delete(store, indexes, agent, rowids[i:i + DECAY_BATCH])
        return deleted

    # -- feedback -----------------------------------------------------------------------

    def feedback(self, agent_id: Any, memory_id: Any, signal: Any) -> dict[str, Any]:
        """upvote: importance x 1.15 (at most 1); downvote: x 0.85; flag: decays faster on
        the next cycle. Every signal is kept in the memory's feedback history."""
        if not isinstance(signal, str):
            raise ValidationError("'signal' must be upvote, downvote or flag")
        name = SIGNAL_ALIASES.get(signal.lower(), signal.lower())
        if name not in FEEDBACK_FACTORS:
            raise ValidationError("'signal' must be upvote, downvote or flag "
                                  "(or positive / negative)")
        memory = self.get(memory_id, validate.agent_id(agent_id))
        store, *_ = self._parts()
        _, new = store.writer.run(partial(
            lc.feedback_job, agent_id=memory.agent_id, memory_id=memory.id, rowid=memory.rowid,
            signal=name, factor=FEEDBACK_FACTORS[name], now=self.now()))
        return {"memory_id": memory.id, "new_importance": round(new, 6), "signal": name}

    def feedback_history(self, agent_id: Any, memory_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("'memory_id' is required")
        store, *_ = self._parts()
        return {"memory_id": memory_id,
                "entries": lc.feedback_history(store.reader(), agent, memory_id)}

    def feedback_health(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        store, *_ = self._parts()
        count, avg = lc.importance_health(store.reader(), agent, self.now())
        return {"agent_id": agent, "health_score": round(avg or 0.0, 6), "memory_count": count,
                "avg_importance": None if avg is None else round(avg, 6)}

    def feedback_summary(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        store, *_ = self._parts()
        counts = lc.feedback_counts(store.reader(), agent)
        _, avg = lc.importance_health(store.reader(), agent, self.now())
        return {"agent_id": agent, "upvotes": counts.get("upvote", 0),
                "downvotes": counts.get("downvote", 0), "flags": counts.get("flag", 0),
                "total_feedback": sum(counts.values()), "health_score": round(avg or 0.0, 6)}

    # -- per-agent memory policy and deduplication ---------------------------------------

    def dedup_policy(self, agent_id: str) -> dict[str, Any]:
        """The agent's deduplication settings: what a store reads (one lookup)."""
        s = self.settings
        default = {"dedup_on_store": s.dedup_on_store, "dedup_threshold": s.dedup_threshold,
                   "dedup_memory_types": [t.strip() for t in s.dedup_memory_types.split(",")
                                          if t.strip()]}
        store, *_ = self._parts()
        return {**default, **(lc.get_policy(store.reader(), agent_id) or {})}

    def memory_policy(self, agent_id: str) -> dict[str, Any]:
        """The whole policy as the contract's GET shows it: the deduplication settings and
        what this server does otherwise (no per-type TTLs: memories fade by decay)."""
        strategy = self.decay_policy().strategy
        return {**{f"{t}_ttl_seconds": None for t in MEMORY_TYPES},
                **{f"{t}_decay": strategy for t in MEMORY_TYPES},
                "consolidation_enabled": False, "consolidated_count": 0,
                "rate_limit_enabled": False, **self.dedup_policy(agent_id)}

    def set_memory_policy(self, agent_id: Any, changes: Any) -> dict[str, Any]:
        """Merge the given fields into the agent's policy (unknown fields are ignored, so
        the whole object from GET can be sent back)."""
        agent = validate.agent_id(agent_id)
        if not isinstance(changes, dict):
            raise ValidationError("the memory policy must be an object")
        policy: dict[str, Any] = {}
        if changes.get("dedup_on_store") is not None:
            if not isinstance(changes["dedup_on_store"], bool):
                raise ValidationError("'dedup_on_store' must be true or false")
            policy["dedup_on_store"] = changes["dedup_on_store"]
        if changes.get("dedup_threshold") is not None:
            policy["dedup_threshold"] = validate.importance(changes["dedup_threshold"],
                                                            "dedup_threshold")
        if changes.get("dedup_memory_types") is not None:
            types = changes["dedup_memory_types"]
            if not isinstance(types, list):
                raise ValidationError("'dedup_memory_types' must be a list of memory types")
            policy["dedup_memory_types"] = [validate.memory_type(t, "dedup_memory_types")
                                            for t in types]
        store, *_ = self._parts()
        saved = lc.get_policy(store.reader(), agent) or {}
        store.writer.run(partial(lc.set_policy_job, agent_id=agent,
                                 policy={**saved, **policy}))
        return self.memory_policy(agent)

    def find_duplicate(self, conn: Connection, row: MemoryRow, policy: dict[str, Any],
                       batch: list[tuple[np.ndarray, int, str, str]]) -> int | None:
        """Rowid of the memory this new one duplicates, or None. Runs inside the writer's
        transaction, so concurrent stores of the same fact cannot both pass. `batch` holds
        (vector, rowid, type, content) of memories inserted earlier in the same transaction.
        Near-identical texts that differ in a number (a date, an amount, an id) are kept."""
        m = row.memory
        if (not policy["dedup_on_store"] or m.memory_type not in policy["dedup_memory_types"]):
            return None
        same = lc.same_text(conn, m.agent_id, row.norm_hash, m.memory_type, self.now())
        if same is not None:
            return same
        threshold = policy["dedup_threshold"]
        digits = numbers(m.content)
        for vector, rowid, mtype, text in batch:
            if (mtype == m.memory_type and float(vector @ row.vector) >= threshold
                    and numbers(text) == digits):
                return rowid
        _, indexes, _, _ = self._parts()
        index = indexes.find(m.agent_id)
        if index is None:
            return None
        labels, sims = index.search(row.vector, DEDUP_CANDIDATES)
        for label, sim in zip(labels, sims, strict=True):
            if sim < threshold:
                break
            hit = conn.execute("SELECT memory_type, content FROM memories WHERE rowid = ? AND "
                               "(expires_at IS NULL OR expires_at > ?)",
                               (int(label), self.now())).fetchone()
            if hit is not None and hit[0] == m.memory_type and numbers(hit[1]) == digits:
                return int(label)
        return None

    def list_deduplicated(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        store, *_ = self._parts()
        items = lc.trash_list(store.reader(), agent, self.now())
        return {"agent_id": agent, "memories": items, "count": len(items)}

    def restore_deduplicated(self, agent_id: Any, memory_id: Any) -> Memory:
        """Store a merged duplicate again, as a separate memory under its own id."""
        agent = validate.agent_id(agent_id)
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("'memory_id' is required")
        store, *_ = self._parts()
        if store.get(memory_id, agent, self.now()):
            raise ConflictError(f"agent {agent!r} already holds a memory {memory_id!r}")
        saved = store.writer.run(partial(lc.trash_take_job, agent_id=agent,
                                         memory_id=memory_id, now=self.now()))
        if saved is None:
            raise NotFoundError(f"no restorable duplicate {memory_id!r}", resource="memory")
        new = NewMemory(
            agent_id=agent, content=saved["content"], memory_type=saved["memory_type"],
            importance=saved["importance"], tags=saved["tags"], metadata=saved["metadata"],
            session_id=saved.get("session_id"), ttl_seconds=saved.get("ttl_seconds"),
            expires_at=saved.get("expires_at"), event_time=saved.get("event_time"),
            id=memory_id)
        return self._insert([new], dedup=False).memory
