"""Decay: how importance fades between recalls, the passes that apply it, expiry, and the
decay settings an operator can change at run time (kept in the database)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from app import validate
from app.config import Settings
from app.errors import ValidationError
from app.models import DECAY_STRATEGIES, DecayPolicy
from app.service.events import Publisher
from app.service.memories import Memories
from app.service.metrics import Metrics
from app.store import Store, Tx
from app.store.protocol import MetaReads

log = logging.getLogger("dakera.decay")

BATCH = 1000
CONFIG_KEY = "decay_config"
STATS_KEY = "decay_stats"


def decay_policy(settings: Settings, meta: MetaReads) -> DecayPolicy:
    """The settings' decay policy with the changes saved through the admin API."""
    policy = DecayPolicy(strategy=settings.decay_strategy,
                         half_life_hours=settings.decay_half_life_hours,
                         min_importance=settings.decay_min_importance,
                         delete_below_floor=settings.decay_delete_below_floor)
    saved = meta.get(CONFIG_KEY)
    return dataclasses.replace(policy, **saved) if saved else policy


def _decay_batch(tx: Tx, lo: int, hi: int, now: int, policy: DecayPolicy
                 ) -> tuple[int, list[tuple[str, int]]]:
    return tx.decay.decay(lo, hi, now, policy)


class Decay:
    def __init__(self, store: Store, settings: Settings, now: Callable[[], int],
                 memories: Memories, events: Publisher, metrics: Metrics) -> None:
        self.db = store
        self.settings = settings
        self.now = now
        self.memories = memories
        self.events = events
        self.metrics = metrics
        self._passes = 0

    def policy(self) -> DecayPolicy:
        return decay_policy(self.settings, self.db.meta)

    def config(self) -> dict[str, Any]:
        p = self.policy()
        return {"strategy": p.strategy, "half_life_hours": p.half_life_hours,
                "min_importance": p.min_importance, "delete_below_floor": p.delete_below_floor,
                "interval_secs": self.settings.decay_interval, "type_speeds": p.type_speeds,
                "never_accessed_multiplier": p.never_accessed_multiplier,
                "access_boost": p.access_boost}

    def set_config(self, *, strategy: Any = None, half_life_hours: Any = None,
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

        def job(tx: Tx) -> None:
            tx.meta.set(CONFIG_KEY, {**(tx.meta.get(CONFIG_KEY) or {}), **changes})

        self.db.write(job)
        return self.config()

    def stats(self) -> dict[str, Any]:
        stats = self.db.meta.get(STATS_KEY) or {}
        return {"memories_decayed": stats.get("last_decayed", 0),
                "total_decayed": stats.get("total_decayed", 0),
                "total_deleted": stats.get("total_deleted", 0),
                "total_hard_deleted": stats.get("total_deleted", 0),
                "total_expired": stats.get("total_expired", 0),
                "last_decay_at": stats.get("last_run_at"),
                "last_run_at": stats.get("last_run_at"),
                "last_run_duration_ms": stats.get("last_duration_ms"),
                "cycles_completed": stats.get("cycles", 0)}

    def run(self) -> dict[str, Any]:
        """One decay pass over every memory, in bounded batches through the writer (other
        writes interleave between batches; reads are never blocked)."""
        policy = self.policy()
        now = self.now()
        start = time.perf_counter()
        self._passes += 1
        progress = partial(self.events.namespace, "operation_progress", None,
                           operation_id=f"decay-{now}-{self._passes}", op_type="decay")
        lo, hi = self.db.decay.rowid_range()
        progress(progress=0, status="running", message="decay pass started", updated_at=now)
        decayed, below = 0, []
        batches = range(lo, hi + 1, BATCH)
        for done, first in enumerate(batches, 1):
            n, low = self.db.write(partial(_decay_batch, lo=first, hi=first + BATCH - 1,
                                           now=now, policy=policy))
            decayed += n
            below += low
            progress(progress=int(90 * done / len(batches)), status="running",
                     message=f"{decayed} memories decayed", updated_at=self.now())
        deleted = (self.memories.delete_pairs(below, "decay")
                   if policy.delete_below_floor else 0)
        expired = self.purge_expired()
        self.db.write(lambda tx: tx.trash.purge(now))
        if deleted or expired:
            self.memories.compact_indexes()
        duration = (time.perf_counter() - start) * 1000

        def record(tx: Tx) -> None:
            stats = tx.meta.get(STATS_KEY) or {}
            stats.update(
                last_decayed=decayed, total_decayed=stats.get("total_decayed", 0) + decayed,
                total_deleted=stats.get("total_deleted", 0) + deleted,
                total_expired=stats.get("total_expired", 0) + expired,
                last_run_at=now, last_duration_ms=round(duration, 1),
                cycles=stats.get("cycles", 0) + 1)
            tx.meta.set(STATS_KEY, stats)

        self.db.write(record)
        self.metrics.observe_decay(duration / 1000)
        progress(progress=100, status="completed",
                 message=f"{decayed} decayed, {deleted} deleted, {expired} expired",
                 updated_at=self.now())
        log.info("decay pass: %d memories decayed, %d below the floor deleted, %d expired "
                 "removed in %.0f ms", decayed, deleted, expired, duration)
        return {"decayed": decayed, "deleted": deleted, "expired": expired,
                "duration_ms": duration}

    def purge_expired(self) -> int:
        """Delete memories past their expiry (reads never return them anyway)."""
        total = 0
        while True:
            batch = self.db.decay.expired(self.now(), BATCH)
            if not batch:
                return total
            total += self.memories.delete_pairs(batch, "expired")
