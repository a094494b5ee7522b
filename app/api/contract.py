"""Every client route of the Dakera contract (shared/design/dakera-api.md §1-§3 and the §8
aliases, the v0.12 route lists behind it; /internal/* cluster routes excluded), by feature.

When the app is created, the routes no real controller registers are worked out
(`DisabledRoutes`); a request for one answers 501 FEATURE_DISABLED whose details name the
feature (and its DAKERA_* switch where the contract names one): clients then degrade (the
SDK raises FeatureNotAvailableError, MCP hides the tool) instead of breaking on a 404. A
controller added later wins automatically; /v1/capabilities lists the features left
disabled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from litestar import Litestar

from app.errors import FeatureDisabledError

# feature -> what it is (and the DAKERA_* switch, where the contract names one)
FEATURES: dict[str, str] = {
    "core": "the core memory, session and agent routes",
    "namespaces": "namespaces, raw vectors, text, full-text and hybrid search",
    "policies": "per-namespace memory policies",
    "feedback": "feedback and importance overrides",
    "dedup": "the trash of merged duplicates",
    "decay": "importance decay",
    "aliases": "older clients' paths for current routes",
    "agent-sessions": "listing an agent's sessions (use GET /v1/sessions?agent_id=)",
    "api-keys": "API keys, scopes and namespace grants",
    "import-export": "memory import and export",
    "backups": "backups and restore",
    "consolidation": "consolidation, compression and summaries",
    "autopilot": "AutoPilot background deduplication and consolidation",
    "knowledge-graph": "the knowledge graph",
    "metrics": "metrics and statistics",
    "events": "server-sent event streams",
    "entities": "entity extraction and extractors",
    "routing": "query routing across namespaces",
    "documents": "document import (DAKERA_DOCUMENTS)",
    "attachments": "attachments (DAKERA_ATTACHMENTS; DAKERA_VISION for images)",
    "records": "records (DAKERA_RECORDS)",
    "advanced-vector-search": "multi-vector, unified and explained queries, aggregation",
    "cache": "cache tiers and warming",
    "audit": "the audit log",
    "analytics": "analytics",
    "ops": "operations endpoints (diagnostics, jobs, compaction, shutdown)",
    "debug": "the debug configuration dump",
    "cluster": "clustering, shards and maintenance mode",
    "admin-namespaces": "namespace administration (optimize, migrate dimensions)",
    "index-admin": "index statistics and rebuilds",
    "runtime-config": "runtime configuration",
    "quotas": "quotas",
    "slow-queries": "the slow-query log",
    "encryption": "encryption at rest (DAKERA_ENCRYPTION_KEY)",
    "fulltext-admin": "full-text reindexing",
    "ttl-admin": "TTL statistics and cleanup",
    "storage-tiers": "storage tiers and background activity",
    "reembed": "re-embedding with another model (offline here: dakera reindex)",
    "derivations": "derived sentence memories",
    "vector-admin": "vector import/export and version history",
    "legacy-routes": "routes older clients call that the v0.12 server does not have",
}

# Routes that exist under /v1/admin/... and /admin/... alike (§3.7); keys live only at
# /admin/keys (§2.2).
_ADMIN = """
GET autopilot/status autopilot
PUT autopilot/config autopilot
POST autopilot/trigger autopilot
GET backups backups
POST backups backups
GET backups/{} backups
DELETE backups/{} backups
GET backups/{}/download backups
POST backups/upload backups
GET backups/schedule backups
POST backups/schedule backups
POST backups/restore backups
GET backups/restore/{} backups
GET background-activity storage-tiers
GET storage/tiers storage-tiers
GET memory-type-stats metrics
GET cache/stats cache
POST cache/clear cache
POST cache/warm cache
GET cluster/status cluster
GET cluster/nodes cluster
GET cluster/replication cluster
GET cluster/shards cluster
POST cluster/shards/rebalance cluster
GET cluster/maintenance cluster
POST cluster/maintenance/enable cluster
POST cluster/maintenance/disable cluster
GET config runtime-config
PUT config runtime-config
GET decay/config decay
PUT decay/config decay
GET decay/stats decay
GET derivations/status derivations
POST derivations/drain derivations
GET encryption/status encryption
POST encryption/rotate-key encryption
POST encryption/reseal encryption
POST encryption/keys/{}/revoke-master encryption
POST fulltext/reindex fulltext-admin
GET indexes/stats index-admin
POST indexes/rebuild index-admin
GET namespaces admin-namespaces
DELETE namespaces/{} admin-namespaces
POST namespaces/{}/optimize admin-namespaces
POST namespaces/migrate-dimensions admin-namespaces
GET quotas quotas
GET quotas/default quotas
PUT quotas/default quotas
GET quotas/{} quotas
PUT quotas/{} quotas
DELETE quotas/{} quotas
POST quotas/{}/check quotas
GET reembed/migration reembed
POST reembed/drain reembed
GET reembed/static-count reembed
GET slow-queries slow-queries
GET slow-queries/summary slow-queries
DELETE slow-queries slow-queries
PATCH slow-queries/config slow-queries
GET ttl/stats ttl-admin
POST ttl/cleanup ttl-admin
GET vectors/{}/export vector-admin
POST vectors/{}/import vector-admin
GET vectors/{}/{}/versions vector-admin
GET vectors/{}/{}/versions/{} vector-admin
"""

_ROUTES = """
GET /health core
GET /health/ready core
GET /health/live core
GET /v1/capabilities core
POST /v1/memory/store core
POST /v1/memory/recall core
POST /v1/memory/search core
GET /v1/memory/get/{} core
PUT /v1/memory/update/{} core
POST /v1/memory/forget core
POST /v1/memory/importance core
POST /v1/memories/store/batch core
POST /v1/memories/recall/batch core
DELETE /v1/memories/forget/batch core
POST /v1/sessions/start core
POST /v1/sessions/{}/end core
GET /v1/sessions/{} core
GET /v1/sessions core
GET /v1/sessions/{}/memories core
POST /v1/sessions/{}/touch core
GET /v1/agents core
POST /v1/agents core
GET /v1/agents/{}/memories core
GET /v1/agents/{}/stats core
GET /v1/agents/{}/wake-up core
GET /v1/agents/{}/sessions agent-sessions
GET /v1/namespaces namespaces
POST /v1/namespaces namespaces
GET /v1/namespaces/{} namespaces
PUT /v1/namespaces/{} namespaces
DELETE /v1/namespaces/{} namespaces
POST /v1/namespaces/{}/vectors namespaces
POST /v1/namespaces/{}/query namespaces
POST /v1/namespaces/{}/vectors/delete namespaces
POST /v1/namespaces/{}/vectors/bulk-delete namespaces
POST /v1/namespaces/{}/vectors/bulk-update namespaces
POST /v1/namespaces/{}/vectors/count namespaces
POST /v1/namespaces/{}/batch-query namespaces
POST /v1/namespaces/{}/upsert-text namespaces
POST /v1/namespaces/{}/query-text namespaces
POST /v1/namespaces/{}/batch-query-text namespaces
POST /v1/namespaces/{}/fulltext/index namespaces
POST /v1/namespaces/{}/fulltext/search namespaces
POST /v1/namespaces/{}/fulltext/delete namespaces
GET /v1/namespaces/{}/fulltext/stats namespaces
POST /v1/namespaces/{}/hybrid namespaces
GET /v1/namespaces/{}/memory_policy policies
PUT /v1/namespaces/{}/memory_policy policies
POST /v1/namespaces/{}/export namespaces
POST /v1/namespaces/{}/upsert-columns namespaces
POST /v1/namespaces/{}/multi-vector advanced-vector-search
POST /v1/namespaces/{}/unified-query advanced-vector-search
POST /v1/namespaces/{}/aggregate advanced-vector-search
POST /v1/namespaces/{}/explain advanced-vector-search
POST /v1/namespaces/{}/cache/warm cache
POST /v1/namespaces/{}/warm cache
POST /admin/keys api-keys
GET /admin/keys api-keys
GET /admin/keys/{} api-keys
DELETE /admin/keys/{} api-keys
PATCH /admin/keys/{} api-keys
POST /admin/keys/{}/deactivate api-keys
POST /admin/keys/{}/rotate api-keys
GET /admin/keys/{}/usage api-keys
GET /v1/auth/whoami api-keys
POST /v1/namespaces/{}/keys api-keys
GET /v1/namespaces/{}/keys api-keys
DELETE /v1/namespaces/{}/keys/{} api-keys
PATCH /v1/namespaces/{}/keys/{} api-keys
GET /v1/namespaces/{}/keys/{}/usage api-keys
POST /v1/import import-export
GET /v1/import/{}/status import-export
GET /v1/export import-export
POST /v1/memory/feedback feedback
POST /v1/memories/{}/feedback feedback
GET /v1/memories/{}/feedback feedback
PATCH /v1/memories/{}/importance feedback
GET /v1/feedback/health feedback
GET /v1/agents/{}/feedback/summary feedback
POST /v1/memory/consolidate consolidation
POST /v1/agents/{}/consolidate consolidation
GET /v1/agents/{}/consolidation/log consolidation
PATCH /v1/agents/{}/consolidation/config consolidation
POST /v1/agents/{}/compress consolidation
POST /v1/knowledge/summarize consolidation
POST /v1/knowledge/deduplicate consolidation
GET /v1/memory/deduplicated dedup
POST /v1/memory/deduplicated/{}/restore dedup
GET /v1/memories/{}/graph knowledge-graph
GET /v1/memories/{}/path knowledge-graph
POST /v1/memories/{}/links knowledge-graph
POST /v1/knowledge/graph knowledge-graph
POST /v1/knowledge/graph/full knowledge-graph
POST /v1/knowledge/network/cross-agent knowledge-graph
GET /v1/knowledge/query knowledge-graph
GET /v1/knowledge/path knowledge-graph
GET /v1/knowledge/export knowledge-graph
GET /v1/agents/{}/graph/export knowledge-graph
GET /metrics metrics
GET /v1/ops/metrics metrics
GET /v1/ops/stats metrics
GET /v1/kpis metrics
GET /v1/events/stream events
GET /v1/namespaces/{}/events events
GET /ops/events events
GET /v1/audit/stream events
POST /v1/memories/extract entities
GET /v1/memory/entities/{} entities
GET /v1/namespaces/{}/config entities
PATCH /v1/namespaces/{}/config entities
PUT /v1/namespaces/{}/config entities
POST /v1/extract entities
GET /v1/namespaces/{}/extractor entities
PATCH /v1/namespaces/{}/extractor entities
POST /v1/route routing
POST /v1/memory/documents documents
POST /v1/namespaces/{}/attachments/{}/document documents
GET /v1/memory/documents/jobs/{} documents
GET /v1/memory/documents documents
GET /v1/memory/documents/{} documents
DELETE /v1/memory/documents/{} documents
POST /v1/namespaces/{}/attachments attachments
GET /v1/namespaces/{}/attachments attachments
GET /v1/namespaces/{}/attachments/{} attachments
DELETE /v1/namespaces/{}/attachments/{} attachments
POST /v1/namespaces/{}/attachments/{}/transcribe attachments
POST /v1/namespaces/{}/attachments/{}/index attachments
GET /v1/namespaces/{}/attachments/{}/transcribe/{} attachments
GET /v1/namespaces/{}/attachments/{}/index/{} attachments
POST /v1/namespaces/{}/records records
GET /v1/namespaces/{}/records/{} records
GET /v1/audit audit
GET /v1/audit/export audit
GET /v1/analytics/overview analytics
GET /v1/analytics/latency analytics
GET /v1/analytics/throughput analytics
GET /v1/analytics/storage analytics
GET /debug/config debug
POST /ops/compact ops
GET /ops/diagnostics ops
GET /ops/jobs ops
GET /ops/jobs/{} ops
POST /ops/shutdown ops
PUT /v1/agents/{}/memories/{} aliases
POST /v1/agents/{}/memories/feedback aliases
POST /v1/agents/{}/memories aliases
POST /v1/agents/{}/memories/recall aliases
POST /v1/agents/{}/memories/search aliases
GET /v1/agents/{}/memories/{} aliases
POST /v1/agents/{}/memories/importance aliases
POST /v1/agents/{}/memories/consolidate consolidation
GET /v1/namespaces/{}/stats aliases
POST /v1/namespaces/{}/delete aliases
POST /v1/namespaces/{}/fetch aliases
POST /v1/namespaces/{}/flush aliases
POST /v1/namespaces/{}/compact legacy-routes
POST /v1/audit/export audit
GET /v1/extract/providers legacy-routes
POST /v1/admin/namespaces/{}/ttl legacy-routes
PUT /v1/admin/quotas legacy-routes
POST /v1/memories aliases
POST /v1/memories/recall aliases
POST /v1/sessions aliases
"""


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # parameters written {}
    feature: str


def routes() -> list[Route]:
    """The contract's client routes."""
    out = [Route(*line.split()) for line in _ROUTES.strip().splitlines()]
    for line in _ADMIN.strip().splitlines():
        method, path, feature = line.split()
        out += [Route(method, f"{prefix}/{path}", feature) for prefix in ("/admin", "/v1/admin")]
    return out


