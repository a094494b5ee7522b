"""Feedback: signals that raise or lower a memory's importance, their history, and the
health of an agent's memories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import validate
from app.errors import ValidationError
from app.models import Memory
from app.service.events import Publisher
from app.service.memories import Memories
from app.store import Store

FACTORS = {"upvote": 1.15, "downvote": 0.85, "flag": 1.0}
ALIASES = {"positive": "upvote", "relevant": "upvote", "negative": "downvote",
           "irrelevant": "downvote"}


class Feedback:
    def __init__(self, store: Store, now: Callable[[], int], memories: Memories,
                 events: Publisher) -> None:
        self.db = store
        self.now = now
        self.memories = memories
        self.events = events

    def give(self, agent_id: Any, memory_id: Any, signal: Any) -> dict[str, Any]:
        """upvote: importance x 1.15 (at most 1); downvote: x 0.85; flag: decays faster on
        the next cycle. Every signal is kept in the memory's feedback history."""
        if not isinstance(signal, str):
            raise ValidationError("'signal' must be upvote, downvote or flag")
        name = ALIASES.get(signal.lower(), signal.lower())
        if name not in FACTORS:
            raise ValidationError("'signal' must be upvote, downvote or flag "
                                  "(or positive / negative)")
        memory = self.memories.get(memory_id, validate.agent_id(agent_id))
        now = self.now()
        _, new = self.db.write(lambda tx: tx.feedback.apply(
            memory.agent_id, memory.id, memory.rowid, name, FACTORS[name], now))
        self.events.memory("importance_updated", memory.agent_id, memory_id=memory.id,
                           importance=new, tags=memory.tags, session_id=memory.session_id,
                           signal=name)
        return {"memory_id": memory.id, "new_importance": round(new, 6), "signal": name}

    def history(self, agent_id: Any, memory_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("'memory_id' is required")
        return {"memory_id": memory_id, "entries": self.db.feedback.history(agent, memory_id)}

    def health(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        count, avg = self.db.memories.importance_stats(agent, self.now())
        return {"agent_id": agent, "health_score": round(avg or 0.0, 6), "memory_count": count,
                "avg_importance": None if avg is None else round(avg, 6)}

    def summary(self, agent_id: Any) -> dict[str, Any]:
        agent = validate.agent_id(agent_id)
        counts = self.db.feedback.counts(agent)
        _, avg = self.db.memories.importance_stats(agent, self.now())
        return {"agent_id": agent, "upvotes": counts.get("upvote", 0),
                "downvotes": counts.get("downvote", 0), "flags": counts.get("flag", 0),
                "total_feedback": sum(counts.values()), "health_score": round(avg or 0.0, 6)}

    def set_importance(self, agent_id: Any, memory_id: Any, importance: Any) -> Memory:
        """An explicit importance (the contract's importance overrides)."""
        agent = validate.agent_id(agent_id)
        value = validate.importance(importance)
        if value is None:
            raise ValidationError("'importance' is required")
        memory = self.memories.get(memory_id, agent)
        now = self.now()
        self.db.write(lambda tx: tx.memories.set_importance(memory.rowid, value, now))
        memory.importance, memory.updated_at = value, now
        self.events.memory("importance_updated", memory.agent_id, memory_id=memory.id,
                           importance=value, tags=memory.tags, session_id=memory.session_id)
        return memory
