"""Per-agent memory policies (the contract's namespace memory_policy): deduplication on store,
and what this server does otherwise."""

from __future__ import annotations

from typing import Any

from app import validate
from app.config import Settings
from app.errors import ValidationError
from app.models import MEMORY_TYPES
from app.service.agents import agent_of_namespace
from app.service.decay import decay_policy
from app.service.dedup import DedupPolicy
from app.store import Store, Tx


class Policies:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.db = store
        self.settings = settings

    def dedup(self, agent_id: str) -> DedupPolicy:
        """The agent's deduplication settings: what a store reads (one lookup)."""
        p = self._dedup_fields(agent_id)
        return DedupPolicy(p["dedup_on_store"], p["dedup_threshold"],
                           tuple(p["dedup_memory_types"]))

    def _dedup_fields(self, agent_id: str) -> dict[str, Any]:
        s = self.settings
        default = {"dedup_on_store": s.dedup_on_store, "dedup_threshold": s.dedup_threshold,
                   "dedup_memory_types": list(s.dedup_memory_types)}
        return {**default, **(self.db.policies.get(agent_id) or {})}

    def autopilot_status(self) -> dict[str, Any]:
        """What runs in the background on its own: deduplication happens on store (per
        the settings and each agent's policy); no scheduled dedup or consolidation runs."""
        s = self.settings
        return {"enabled": False, "running": False, "dedup_mode": "off",
                "dedup_on_store": s.dedup_on_store, "dedup_threshold": s.dedup_threshold,
                "dedup_memory_types": list(s.dedup_memory_types),
                "dedup_cross_session": True, "consolidate_cross_session": False,
                "trash_retention_hours": s.dedup_retention_hours,
                "dedup_interval_hours": None, "consolidation_interval_hours": None,
                "last_dedup_at": None, "last_consolidation_at": None,
                "config": {"enabled": False, "dedup_mode": "off",
                           "dedup_threshold": s.dedup_threshold,
                           "trash_retention_hours": s.dedup_retention_hours}}

    def get(self, namespace: str) -> dict[str, Any]:
        """The whole policy as the contract's GET shows it: the deduplication settings and
        what this server does otherwise (no per-type TTLs: memories fade by decay)."""
        agent = agent_of_namespace(namespace)
        strategy = decay_policy(self.settings, self.db.meta).strategy
        return {**{f"{t}_ttl_seconds": None for t in MEMORY_TYPES},
                **{f"{t}_decay": strategy for t in MEMORY_TYPES},
                "consolidation_enabled": False, "consolidated_count": 0,
                "rate_limit_enabled": False, **self._dedup_fields(agent)}

    def set(self, namespace: str, changes: Any) -> dict[str, Any]:
        """Merge the given fields into the agent's policy (unknown fields are ignored, so
        the whole object from GET can be sent back)."""
        agent = agent_of_namespace(namespace)
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

        def job(tx: Tx) -> None:
            tx.policies.set(agent, {**(tx.policies.get(agent) or {}), **policy})

        self.db.write(job)
        return self.get(namespace)
