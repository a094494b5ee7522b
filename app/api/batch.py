"""/v1/memories/*: batch store, batch recall (filters only) and batch forget."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, post
from litestar.params import JSONBody

from app.api.deps import Service
from app.api.schemas import (
    BatchForgetRequest,
    BatchRecallRequest,
    BatchStoreRequest,
    as_dict,
)


class BatchController(Controller):
    path = "/v1/memories"

    @post("/store/batch", status_code=200, sync_to_thread=True)
    def store_batch(self, data: JSONBody[BatchStoreRequest], service: Service) -> dict[str, Any]:
        result = service.store_batch(data.agent_id, [as_dict(item) for item in data.memories])
        return {
            "stored": [{"id": m.id, "content": m.content, "agent_id": m.agent_id,
                        "tags": m.tags, "importance": m.importance, "created_at": m.created_at,
                        **({"deduplicated": True, "duplicate_id": result.duplicates[i]}
                           if i in result.duplicates else {})}
                       for i, m in enumerate(result.memories)],
            "stored_count": len(result.memories),
            "total_embedding_time_ms": round(result.embedding_ms),
            "ended_sessions": sorted(sid for sid, state in result.session_states.items()
                                     if state == "ended"),
        }

    @post("/recall/batch", status_code=200, sync_to_thread=True)
    def recall_batch(self, data: JSONBody[BatchRecallRequest],
                     service: Service) -> dict[str, Any]:
        out = service.batch_recall(data.agent_id, as_dict(data.filter), data.limit)
        return {**out, "memories": [m.to_dict() for m in out["memories"]]}

    @delete("/forget/batch", status_code=200, sync_to_thread=True)
    def forget_batch(self, data: JSONBody[BatchForgetRequest],
                     service: Service) -> dict[str, Any]:
        return {"deleted_count": service.batch_forget(data.agent_id, as_dict(data.filter))}
