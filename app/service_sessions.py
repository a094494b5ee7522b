"""Sessions, agents, importance and capabilities: the part of MemoryService around memories.

A mixin of MemoryService (app/service.py); it uses the service's parts, clock and settings.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from app import validate
from app.embed.presets import PRESETS
from app.errors import NotFoundError, ValidationError
from app.models import BatchFilter, Memory, Session
from app.service_base import ServiceBase
from app.store import sessions as session_store

MAX_IDLE_TIMEOUT = 2_592_000  # 30 days
WAKE_UP_HALF_LIFE = 14 * 86_400
AGENT_NAMESPACE_PREFIX = "_dakera_agent_"


def _session_not_found(session_id: str) -> NotFoundError:
    # The contract's oddity: an unknown session is VECTOR_NOT_FOUND with resource "session".
    return NotFoundError(f"session {session_id!r} not found", resource="session")


class SessionsAndAgents(ServiceBase):
    # -- sessions -----------------------------------------------------------------------

    def expire_idle_sessions(self) -> int:
        """End sessions idle past their timeout (cheap when there are none)."""
        store, *_ = self._parts()
        now, default = self.now(), self.settings.session_idle_timeout
        if not session_store.any_idle(store.reader(), now, default):
            return 0
        return int(store.writer.run(partial(session_store.expire_idle_job, now=now,
                                            default_timeout=default)))

    def start_session(self, agent_id: Any, *, metadata: Any = None,
                      idle_timeout_secs: Any = None) -> Session:
        agent = validate.agent_id(agent_id)
        meta = validate.metadata(metadata)
        timeout = None
        if idle_timeout_secs is not None:
            if (isinstance(idle_timeout_secs, bool) or not isinstance(idle_timeout_secs, int)
                    or not 0 <= idle_timeout_secs <= MAX_IDLE_TIMEOUT):
                raise ValidationError("'idle_timeout_secs' must be an integer from 0 (never) "
                                      f"to {MAX_IDLE_TIMEOUT}")
            timeout = idle_timeout_secs
        store, *_ = self._parts()
        now = self.now()
        session = Session(id="sess_" + uuid.uuid4().hex, agent_id=agent, started_at=now,
                          last_activity_at=now, idle_timeout_secs=timeout, metadata=meta)
        store.writer.run(partial(session_store.start_job, session=session))
        return session

    def get_session(self, session_id: Any) -> Session:
        sid = self._session_id(session_id)
        self.expire_idle_sessions()
        store, *_ = self._parts()
        session = session_store.get_session(store.reader(), sid)
        if session is None:
            raise _session_not_found(sid)
        return session

    def end_session(self, session_id: Any, *, summary: Any = None) -> Session:
        """End a session (idempotent): an ended session keeps its state; an unknown id
        answers an empty session, as the contract asks."""
        sid = self._session_id(session_id)
        text = None if summary is None else validate.content(
            summary, self.settings.max_content_bytes, "summary")
        store, *_ = self._parts()
        store.writer.run(partial(session_store.end_job, session_id=sid, now=self.now(),
                                 summary=text,
                                 default_timeout=self.settings.session_idle_timeout))
        session = session_store.get_session(store.reader(), sid)
        if session is None:
            return Session(id=sid, agent_id="", started_at=0, last_activity_at=0)
        return session

    def touch_session(self, session_id: Any) -> tuple[Session, int | None]:
        """Record activity; never reopens. Returns the session and its idle deadline."""
        sid = self._session_id(session_id)
        session = self.get_session(sid)  # expires it first if it timed out
        if session.active:
            store, *_ = self._parts()
            store.writer.run(partial(session_store.activity_job, agent_id=session.agent_id,
                                     session_ids={sid}, now=self.now(),
                                     default_timeout=self.settings.session_idle_timeout))
            session = self.get_session(sid)
        return session, self.idle_deadline(session)

    def idle_deadline(self, session: Session) -> int | None:
        timeout = (self.settings.session_idle_timeout if session.idle_timeout_secs is None
                   else session.idle_timeout_secs)
        if not session.active or timeout == 0:
            return None
        return session.last_activity_at + timeout

    def list_sessions(self, *, agent_id: Any = None, active_only: bool = False,
                      limit: Any = 50, offset: Any = 0) -> tuple[list[Session], int]:
        agent = None if agent_id is None else validate.agent_id(agent_id)
        n = validate.limit(limit, 1000)
        skip = validate.offset(offset)
        self.expire_idle_sessions()
        store, *_ = self._parts()
        return session_store.list_sessions(store.reader(), agent, active_only, n, skip)

    def session_memories(self, session_id: Any, *, limit: Any = 50, offset: Any = 0
                         ) -> tuple[Session, list[Memory], int]:
        session = self.get_session(session_id)
        n = validate.limit(limit, 500)
        skip = validate.offset(offset)
        store, *_ = self._parts()
        f = BatchFilter(session_id=session.id)
        now = self.now()
        memories = store.list_filtered(session.agent_id, f, now, limit=n, offset=skip)
        return session, memories, store.count_filtered(session.agent_id, f, now)

    def record_session_activity(self, agent_id: str, session_ids: set[str],
                                *, wait: bool = True) -> dict[str, str]:
        """Activity in these sessions (creating unknown ones); their states after it."""
        store, *_ = self._parts()
        job = partial(session_store.activity_job, agent_id=agent_id, session_ids=session_ids,
                      now=self.now(), default_timeout=self.settings.session_idle_timeout)
        if not wait:
            store.writer.submit(job)
            return {}
        return dict(store.writer.run(job))

    @staticmethod
    def _session_id(value: Any) -> str:
        sid = validate.session_id(value, "session_id")
        if sid is None:
            raise ValidationError("'session_id' is required")
        return sid

    # -- agents -------------------------------------------------------------------------

    def list_agents(self) -> list[dict[str, Any]]:
        store, *_ = self._parts()
        return session_store.list_agents(store.reader())

    def create_agent(self, agent_id: Any) -> bool:
        """Create an agent; False when it already existed (left untouched)."""
        agent = validate.agent_id(agent_id)
        store, *_ = self._parts()
        return bool(store.writer.run(partial(session_store.ensure_agent_job, agent_id=agent,
                                             now=self.now())))

    def agent_memories(self, agent_id: Any, *, memory_type: Any = None, limit: Any = 50,
                       offset: Any = 0) -> list[Memory]:
        agent = validate.agent_id(agent_id)
        f = BatchFilter(memory_type=validate.memory_type(memory_type))
        n = validate.limit(limit, 1000)
        skip = validate.offset(offset)
        store, *_ = self._parts()
        return store.list_filtered(agent, f, self.now(), limit=n, offset=skip)

    def agent_stats(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        self.expire_idle_sessions()
        store, *_ = self._parts()
        return session_store.agent_stats(store.reader(), agent, self.now())

    def wake_up(self, agent_id: Any, *, top_n: Any = 20, min_importance: Any = 0.0
                ) -> tuple[list[Memory], int]:
        """The agent's start-up context: importance x recency (14-day half-life)."""
        agent = validate.agent_id(agent_id)
        n = validate.limit(top_n, 100, "top_n")
        floor = validate.importance(min_importance, "min_importance") or 0.0
        store, *_ = self._parts()
        return store.wake_up(agent, self.now(), n, floor, WAKE_UP_HALF_LIFE)

    def agent_info(self, agent_id: str) -> dict[str, Any]:
        preset = self.embedder_preset()
        return {"agent_id": agent_id, "namespace": AGENT_NAMESPACE_PREFIX + agent_id,
                "dimension": preset.dimension, "model": preset.aliases[0] if preset.aliases
                else preset.name}

    # -- importance ---------------------------------------------------------------------

    def set_importance(self, agent_id: Any, memory_id: Any, importance: Any) -> Memory:
        agent = validate.agent_id(agent_id)
        value = validate.importance(importance)
        if value is None:
            raise ValidationError("'importance' is required")
        memory = self.get(memory_id, agent)
        store, *_ = self._parts()
        now = self.now()
        store.writer.run(partial(store.set_importance_job, rowid=memory.rowid,
                                 importance=value, now=now))
        memory.importance, memory.updated_at = value, now
        return memory

    # -- capabilities -------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        active = self.embedder_preset()
        models = [{"name": p.aliases[0] if p.aliases else p.name, "aliases": [p.name],
                   "dimension": p.dimension, "max_seq_length": p.max_seq_length,
                   "effective_max_seq_length": p.max_seq_length,
                   "active": p.name == active.name, "mrl_dimensions": [], "modality": "text"}
                  for p in PRESETS.values() if p.name == active.name]
        s = self.settings
        return {
            "capabilities_version": 1,
            "server_version": self.version,
            "api_versions": ["v1"],
            "default_model": models[0]["name"],
            "reembed_pending": False,
            "models": models,
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
            "auth": {"enabled": bool(s.api_key), "scopes": False, "key_update": False,
                     "prefix_patterns": False, "sessions_by_agent": False},
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
                       "max_ttl_seconds": validate.MAX_TTL_SECONDS},
        }
