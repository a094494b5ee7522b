"""Capabilities: what this server offers, as the contract's GET /v1/capabilities says it."""

from __future__ import annotations

from typing import Any

from app import __version__, validate
from app.config import Settings
from app.embed import Preset
from app.service.agents import AGENT_NAMESPACE_PREFIX
from app.service.keys import MAX_GRACE_SECS, MAX_GRANT_BYTES, MAX_GRANTS, SCOPES
from app.service.sessions import MAX_IDLE_TIMEOUT


class Capabilities:
    def __init__(self, settings: Settings, preset: Preset) -> None:
        self.settings = settings
        self.preset = preset

    def describe(self) -> dict[str, Any]:
        p = self.preset
        model = {"name": p.aliases[0] if p.aliases else p.name, "aliases": [p.name],
                 "dimension": p.dimension, "max_seq_length": p.max_seq_length,
                 "effective_max_seq_length": p.max_seq_length, "active": True,
                 "mrl_dimensions": [], "modality": "text"}
        s = self.settings
        return {
            "capabilities_version": 1,
            "server_version": __version__,
            "api_versions": ["v1"],
            "default_model": model["name"],
            "reembed_pending": False,
            "models": [model],
            "index_kinds": ["hnsw", "fulltext"],
            "vector_index_kinds": ["hnsw"],
            "live_vector_index_kinds": ["hnsw"],
            "distance_metrics": ["cosine"],
            "search_mode": "hybrid",
            "search_modes_accepted": "hybrid, vector, bm25, auto (routing); fusion rrf or "
                                     "minmax",
            "query_languages": ["en"],
            "fulltext_language": "en",
            "scoring": {"strategy": "rrf", "late_interaction": False},
            "attachments": {"enabled": False},
            "vision": {"enabled": False},
            "records": {"enabled": False},
            "documents": {"enabled": False},
            "auth": {"enabled": bool(s.api_key), "scopes": list(SCOPES),
                     "key_update": True, "prefix_patterns": True, "sessions_by_agent": True,
                     "namespace_keys": True, "rotation_grace_max_secs": MAX_GRACE_SECS,
                     "max_grants": MAX_GRANTS, "max_grant_len": MAX_GRANT_BYTES,
                     "allowed_hosts": list(s.allowed_hosts) if not s.api_key else None,
                     "cors_origins": list(s.cors_origins),
                     "rate_limit_per_minute": s.rate_limit or None},
            "naming": {
                "agent_id_pattern": validate.AGENT_ID.pattern,
                "agent_id_max_bytes": validate.MAX_AGENT_ID_BYTES,
                "session_id_pattern": validate.SESSION_ID.pattern,
                "session_id_max_bytes": validate.MAX_AGENT_ID_BYTES,
                "agent_namespace_prefix": AGENT_NAMESPACE_PREFIX,
                "agent_namespace_max_bytes": 255,
                "reserved_prefixes": ["_", "system_", "internal_", "admin_"],
            },
            "sessions": {"idle_timeout_secs": s.session_idle_timeout,
                         "max_idle_timeout_secs": MAX_IDLE_TIMEOUT, "touch": True,
                         "ended_reason": True},
            "limits": {"max_content_bytes": s.max_content_bytes,
                       "max_body_bytes": s.max_body_size, "batch_store_max_items":
                       validate.MAX_BATCH, "max_top_k": validate.MAX_TOP_K,
                       "max_metadata_fields": validate.MAX_METADATA_FIELDS,
                       "max_metadata_bytes": s.max_metadata_bytes,
                       "request_timeout_secs": s.request_timeout or None,
                       "max_ttl_seconds": validate.MAX_TTL_SECONDS},
        }
