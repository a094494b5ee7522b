"""/v1/namespaces/{ns}/memory_policy (agent namespaces) -> service.policies."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, put
from litestar.params import FromPath, JSONBody

from app.api.deps import Service
from app.api.schemas import error_responses
from app.api.scopes import namespace_in_path, need


class MemoryPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The contract's per-namespace memory policy: this server keeps no per-type TTLs (the
    *_ttl_seconds are null), decays every type by the server's strategy, and lets an agent
    set its deduplication."""

    episodic_ttl_seconds: int | None
    semantic_ttl_seconds: int | None
    procedural_ttl_seconds: int | None
    working_ttl_seconds: int | None
    episodic_decay: str
    semantic_decay: str
    procedural_decay: str
    working_decay: str
    consolidation_enabled: bool
    consolidated_count: int
    rate_limit_enabled: bool
    dedup_on_store: bool
    dedup_threshold: float
    dedup_memory_types: list[str]


class PolicyController(Controller):
    path = "/v1/namespaces/{namespace:str}/memory_policy"

    @get("/", sync_to_thread=True, responses=error_responses(404),
         opt=need("read", namespace=namespace_in_path()))
    def get_policy(self, namespace: FromPath[str], service: Service) -> MemoryPolicy:
        return msgspec.convert(service.policies.get(namespace), MemoryPolicy)

    @put("/", sync_to_thread=True, responses=error_responses(404, 415),
         opt=need("admin", namespace=namespace_in_path()))
    def put_policy(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
                   service: Service) -> MemoryPolicy:
        return msgspec.convert(service.policies.set(namespace, data), MemoryPolicy)
