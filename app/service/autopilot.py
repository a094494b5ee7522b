"""AutoPilot: deduplication and consolidation run in the background on a schedule, with its
config (kept in the database) and the status of its last runs.

dedup_mode says what a deduplication pass does: off (no pass; the default), report (find the
duplicate groups, change nothing) or merge (fold them, restorable from the trash for
trash_retention_hours). Consolidation passes run agent consolidation for every agent whose
consolidation config is enabled. Nothing runs until `enabled` is set; a trigger runs a pass
now either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from app import validate
from app.config import Settings
from app.errors import ValidationError
from app.store import Store

log = logging.getLogger("dakera.autopilot")

CONFIG_KEY = "autopilot_config"
STATE_KEY = "autopilot_state"
DEDUP_MODES = ("off", "report", "merge")
ACTIONS = ("dedup", "consolidate", "all")
MAX_RETENTION_HOURS = 8760


class AutopilotConfig:
    """The config, read once and kept in step with its changes (this process owns the
    database). Memories read trash_retention_hours from it on every merge."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.db = store
        self.defaults: dict[str, Any] = {
            "enabled": False, "dedup_threshold": settings.dedup_threshold,
            "dedup_interval_hours": 24, "consolidation_interval_hours": 24,
            "dedup_mode": "off", "dedup_cross_session": False,
            "consolidate_cross_session": False,
            "trash_retention_hours": min(settings.dedup_retention_hours, MAX_RETENTION_HOURS)}
        self._cached: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, Any]:
        with self._lock:
            if self._cached is None:
                self._cached = {**self.defaults, **(self.db.meta.get(CONFIG_KEY) or {})}
            return dict(self._cached)

    def retention_secs(self) -> int:
        return int(self.get()["trash_retention_hours"]) * 3600

    def cross_session(self, what: str) -> bool:
        return bool(self.get()[f"{what}_cross_session"])

    def update(self, changes: Any) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise ValidationError("the autopilot config must be an object")
        update: dict[str, Any] = {}
        for name in ("enabled", "dedup_cross_session", "consolidate_cross_session"):
            if changes.get(name) is not None:
                if not isinstance(changes[name], bool):
                    raise ValidationError(f"'{name}' must be true or false")
                update[name] = changes[name]
        if changes.get("dedup_threshold") is not None:
            update["dedup_threshold"] = validate.unit_float(changes["dedup_threshold"],
                                                            "dedup_threshold")
        for name, low, high in (("dedup_interval_hours", 1, 8760),
                                ("consolidation_interval_hours", 1, 8760),
                                ("trash_retention_hours", 0, MAX_RETENTION_HOURS)):
            if changes.get(name) is not None:
                update[name] = validate.int_range(changes[name], low, high, name, low)
        if changes.get("dedup_mode") is not None:
            update["dedup_mode"] = validate.choice(changes["dedup_mode"], DEDUP_MODES,
                                                   "dedup_mode")
        with self._lock:
            saved = {**(self.db.meta.get(CONFIG_KEY) or {}), **update}
            self.db.write(lambda tx: tx.meta.set(CONFIG_KEY, saved))
            self._cached = None
        return self.get()


