"""Recall: the agent's memories most relevant to a query (hybrid vector + BM25), and search
(the same without reinforcing what it returns)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import validate
from app.config import Settings
from app.errors import ValidationError
from app.models import MemoryFilter, RecallResult
from app.recall import RecallEngine
from app.service.access import AccessLog
from app.service.events import Publisher
from app.service.metrics import Metrics
from app.service.sessions import Sessions

ROUTINGS = ("auto", "hybrid", "vector", "bm25")
FUSIONS = ("minmax", "rrf")
NEIGHBORHOOD_MODES = ("inline", "separate", "off")


class Recall:
    def __init__(self, engine: RecallEngine, settings: Settings, now: Callable[[], int],
                 sessions: Sessions, access: AccessLog, events: Publisher,
                 metrics: Metrics) -> None:
        self.engine = engine
        self.default_mode = settings.neighborhood_mode
        self.now = now
        self.sessions = sessions
        self.access = access
        self.events = events
        self.metrics = metrics

    def recall(self, agent_id: Any, query: Any, *, top_k: Any = 5, memory_type: Any = None,
               min_importance: Any = None, tags: Any = None, session_id: Any = None,
               since: Any = None, until: Any = None, routing: Any = None, fusion: Any = None,
               vector_weight: Any = None, neighborhood: Any = None,
               neighborhood_mode: Any = None, reinforce: bool = True) -> RecallResult:
        """The top_k memories best matching the query, best first; with reinforce (recall,
        not search) each returned memory counts as used: it decays slower."""
        agent = validate.agent_id(agent_id)
        text = validate.query(query)
        k = validate.top_k(top_k)
        filters = MemoryFilter(
            memory_type=validate.memory_type(memory_type),
            min_importance=validate.importance(min_importance, "min_importance"),
            tags_any=validate.tags(tags, storing=False) or None,
            session_id=validate.session_id(session_id),
            since=None if since is None else validate.iso_timestamp(since, "since"),
            until=None if until is None else validate.iso_timestamp(until, "until"),
        )
        route = validate.choice(routing, ROUTINGS, "routing") or "hybrid"
        fuse = validate.choice(fusion, FUSIONS, "fusion") or "minmax"
        weight = validate.unit_float(vector_weight, "vector_weight")
        if neighborhood is not None and not isinstance(neighborhood, bool):
            raise ValidationError("'neighborhood' must be a boolean")
        mode = ("off" if neighborhood is False else validate.choice(
            neighborhood_mode, NEIGHBORHOOD_MODES, "neighborhood_mode") or self.default_mode)
        now = self.now()
        result = self.engine.recall(agent, text, k, filters, now, routing=route, fusion=fuse,
                                    vector_weight=weight, neighborhood=mode != "off")
        result.context_mode = mode
        self.metrics.observe_recall(result.stages, len(result.hits), search=not reinforce)
        if filters.session_id is not None:
            self.sessions.record_activity(agent, {filters.session_id}, wait=False)
        if reinforce and result.hits:
            self.access.record([h.memory.rowid for h in result.hits], now)
            for h in result.hits:
                h.memory.access_count += 1
                h.memory.last_accessed_at = now
            if self.events.listening:
                for h in result.hits:
                    m = h.memory
                    self.events.memory("recalled", agent, memory_id=m.id,
                                       importance=m.importance, tags=m.tags,
                                       session_id=m.session_id, score=round(h.rank_score, 6))
        return result

    def search(self, agent_id: Any, query: Any, **options: Any) -> RecallResult:
        """Recall without neighbourhood and without reinforcing what it returns."""
        return self.recall(agent_id, query, neighborhood=False, reinforce=False, **options)
