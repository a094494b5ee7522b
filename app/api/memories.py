"""/v1/memory and /v1/memories: store, get, update, forget, batch store, batch recall by
filter, batch forget, and the trash of merged duplicates -> service.memories."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import Service
from app.api.schemas import (
    BatchForgetRequest,
    BatchRecallRequest,
    BatchStoreItem,
    BatchStoreRequest,
    ForgetRequest,
    StoreRequest,
    UpdateRequest,
    as_dict,
    lenient,
)
from app.errors import ValidationError


def required_agent(agent_id: str | None) -> str:
    if agent_id is None:
        raise ValidationError("the 'agent_id' query parameter is required")
    return agent_id


class MemoryController(Controller):
    path = "/v1/memory"

    @post("/store", status_code=200, sync_to_thread=True)
    def store(self, data: JSONBody[dict[str, Any]], service: Service) -> dict[str, Any]:
        body = data
        req, warnings = lenient(body, StoreRequest)
        result = service.memories.store(
            req.agent_id, req.content, memory_type=req.memory_type,
            importance=req.importance, tags=req.tags, metadata=req.metadata,
            session_id=req.session_id, ttl_seconds=req.ttl_seconds,
            expires_at=req.expires_at, event_time=req.event_time)
        out: dict[str, Any] = {"memory": result.memory.to_dict(),
                               "embedding_time_ms": round(result.embedding_ms, 3)}
        if result.memory.session_id is not None:
            out["session_state"] = result.session_states.get(result.memory.session_id)
        out.update(result.truncation(0) or {})
        if 0 in result.duplicates:
            dup = result.duplicates[0]
            out.update(deduplicated=True, merged_into=result.memory.id, duplicate_id=dup)
            warnings.append(f"duplicate of {result.memory.id}: merged into it; restore it as "
                            f"a separate memory with POST /v1/memory/deduplicated/{dup}/restore")
        if warnings:
            out["warnings"] = warnings
        return out

    @get("/get/{memory_id:str}", sync_to_thread=True)
    def get_memory(self, memory_id: FromPath[str], service: Service,
                   agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.memories.get(memory_id, agent_id).to_dict()

    @put("/update/{memory_id:str}", sync_to_thread=True)
    def update(self, memory_id: FromPath[str], data: JSONBody[UpdateRequest],
               service: Service, agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        memory = service.memories.update(
            required_agent(agent_id), memory_id, content=data.content, metadata=data.metadata,
            memory_type=data.memory_type, importance=data.importance, tags=data.tags,
            ttl_seconds=data.ttl_seconds, expires_at=data.expires_at)
        truncation = None if data.content is None else service.memories.truncation(
            memory.content)
        return {**memory.to_dict(), **(truncation or {})}

    @post("/forget", status_code=200, sync_to_thread=True)
    def forget(self, data: JSONBody[ForgetRequest], service: Service) -> dict[str, Any]:
        count = service.memories.forget(data.agent_id, memory_ids=data.memory_ids,
                                        tags=data.tags, session_id=data.session_id,
                                        before_timestamp=data.before_timestamp)
        return {"deleted_count": count}

    @get("/deduplicated", sync_to_thread=True)
    def deduplicated(self, service: Service, agent_id: FromQuery[str | None] = None
                     ) -> dict[str, Any]:
        return service.memories.list_deduplicated(required_agent(agent_id))

    @post("/deduplicated/{memory_id:str}/restore", status_code=200, sync_to_thread=True)
    def restore(self, memory_id: FromPath[str], service: Service,
                agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        memory = service.memories.restore_deduplicated(required_agent(agent_id), memory_id)
        return {"restored": True, "memory": memory.to_dict()}


class BatchController(Controller):
    path = "/v1/memories"

    @post("/store/batch", status_code=200, sync_to_thread=True)
    def store_batch(self, data: JSONBody[dict[str, Any]], service: Service) -> dict[str, Any]:
        body = data
        req, warnings = lenient(body, BatchStoreRequest)
        for i, item in enumerate(body.get("memories") or []):
            if isinstance(item, dict):
                warnings += [f"memories[{i}]: unknown field '{k}' ignored" for k in item
                             if k not in BatchStoreItem.__struct_fields__]
        result = service.memories.store_batch(req.agent_id,
                                              [as_dict(item) for item in req.memories])
        truncated = [{"id": m.id, **{k: v for k, v in report.items() if k != "truncated"}}
                     for i, m in enumerate(result.memories)
                     if (report := result.truncation(i)) is not None]
        return {
            **({"truncated": truncated} if truncated else {}),
            **({"warnings": warnings} if warnings else {}),
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
    def recall_batch(self, data: JSONBody[dict[str, Any]], service: Service) -> dict[str, Any]:
        body = data
        req, warnings = lenient(body, BatchRecallRequest)
        out = service.memories.batch_recall(req.agent_id, as_dict(req.filter), req.limit)
        return {**out, "memories": [m.to_dict() for m in out["memories"]],
                **({"warnings": warnings} if warnings else {})}

    @delete("/forget/batch", status_code=200, sync_to_thread=True)
    def forget_batch(self, data: JSONBody[BatchForgetRequest],
                     service: Service) -> dict[str, Any]:
        return {"deleted_count": service.memories.batch_forget(data.agent_id,
                                                               as_dict(data.filter))}
