"""Per-agent memory policies (the contract's namespace memory_policy): deduplication on store,
and what this server does otherwise; and each agent namespace's entity-extraction config
(the contract's namespace `config`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import validate
from app.config import Settings
from app.errors import UnprocessableError, ValidationError
from app.models import MEMORY_TYPES
from app.service.agents import agent_of_namespace
from app.service.decay import decay_policy
from app.service.dedup import DedupPolicy
from app.service.extraction import entity_types
from app.store import Store, Tx

DEDUP_FIELDS = ("dedup_on_store", "dedup_threshold", "dedup_memory_types")
NER_FIELDS = ("extract_entities", "entity_types")


@dataclass(frozen=True)
class StorePolicy:
    """What a store of the agent reads (one lookup): deduplication, and the entity types
    extracted from each memory (none: extraction is off)."""

    dedup: DedupPolicy
    entity_types: tuple[str, ...]


class Policies:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.db = store
        self.settings = settings

    def dedup(self, agent_id: str) -> DedupPolicy:
        """The agent's deduplication settings."""
        return self.store_policy(agent_id).dedup

    def store_policy(self, agent_id: str) -> StorePolicy:
        """What a store of the agent's memories reads (one lookup)."""
        p = self._fields(agent_id)
        types = tuple(p["entity_types"]) if p["extract_entities"] else ()
        return StorePolicy(DedupPolicy(p["dedup_on_store"], p["dedup_threshold"],
                                       tuple(p["dedup_memory_types"])), types)

    def _fields(self, agent_id: str) -> dict[str, Any]:
        s = self.settings
        default = {"dedup_on_store": s.dedup_on_store, "dedup_threshold": s.dedup_threshold,
                   "dedup_memory_types": list(s.dedup_memory_types),
                   "extract_entities": s.extract_entities,
                   "entity_types": list(s.entity_types)}
        saved = self.db.policies.get(agent_id) or {}
        fields = {**default, **saved}
        if not fields["entity_types"]:  # an emptied list: the defaults again
            fields["entity_types"] = default["entity_types"]
        return fields

    def _dedup_fields(self, agent_id: str) -> dict[str, Any]:
        fields = self._fields(agent_id)
        return {k: fields[k] for k in DEDUP_FIELDS}

    # -- entity extraction config (GET/PATCH/PUT /v1/namespaces/{ns}/config) --------------

    def ner(self, namespace: str) -> dict[str, Any]:
        """{namespace, extract_entities, entity_types}: whether stored memories have their
        entities extracted, and which types."""
        fields = self._fields(agent_of_namespace(namespace))
        return {"namespace": namespace, "extract_entities": fields["extract_entities"],
                "entity_types": fields["entity_types"]}

    def set_ner(self, namespace: str, changes: Any, *, replace: bool) -> dict[str, Any]:
        """PATCH merges the given fields; PUT replaces both (an absent or empty entity_types
        list means the default types). Unknown fields are refused (422)."""
        agent = agent_of_namespace(namespace)
        if not isinstance(changes, dict):
            raise ValidationError("the namespace config must be an object")
        unknown = sorted(set(changes) - set(NER_FIELDS))
        if unknown:
            raise UnprocessableError(f"unknown field(s) {', '.join(unknown)}: the namespace "
                                     f"config has {', '.join(NER_FIELDS)}")
        update: dict[str, Any] = {}
        enabled = changes.get("extract_entities")
        if enabled is not None or replace:
            if not isinstance(enabled, bool):
                raise ValidationError("'extract_entities' must be true or false")
            update["extract_entities"] = enabled
        types = entity_types(changes.get("entity_types"))
        if types is not None or replace:
            update["entity_types"] = list(types or ())

        def job(tx: Tx) -> None:
            tx.policies.set(agent, {**(tx.policies.get(agent) or {}), **update})

        self.db.write(job)
        return self.ner(namespace)

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