class Autopilot:
    def __init__(self, store: Store, now: Callable[[], int], config: AutopilotConfig,
                 deduplicate: Callable[..., dict[str, Any]],
                 consolidate_agent: Callable[[str, str], dict[str, Any]],
                 consolidation_enabled: Callable[[str], bool]) -> None:
        self.db = store
        self.now = now
        self.config = config
        self.deduplicate = deduplicate
        self.consolidate_agent = consolidate_agent
        self.consolidation_enabled = consolidation_enabled
        self._running = threading.Lock()

    def status(self) -> dict[str, Any]:
        cfg = self.config.get()
        state = self.db.meta.get(STATE_KEY) or {}
        last_dedup, last_cons = state.get("last_dedup"), state.get("last_consolidation")
        return {"enabled": cfg["enabled"], "config": cfg, "running": self._running.locked(),
                "last_dedup": last_dedup, "last_consolidation": last_cons,
                "next_dedup_at": _next(cfg["enabled"] and cfg["dedup_mode"] != "off",
                                       last_dedup, cfg["dedup_interval_hours"], self.now()),
                "next_consolidation_at": _next(cfg["enabled"], last_cons,
                                               cfg["consolidation_interval_hours"], self.now())}

    def set_config(self, changes: Any) -> dict[str, Any]:
        return {"updated": True, "config": self.config.update(changes)}

    def trigger(self, action: Any) -> dict[str, Any]:
        """Run a pass now: dedup (in merge mode when dedup_mode is merge, else as a report),
        consolidate, or all."""
        what = validate.choice(action, ACTIONS, "action")
        if what is None:
            raise ValidationError("'action' is required: dedup, consolidate or all")
        out: dict[str, Any] = {"action": what, "triggered": True}
        with self._running:
            if what in ("dedup", "all"):
                mode = "merge" if self.config.get()["dedup_mode"] == "merge" else "report"
                out["dedup"] = self._dedup(mode)
            if what in ("consolidate", "all"):
                out["consolidation"] = self._consolidate()
        return out

    def run_due(self) -> int:
        """The maintenance task: run the passes that are due; returns how many ran."""
        cfg = self.config.get()
        if not cfg["enabled"]:
            return 0
        state = self.db.meta.get(STATE_KEY) or {}
        now, ran = self.now(), 0
        if not self._running.acquire(blocking=False):
            return 0
        try:
            if cfg["dedup_mode"] != "off" and _due(state.get("last_dedup"),
                                                   cfg["dedup_interval_hours"], now):
                self._dedup(cfg["dedup_mode"])
                ran += 1
            if _due(state.get("last_consolidation"), cfg["consolidation_interval_hours"], now):
                self._consolidate()
                ran += 1
        finally:
            self._running.release()
        return ran

    def _agents(self) -> list[str]:
        return sorted(a["agent_id"] for a in self.db.agents.overview())

    def _dedup(self, mode: str) -> dict[str, Any]:
        threshold = self.config.get()["dedup_threshold"]
        found = merged = 0
        agents = self._agents()
        for agent in agents:
            try:
                r = self.deduplicate(agent, dry_run=mode != "merge", threshold=threshold)
            except Exception:
                log.exception("autopilot dedup of %s failed", agent)
                continue
            found += r["duplicates_found"]
            merged += r["duplicates_merged"]
        run = {"at": self.now(), "mode": mode, "agents": len(agents),
               "duplicates_found": found, "duplicates_merged": merged}
        self._record("last_dedup", run)
        return run

    def _consolidate(self) -> dict[str, Any]:
        clusters = deprecated = 0
        agents = [a for a in self._agents() if self.consolidation_enabled(a)]
        for agent in agents:
            try:
                r = self.consolidate_agent(agent, "autopilot")
            except Exception:
                log.exception("autopilot consolidation of %s failed", agent)
                continue
            clusters += r["clusters_found"]
            deprecated += r["memories_deprecated"]
        run = {"at": self.now(), "agents": len(agents), "clusters_found": clusters,
               "memories_deprecated": deprecated}
        self._record("last_consolidation", run)
        return run

    def _record(self, key: str, run: dict[str, Any]) -> None:
        def job(tx: Any) -> None:
            tx.meta.set(STATE_KEY, {**(tx.meta.get(STATE_KEY) or {}), key: run})

        self.db.write(job)


def _due(last: dict[str, Any] | None, hours: int, now: int) -> bool:
    return last is None or now >= int(last["at"]) + hours * 3600


def _next(on: bool, last: dict[str, Any] | None, hours: int, now: int) -> int | None:
    if not on:
        return None
    return now if last is None else max(now, int(last["at"]) + hours * 3600)
