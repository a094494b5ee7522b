"""Request bodies as msgspec structs: they document the API (OpenAPI) and check JSON types.
Unknown fields are ignored and nulls mean absent, as the Dakera clients expect; the value
rules (limits, patterns, reserved markers) are the service's."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from app.errors import ValidationError


class StoreRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    content: str
    memory_type: str | None = None
    importance: float | None = None
    metadata: dict[str, Any] | None = None
    session_id: str | None = None
    tags: list[str] | None = None
    ttl_seconds: int | None = None
    expires_at: int | None = None
    lang: str | None = None
    attachment_ref: str | None = None
    event_time: int | float | str | None = None


class RecallRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    query: str
    top_k: int = 5
    memory_type: str | None = None
    min_importance: float | None = None
    tags: list[str] | None = None
    session_id: str | None = None
    since: str | None = None
    until: str | None = None
    routing: str | None = None
    rerank: bool | None = None
    fusion: str | None = None
    vector_weight: float | None = None
    iterations: int | None = None
    neighborhood: bool | None = None
    neighborhood_mode: str | None = None
    include_summaries: bool | None = None
    include_associated: bool | None = None
    associated_memories_cap: int | None = None
    associated_memories_depth: int | None = None
    associated_memories_min_weight: float | None = None
    lang: str | None = None
    rerank_candidates: int | None = None


class SearchRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    query: str
    top_k: int = 10
    memory_type: str | None = None
    min_importance: float | None = None
    tags: list[str] | None = None
    session_id: str | None = None
    routing: str | None = None
    vector_weight: float | None = None
    rerank: bool | None = None
    lang: str | None = None


class UpdateRequest(msgspec.Struct, kw_only=True):
    content: str | None = None
    metadata: dict[str, Any] | None = None
    memory_type: str | None = None
    importance: float | None = None
    tags: list[str] | None = None
    lang: str | None = None
    ttl_seconds: int | None = None
    expires_at: int | None = None


class ForgetRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    memory_ids: list[str] | None = None
    tags: list[str] | None = None
    session_id: str | None = None
    before_timestamp: int | None = None


class ImportanceRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    memory_id: str
    importance: float


class FeedbackRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    memory_id: str
    signal: str


class MemoryFeedbackRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    signal: str


class PatchImportanceRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    importance: float


class DecayConfigRequest(msgspec.Struct, kw_only=True):
    strategy: str | None = None
    half_life_hours: float | None = None
    min_importance: float | None = None
    delete_below_floor: bool | None = None


class SessionStartRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    metadata: dict[str, Any] | None = None
    idle_timeout_secs: int | None = None


class SessionEndRequest(msgspec.Struct, kw_only=True):
    summary: str | None = None
    auto_summarize: bool | None = None


class CreateAgentRequest(msgspec.Struct, kw_only=True):
    agent_id: str


class BatchStoreItem(msgspec.Struct, kw_only=True):
    content: str
    memory_type: str | None = None
    importance: float | None = None
    tags: list[str] | None = None
    session_id: str | None = None
    metadata: dict[str, Any] | None = None
    ttl_seconds: int | None = None
    expires_at: int | None = None
    id: str | None = None
    attachment_ref: str | None = None
    event_time: int | float | str | None = None


class BatchStoreRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    memories: list[BatchStoreItem]
    lang: str | None = None


class BatchFilterBody(msgspec.Struct, kw_only=True):
    tags: list[str] | None = None
    min_importance: float | None = None
    max_importance: float | None = None
    created_after: int | None = None
    created_before: int | None = None
    memory_type: str | None = None
    session_id: str | None = None


class BatchRecallRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    filter: BatchFilterBody | None = None
    limit: int = 100


class BatchForgetRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    filter: BatchFilterBody | None = None


class VectorIn(msgspec.Struct, kw_only=True):
    """One vector of an upsert: numbers only (msgspec refuses strings and booleans fast)."""

    id: str | int
    values: list[float] | None = None
    vector: list[float] | None = None  # another spelling of `values`
    metadata: dict[str, Any] | None = None
    ttl_seconds: int | None = None


class UpsertRequest(msgspec.Struct, kw_only=True):
    vectors: list[VectorIn]


S = TypeVar("S", bound=msgspec.Struct)


def lenient(body: dict[str, Any], schema: type[S]) -> tuple[S, list[str]]:
    """A body read as `schema`, and warnings naming the fields it ignored (v0.12.3: store,
    batch store, recall and batch recall ignore unknown fields and say so)."""
    try:
        data = msgspec.convert(body, schema, strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"invalid request: {exc}") from None
    known = set(schema.__struct_fields__)
    return data, [f"unknown field '{k}' ignored" for k in body if k not in known]


def as_dict(value: msgspec.Struct | None) -> dict[str, Any] | None:
    """A struct as a plain dict (the service takes plain values)."""
    return None if value is None else msgspec.structs.asdict(value)
