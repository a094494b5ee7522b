"""/v1/memory and /v1/memories: store, get, update, forget, batch store, batch recall by
filter, batch forget, and the trash of merged duplicates -> service.memories."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.access import in_body, in_query, memory_in_path, need
from app.api.deps import Service
from app.api.schemas import (
    BatchForgetRequest,
    BatchRecallRequest,
    BatchStoreRequest,
    ForgetRequest,
    StoreRequest,
    UpdateRequest,
    as_dict,
)
from app.errors import ValidationError


def required_agent(agent_id: str | None) -> str:
    if agent_id is None:
        raise ValidationError("the 'agent_id' query parameter is required")
    return agent_id


class MemoryController(Controller):
    path = "/v1/memory"

    @post("/store", status_code=200, opt=need("write", agent=in_body()), sync_to_thread=True)
    def store(self, data: JSONBody[StoreRequest], service: Service) -> dict[str, Any]:
        result = service.memories.store(
            data.agent_id, data.content, memory_type=data.memory_type,
            importance=data.importance, tags=data.tags, metadata=data.metadata,
            session_id=data.session_id, ttl_seconds=data.ttl_seconds,
            expires_at=data.expires_at, event_time=data.event_time)
        body: dict[str, Any] = {"memory": result.memory.to_dict(),
                                "embedding_time_ms": round(result.embedding_ms, 3)}
        if result.memory.session_id is not None:
            body["session_state"] = result.session_states.get(result.memory.session_id)
        if 0 in result.duplicates:
            dup = result.duplicates[0]
            body.update(deduplicated=True, merged_into=result.memory.id, duplicate_id=dup,
                        warnings=[f"duplicate of {result.memory.id}: merged into it; restore "
                                  f"it as a separate memory with POST /v1/memory/"
                                  f"deduplicated/{dup}/restore"])
        return body

    @get("/get/{memory_id:str}", opt=need("read", agent=memory_in_path()), sync_to_thread=True)
    def get_memory(self, memory_id: FromPath[str], service: Service,
                   agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.memories.get(memory_id, agent_id).to_dict()

    @put("/update/{memory_id:str}", opt=need("write", agent=in_query()), sync_to_thread=True)
    def update(self, memory_id: FromPath[str], data: JSONBody[UpdateRequest],
               service: Service, agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.memories.update(
            required_agent(agent_id), memory_id, content=data.content, metadata=data.metadata,
            memory_type=data.memory_type, importance=data.importance, tags=data.tags,
            ttl_seconds=data.ttl_seconds, expires_at=data.expires_at).to_dict()

    @post("/forget", status_code=200, opt=need("write", agent=in_body()), sync_to_thread=True)
    def forget(self, data: JSONBody[ForgetRequest], service: Service) -> dict[str, Any]:
        count = service.memories.forget(data.agent_id, memory_ids=data.memory_ids,
                                        tags=data.tags, session_id=data.session_id,
                                        before_timestamp=data.before_timestamp)
        return {"deleted_count": count}

    @get("/deduplicated", opt=need("read", agent=in_query()), sync_to_thread=True)
    def deduplicated(self, service: Service, agent_id: FromQuery[str | None] = None
                     ) -> dict[str, Any]:
        return service.memories.list_deduplicated(required_agent(agent_id))

    @post("/deduplicated/{memory_id:str}/restore", status_code=200,
          opt=need("write", agent=in_query()), sync_to_thread=True)
    def restore(self, memory_id: FromPath[str], service: Service,
                agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        memory = service.memories.restore_deduplicated(required_agent(agent_id), memory_id)
        return {"restored": True, "memory": memory.to_dict()}


class BatchController(Controller):
    path = "/v1/memories"

    @post("/store/batch", status_code=200, opt=need("write", agent=in_body()),
          sync_to_thread=True)
    def store_batch(self, data: JSONBody[BatchStoreRequest], service: Service) -> dict[str, Any]:
        result = service.memories.store_batch(data.agent_id,
                                              [as_dict(item) for item in data.memories])
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

    @post("/recall/batch", status_code=200, opt=need("read", agent=in_body()),
          sync_to_thread=True)
    def recall_batch(self, data: JSONBody[BatchRecallRequest],
                     service: Service) -> dict[str, Any]:
        out = service.memories.batch_recall(data.agent_id, as_dict(data.filter), data.limit)
        return {**out, "memories": [m.to_dict() for m in out["memories"]]}

    @delete("/forget/batch", status_code=200, opt=need("write", agent=in_body()),
            sync_to_thread=True)
    def forget_batch(self, data: JSONBody[BatchForgetRequest],
                     service: Service) -> dict[str, Any]:
        return {"deleted_count": service.memories.batch_forget(data.agent_id,
                                                               as_dict(data.filter))}