_PARAM = re.compile(r"\{[^}]*\}")


def shape(path: str) -> str:
    """A path with its parameters written {} ("/v1/agents/{agent_id:str}" -> "/v1/agents/{}")."""
    return _PARAM.sub("{}", path.rstrip("/") or "/")


def registered(app: Litestar) -> set[tuple[str, str]]:
    """(method, path shape) of every route an app serves."""
    return {(method, shape(r.path)) for r in app.routes
            for method in getattr(r, "methods", ()) if method not in ("HEAD", "OPTIONS")}


class DisabledRoutes:
    """The contract routes an app does not serve. Requests for them fail routing (404 or
    405), and the error handler answers them with `error()`: 501 FEATURE_DISABLED naming the
    feature. No handler is registered for them (two hundred handlers would cost seconds of
    start-up), so a route a controller serves always wins."""

    def __init__(self, served: set[tuple[str, str]]) -> None:
        self.missing = [r for r in routes() if (r.method, r.path) not in served]
        served_features = {r.feature for r in routes() if (r.method, r.path) in served}
        self.features = sorted({r.feature for r in self.missing} - served_features)
        self._patterns = [(r, re.compile("^" + re.escape(r.path).replace(r"\{\}", "[^/]+")
                                         + "/?$")) for r in self.missing]

    def match(self, method: str, path: str) -> Route | None:
        for r, pattern in self._patterns:
            if r.method == method and pattern.match(path):
                return r
        return None

    @staticmethod
    def error(r: Route) -> FeatureDisabledError:
        return FeatureDisabledError(
            f"{r.method} {r.path.replace('{}', '…')} is not available on this server",
            details=f"feature {r.feature!r}: {FEATURES[r.feature]} is not offered by this "
                    "server", resource=r.feature)
