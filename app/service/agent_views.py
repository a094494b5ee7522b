"""Agent namespaces `_dakera_agent_<id>` seen through the namespace routes: read-only views
of the agent's memories (query by vector or text, full-text, hybrid, count), answered by the
memory recall engine with filters over the memories' fields and metadata
(app/models.memory_where). These reads are searches: they do not count as uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from app import filter_dsl
from app.models import MemoryFilter, RecallHit, memory_where
from app.recall import RecallEngine
from app.store import Store


class AgentViews:
    def __init__(self, store: Store, engine: RecallEngine, now: Callable[[], int]) -> None:
        self.db = store
        self.engine = engine
        self.now = now

    def count(self, agent_id: str, where: filter_dsl.Node | None) -> int:
        return self.db.memories.count(agent_id, MemoryFilter(where=memory_where(where)),
                                      self.now())

    def search(self, agent_id: str, text: str, top_k: int, where: filter_dsl.Node | None, *,
               routing: str, vector_weight: float | None = None,
               vector: np.ndarray | None = None) -> list[RecallHit]:
        """The agent's best memories: routing vector, bm25 or hybrid (a given unit vector
        replaces the embedded text on the vector side)."""
        if vector is not None:
            norm = float(np.linalg.norm(vector))
            vector = vector / norm if norm > 0 else vector
        return self.engine.recall(agent_id, text, top_k,
                                  MemoryFilter(where=memory_where(where)), self.now(),
                                  routing=routing, fusion="minmax", vector_weight=vector_weight,
                                  query_vector=vector).hits

    @staticmethod
    def result(hit: RecallHit, *, text_key: str = "content", include_metadata: Any = True,
               include_vectors: Any = False) -> dict[str, Any]:
        m = hit.memory
        out: dict[str, Any] = {"id": m.id, "score": round(hit.score, 6),
                               text_key: m.content}
        if hit.vector_score is not None:
            out["vector_score"] = round(hit.vector_score, 6)
        if hit.text_score is not None:
            out["text_score"] = round(hit.text_score, 6)
        if include_metadata is not False:
            out["metadata"] = {**m.metadata, "memory_type": m.memory_type,
                               "importance": m.importance, "tags": m.tags,
                               "session_id": m.session_id, "created_at": m.created_at}
        return out
