"""Operating the server: Prometheus metrics (/metrics, /v1/ops/metrics), stats
(/v1/ops/stats), diagnostics (/ops/diagnostics) and KPIs (/v1/kpis) -> service.ops and
service.metrics."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Response, get

from app.api.deps import Service
from app.api.schemas import error_responses
from app.api.scopes import need
from app.errors import FeatureDisabledError
from app.service.metrics import CONTENT_TYPE


class OpsStats(msgspec.Struct, kw_only=True):
    version: str
    total_vectors: int  # every agent's memories (one vector each)
    namespace_count: int  # agents holding memories (namespace _dakera_agent_<id>)
    uptime_seconds: int
    timestamp: int
    state: str  # healthy, or degraded when storage cannot be read
    total_memories: int
    agent_count: int
    pending_writes: int
    event_subscribers: int


class StorageDiagnostics(msgspec.Struct, kw_only=True):
    backend: str
    path: str
    sqlite_version: str
    size_bytes: int
    wal_bytes: int
    pending_writes: int
    synchronous: str


class ModelDiagnostics(msgspec.Struct, kw_only=True):
    id: str
    dimension: int


class IndexDiagnostics(msgspec.Struct, kw_only=True):
    loaded: int
    vectors: int
    builds: dict[str, int]  # built from stored vectors: start, first_use, compaction
    folder: str


class EventDiagnostics(msgspec.Struct, kw_only=True):
    subscribers: int
    published: int
    dropped: int
    buffer: int


class MetricsDiagnostics(msgspec.Struct, kw_only=True):
    enabled: bool
    top_agents: int


class ProcessDiagnostics(msgspec.Struct, kw_only=True):
    pid: int
    python: str
    frozen: bool
    threads: int
    rss_bytes: int | msgspec.UnsetType = msgspec.UNSET  # Linux
    open_files: int | msgspec.UnsetType = msgspec.UNSET  # Linux


class Diagnostics(msgspec.Struct, kw_only=True):
    status: str
    error: str | None
    version: str
    uptime_seconds: int
    timestamp: int
    storage: StorageDiagnostics
    model: ModelDiagnostics
    indexes: IndexDiagnostics
    events: EventDiagnostics
    metrics: MetricsDiagnostics
    process: ProcessDiagnostics


class KpiSnapshot(msgspec.Struct, kw_only=True):
    recall_latency_p50_ms: float  # HTTP recall answers of the last minute
    recall_latency_p99_ms: float
    store_latency_p50_ms: float
    api_error_rate_5xx_pct: float  # of the requests of the last minute
    active_agents_count: int  # stored or recalled in the last 24 hours
    session_count_week: int  # sessions started in the last 7 days
    cross_agent_network_node_count: int  # no knowledge graph yet: 0
    memory_retention_7d_pct: float  # stored in the last 7 days (since start) and still held


def _metrics(service: Service) -> Response[bytes]:
    if not service.settings.metrics:
        raise FeatureDisabledError("metrics collection is turned off (DAKERA_METRICS=false)",
                                   details="DAKERA_METRICS")
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE)


METRICS_DOC: dict[str, Any] = {
    "media_type": CONTENT_TYPE, "sync_to_thread": True, "responses": error_responses(501),
    "description": "Prometheus text format: requests by route template, method and status, "
                   "latency histograms per route, recall stage timings, store and batch "
                   "throughput, writer queue depth and commit latency, memories and vectors "
                   "(totals and the DAKERA_METRICS_TOP_AGENTS largest agents), index sizes "
                   "and rebuilds, decay passes, event streams, process RSS, open files, "
                   "uptime and the build."}


# Server-wide figures: an admin key for every namespace. /metrics is also open to loopback
# clients when DAKERA_METRICS_OPEN_ON_LOOPBACK is set (the gate reads open_on_loopback).
ADMIN_ALL = need("admin", every_namespace=True)


class OpsController(Controller):
    @get("/metrics", **METRICS_DOC, opt={**ADMIN_ALL, "open_on_loopback": True})
    def metrics(self, service: Service) -> Response[bytes]:
        return _metrics(service)

    @get("/v1/ops/metrics", **METRICS_DOC, opt=ADMIN_ALL)
    def ops_metrics(self, service: Service) -> Response[bytes]:
        return _metrics(service)

    @get("/v1/ops/stats", sync_to_thread=True, responses=error_responses(), opt=ADMIN_ALL)
    def stats(self, service: Service) -> OpsStats:
        return msgspec.convert(service.ops.stats(), OpsStats)

    @get("/ops/diagnostics", sync_to_thread=True, responses=error_responses(),
         opt=ADMIN_ALL)
    def diagnostics(self, service: Service) -> Diagnostics:
        return msgspec.convert(service.ops.diagnostics(), Diagnostics)

    @get("/v1/kpis", sync_to_thread=True, responses=error_responses(501), opt=ADMIN_ALL)
    def kpis(self, service: Service) -> KpiSnapshot:
        return msgspec.convert(service.ops.kpis(), KpiSnapshot)


__all__ = ["OpsController"]
