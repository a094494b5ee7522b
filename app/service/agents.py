"""Agents: list, create, an agent's memories, stats and wake-up context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import validate
from app.embed import Preset
from app.errors import NotFoundError
from app.models import Memory, MemoryFilter
from app.service.events import Publisher
from app.service.sessions import Sessions
from app.store import Store

WAKE_UP_HALF_LIFE = 14 * 86_400
AGENT_NAMESPACE_PREFIX = "_dakera_agent_"


def agent_of_namespace(namespace: str) -> str:
    """The agent whose memories a namespace `_dakera_agent_<id>` holds."""
    if not namespace.startswith(AGENT_NAMESPACE_PREFIX):
        raise NotFoundError(f"namespace {namespace!r} not found (this server holds agent "
                            f"namespaces {AGENT_NAMESPACE_PREFIX}<agent_id> only)",
                            code="NAMESPACE_NOT_FOUND", resource="namespace")
    return validate.agent_id(namespace.removeprefix(AGENT_NAMESPACE_PREFIX))


class Agents:
    def __init__(self, store: Store, now: Callable[[], int], preset: Preset,
                 sessions: Sessions, events: Publisher) -> None:
        self.db = store
        self.now = now
        self.preset = preset
        self.sessions = sessions
        self.events = events

    def all(self) -> list[dict[str, Any]]:
        """Every agent with its memory and session counts."""
        return self.db.agents.overview()

    def create(self, agent_id: Any) -> tuple[bool, dict[str, Any]]:
        """Create an agent (an existing one is left untouched): whether it was created, and
        what it is."""
        agent = validate.agent_id(agent_id)
        now = self.now()
        created = bool(self.db.write(lambda tx: tx.agents.ensure(agent, now)))
        info = self.info(agent)
        if created:
            self.events.namespace("namespace_created", info["namespace"],
                                  dimension=info["dimension"])
        return created, info

    def info(self, agent_id: str) -> dict[str, Any]:
        p = self.preset
        return {"agent_id": agent_id, "namespace": AGENT_NAMESPACE_PREFIX + agent_id,
                "dimension": p.dimension, "model": p.aliases[0] if p.aliases else p.name}

    def memories(self, agent_id: Any, *, memory_type: Any = None, limit: Any = 50,
                 offset: Any = 0) -> list[Memory]:
        agent = validate.agent_id(agent_id)
        f = MemoryFilter(memory_type=validate.memory_type(memory_type))
        n = validate.limit(limit, 1000)
        skip = validate.offset(offset)
        return self.db.memories.newest(agent, f, self.now(), limit=n, offset=skip)

    def stats(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        self.sessions.expire_idle()
        return self.db.agents.stats(agent, self.now())

    def wake_up(self, agent_id: Any, *, top_n: Any = 20, min_importance: Any = 0.0
                ) -> tuple[list[Memory], int]:
        """The agent's start-up context: importance x recency (14-day half-life)."""
        agent = validate.agent_id(agent_id)
        n = validate.limit(top_n, 100, "top_n")
        floor = validate.importance(min_importance, "min_importance") or 0.0
        return self.db.memories.wake_up(agent, self.now(), n, floor, WAKE_UP_HALF_LIFE)
