"""Request bodies as msgspec structs: they document the API (OpenAPI) and check JSON types.
Unknown fields are ignored and nulls mean absent, as the Dakera clients expect; the value
rules (limits, patterns, reserved markers) are the service's."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from app.errors import ValidationError
from app.models import Memory, Session


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


# -- responses -------------------------------------------------------------------------
# Response bodies are msgspec Structs too: the OpenAPI document describes them and the
# test of the published schema checks real answers against it. A field that the server
# leaves out when it does not apply has the default UNSET (omitted from the JSON); a field
# always sent, maybe as null, is typed `X | None` without default. Shapes used by several
# controllers live here; a route's own shape lives in its controller module.

ERROR_CODES: dict[int, tuple[str, str]] = {
    400: ("Invalid request: the message names the field.", "INVALID_REQUEST"),
    401: ("Missing, wrong, expired or revoked API key (when DAKERA_API_KEY is set).",
          "INVALID_API_KEY, AUTHENTICATION_REQUIRED, API_KEY_EXPIRED"),
    403: ("The key lacks the scope or the namespace, or a cross-site request.",
          "INSUFFICIENT_SCOPE, NAMESPACE_ACCESS_DENIED, CROSS_ORIGIN_REQUEST_REFUSED"),
    404: ("Not found: the memory, session, agent, namespace or key (`resource` says which).",
          "VECTOR_NOT_FOUND, NAMESPACE_NOT_FOUND, ROUTE_NOT_FOUND, API_KEY_NOT_FOUND"),
    405: ("Method not allowed on this route.", "METHOD_NOT_ALLOWED"),
    409: ("Conflict with what is stored.", "CONFLICT"),
    413: ("Body or content too large.", "PAYLOAD_TOO_LARGE"),
    408: ("The request body did not arrive within DAKERA_REQUEST_TIMEOUT.",
          "REQUEST_TIMEOUT"),
    415: ("The body is not JSON.", "UNSUPPORTED_MEDIA_TYPE"),
    421: ("Without an API key, a Host that is not local (DAKERA_ALLOWED_HOSTS).",
          "HOST_NOT_ALLOWED"),
    422: ("Refused as a whole: a required field is missing, or an unknown field where the "
          "route refuses them.", "UNPROCESSABLE_CONTENT"),
    429: ("Over the key's rate limit: retry after `Retry-After` seconds.",
          "RATE_LIMIT_EXCEEDED"),
    500: ("Unexpected server error (logged with the request id).", "INTERNAL_ERROR"),
    501: ("Not offered by this server, or turned off by a setting: the message says which "
          "(`details` names the DAKERA_* switch when there is one).",
          "FEATURE_DISABLED, NOT_IMPLEMENTED"),
    503: ("Starting (the model loads), restoring a backup, or overloaded: retry after "
          "`Retry-After` seconds.", "SERVICE_UNAVAILABLE"),
    504: ("No answer within DAKERA_REQUEST_TIMEOUT (a write may still complete).",
          "QUERY_TIMEOUT"),
    507: ("The disk is full (or too full for the operation) or read-only: nothing was "
          "written.", "STORAGE_FULL, STORAGE_READ_ONLY"),
}


class ErrorBody(msgspec.Struct, kw_only=True):
    """The error envelope of every 4xx and 5xx answer."""

    error: str
    code: str
    status: int
    details: str | msgspec.UnsetType = msgspec.UNSET
    resource: str | msgspec.UnsetType = msgspec.UNSET
    request_id: str | msgspec.UnsetType = msgspec.UNSET


def error_responses(*statuses: int) -> dict[int, Any]:
    """OpenAPI descriptions of the error envelope for these statuses, plus those every
    route may answer (400 bad input, 401 key, 403 scope or namespace, 429 rate, 500, 503
    starting)."""
    from litestar.openapi.datastructures import ResponseSpec

    wanted = sorted({400, 401, 403, 429, 500, 503, *statuses})
    return {status: ResponseSpec(
        data_container=ErrorBody, generate_examples=False,
        description=f"{ERROR_CODES[status][0]} Codes: {ERROR_CODES[status][1]}.")
        for status in wanted}


class MemoryOut(msgspec.Struct, kw_only=True):
    """A memory ({Memory} of the contract)."""

    id: str
    agent_id: str
    content: str
    memory_type: str
    importance: float
    tags: list[str]
    session_id: str | None
    metadata: dict[str, Any]
    created_at: int
    updated_at: int
    last_accessed_at: int
    access_count: int
    ttl_seconds: int | None
    expires_at: int | None
    # listings with content_preview_chars only
    content_len: int | msgspec.UnsetType = msgspec.UNSET
    content_truncated: bool | msgspec.UnsetType = msgspec.UNSET


class SessionOut(msgspec.Struct, kw_only=True):
    """A session ({Session} of the contract)."""

    id: str
    session_id: str
    agent_id: str
    started_at: int
    ended_at: int | None
    metadata: dict[str, Any] | None
    summary: str | None
    memory_count: int
    last_activity_at: int
    ended_reason: str | None
    idle_since: int | None
    idle_timeout_secs: int | None


class SessionBody(msgspec.Struct, kw_only=True):
    session: SessionOut


def memory_out(m: Memory, preview_chars: int | None = None) -> MemoryOut:
    """A memory as clients read it (the same JSON as Memory.to_dict); with preview_chars
    (listings) its content cut to that many characters and its full length given."""
    content = m.content if preview_chars is None else m.content[:preview_chars]
    out = MemoryOut(
        id=m.id, agent_id=m.agent_id, content=content, memory_type=m.memory_type,
        importance=round(m.importance, 6), tags=m.tags, session_id=m.session_id,
        metadata=m.metadata, created_at=m.created_at, updated_at=m.updated_at,
        last_accessed_at=m.last_accessed_at, access_count=m.access_count,
        ttl_seconds=m.ttl_seconds, expires_at=m.expires_at)
    if preview_chars is not None:
        out.content_len = len(m.content)
        out.content_truncated = len(m.content) > preview_chars
    return out


def session_out(s: Session) -> SessionOut:
    """A session as clients read it (the same JSON as Session.to_dict)."""
    return SessionOut(
        id=s.id, session_id=s.id, agent_id=s.agent_id, started_at=s.started_at,
        ended_at=s.ended_at, metadata=s.metadata, summary=s.summary,
        memory_count=s.memory_count, last_activity_at=s.last_activity_at,
        ended_reason=s.ended_reason,
        idle_since=s.last_activity_at if s.ended_reason == "idle" else None,
        idle_timeout_secs=s.idle_timeout_secs)


# -- knowledge graph ----------------------------------------------------------------------

class LinkRequest(msgspec.Struct, kw_only=True):
    target_id: str | None = None
    agent_id: str | None = None
    label: str | None = None
    edge_type: str | None = None  # accepted from old clients; every link is linked_by


class KnowledgeGraphRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    memory_id: str | None = None
    depth: int | None = None
    min_similarity: float | None = None


class FullGraphRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    max_nodes: int | None = None
    min_similarity: float | None = None
    cluster_threshold: float | None = None
    max_edges_per_node: int | None = None
    content_preview_chars: int | None = None


class CrossAgentRequest(msgspec.Struct, kw_only=True):
    agent_ids: list[str] | None = None
    min_similarity: float | None = None
    max_nodes_per_agent: int | None = None
    min_importance: float | None = None
    max_cross_edges: int | None = None
    content_preview_chars: int | None = None


# -- entity extraction --------------------------------------------------------------------

class ExtractRequest(msgspec.Struct, kw_only=True):
    content: str
    entity_types: list[str] | None = None
    lang: str | None = None


class ExtractTextRequest(msgspec.Struct, kw_only=True):
    text: str
    namespace: str | None = None
    provider: str | None = None
    model: str | None = None
    agent_id: str | None = None
    lang: str | None = None
    extractor_override: dict[str, Any] | None = None


# -- consolidation and deduplication ------------------------------------------------------

class ConsolidateRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    memory_ids: list[str] | None = None
    threshold: float | None = None
    target_type: str | None = None
    dry_run: bool | None = None


class DeduplicateRequest(msgspec.Struct, kw_only=True):
    agent_id: str
    dry_run: bool = False
    threshold: float | None = None
    memory_type: str | None = None


class TriggerRequest(msgspec.Struct, kw_only=True):
    action: str | None = None
