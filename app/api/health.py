"""Health probes (no auth): /health, /health/ready, /health/live; and capabilities."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from msgspec import UNSET, UnsetType

from app.api.deps import Service
from app.api.schemas import error_responses
from app.api.scopes import OPEN, PRINCIPAL, need


class Health(msgspec.Struct, kw_only=True):
    """healthy (200), or starting (503 + Retry-After) while the model loads or when
    start-up failed (`reason` says which)."""

    status: str
    service: str | UnsetType = UNSET
    version: str
    uptime_seconds: int | UnsetType = UNSET
    degraded: bool | UnsetType = UNSET
    config_warnings: list[str] | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    starting: bool | UnsetType = UNSET


class Check(msgspec.Struct, kw_only=True):
    status: str  # ok, loading, degraded (reads work, writes fail) or error
    model: str | UnsetType = UNSET
    error: str | UnsetType = UNSET
    reason: str | UnsetType = UNSET  # short: "writes fail: disk full"
    rebuilding: str | UnsetType = UNSET  # vector indexes being rebuilt in the background


class Readiness(msgspec.Struct, kw_only=True):
    """ready (200), or not (503 + Retry-After): starting, or a check failing."""

    ready: bool
    version: str
    checks: dict[str, Check] | UnsetType = UNSET
    degraded: bool | UnsetType = UNSET  # not ready, but reads are served (writes fail)
    reason: str | UnsetType = UNSET
    starting: bool | UnsetType = UNSET
    downloads: list[Any] | UnsetType = UNSET


class Liveness(msgspec.Struct, kw_only=True):
    alive: bool
    version: str
    uptime_seconds: int
    starting: bool


def _not_ready(model: type) -> dict[int, ResponseSpec]:
    return {503: ResponseSpec(model, generate_examples=False,
                              description="Starting (Retry-After: 1), start-up failed or a "
                                          "check failing (Retry-After: 5).")}


def _trusted(request: Request[Any, Any, Any]) -> bool:
    """Whether the caller may read internal error text: it sent a valid key, or the server
    has none (then the gate admits local hosts only)."""
    return request.scope.get("state", {}).get(PRINCIPAL) is not None


def _starting(service: Service, trusted: bool) -> dict[str, Any]:
    failure = service.failure
    reason = "loading models"
    if failure:
        reason = (f"start-up failed: {failure}" if trusted
                  else "start-up failed (the server log says why)")
    return {"reason": reason, "starting": failure is None}


class HealthController(Controller):
    path = "/health"
    security: Any = [{}]  # open: no key needed

    @get("/", sync_to_thread=False, responses=_not_ready(Health),
         opt=OPEN)
    def health(self, service: Service, request: Request[Any, Any, Any]) -> Response[Health]:
        if not service.ready:
            return Response(Health(status="starting", version=service.version,
                                   **_starting(service, _trusted(request))),
                            status_code=503, headers={"Retry-After": "1"})
        # Alive and serving reads: "healthy" (clients test it), with `degraded` and a short
        # reason while writes fail.
        reason = service.degraded()
        return Response(Health(status="healthy", service="dakera", version=service.version,
                               uptime_seconds=service.uptime(), degraded=reason is not None,
                               config_warnings=[],
                               reason=UNSET if reason is None else reason))

    @get("/ready", sync_to_thread=True, responses=_not_ready(Readiness),
         opt=OPEN)
    def ready(self, service: Service, request: Request[Any, Any, Any]
              ) -> Response[Readiness]:
        trusted = _trusted(request)
        if not service.ready:
            return Response(Readiness(ready=False, version=service.version, downloads=[],
                                      **_starting(service, trusted)),
                            status_code=503, headers={"Retry-After": "1"})
        checks = service.readiness_checks()
        if not trusted:  # internal error text only for a caller with a key
            checks = {name: {k: v for k, v in check.items() if k != "error"}
                      for name, check in checks.items()}
        ok = all(c["status"] == "ok" for c in checks.values())
        body = Readiness(ready=ok, version=service.version,
                         checks=msgspec.convert(checks, dict[str, Check]))
        if ok:
            return Response(body)
        # Not ready: reads may still be served ("degraded": writes fail), and the reason
        # is short; the full error is in the server's log.
        body.degraded = all(c["status"] in ("ok", "degraded") for c in checks.values())
        body.reason = "; ".join(c["reason"] for c in checks.values() if "reason" in c)
        return Response(body, status_code=503, headers={"Retry-After": "5"})

    @get("/live", sync_to_thread=False,
         opt=OPEN)
    def live(self, service: Service) -> Liveness:
        return Liveness(alive=True, version=service.version, uptime_seconds=service.uptime(),
                        starting=not service.ready)


class ModelInfo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    aliases: list[str]
    dimension: int
    max_seq_length: int
    effective_max_seq_length: int
    active: bool
    mrl_dimensions: list[int]
    modality: str


class Scoring(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    strategy: str
    late_interaction: bool


class Naming(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agent_id_pattern: str
    agent_id_max_bytes: int
    session_id_pattern: str
    session_id_max_bytes: int
    agent_namespace_prefix: str
    agent_namespace_max_bytes: int
    reserved_prefixes: list[str]


class SessionCapabilities(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    idle_timeout_secs: int
    max_idle_timeout_secs: int
    touch: bool
    ended_reason: bool


class Limits(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_content_bytes: int
    max_body_bytes: int
    batch_store_max_items: int
    max_top_k: int
    max_metadata_fields: int
    max_metadata_bytes: int
    request_timeout_secs: int | None
    max_ttl_seconds: int


class Capabilities(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What this server offers. Clients read what they know of it; a feature block is
    at least {enabled}."""

    capabilities_version: int
    server_version: str
    api_versions: list[str]
    default_model: str
    reembed_pending: bool
    models: list[ModelInfo]
    index_kinds: list[str]
    vector_index_kinds: list[str]
    live_vector_index_kinds: list[str]
    distance_metrics: list[str]
    search_mode: str
    search_modes_accepted: str
    query_languages: list[str]
    fulltext_language: str
    scoring: Scoring
    attachments: dict[str, Any]
    vision: dict[str, Any]
    records: dict[str, Any]
    documents: dict[str, Any]
    auth: dict[str, Any]
    naming: Naming
    sessions: SessionCapabilities
    limits: Limits


class CapabilitiesController(Controller):
    path = "/v1/capabilities"

    @get("/", sync_to_thread=False, responses=error_responses(),
         opt=need("read"))
    def capabilities(self, service: Service) -> Capabilities:
        return msgspec.convert(service.capabilities.describe(), Capabilities)
