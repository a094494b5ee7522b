"""/v1/memory and /v1/memories: store, get, update, forget, batch store, batch recall by
filter, batch forget, and the trash of merged duplicates -> service.memories."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, UnsetType

from app.api.deps import Service
from app.api.schemas import (
    BatchForgetRequest,
    BatchRecallRequest,
    BatchStoreRequest,
    ForgetRequest,
    MemoryOut,
    StoreRequest,
    UpdateRequest,
    as_dict,
    error_responses,
    memory_out,
)
from app.api.scopes import in_body, in_query, memory_in_path, need
from app.errors import ValidationError


class StoreResponse(msgspec.Struct, kw_only=True):
    memory: MemoryOut
    embedding_time_ms: float
    # with a session_id: the session's state after the store (active or ended)
    session_state: str | UnsetType | None = UNSET
    # when the memory was merged into an existing near-identical one (`memory`)
    deduplicated: bool | UnsetType = UNSET
    merged_into: str | UnsetType = UNSET
    duplicate_id: str | UnsetType = UNSET
    warnings: list[str] | UnsetType = UNSET


class DeletedCount(msgspec.Struct, kw_only=True):
    deleted_count: int


class Deduplicated(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    kind: str
    survivor_id: str
    deleted_at: int
    restorable_until: int
    session_id: str | None
    content: str | None


class DeduplicatedList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agent_id: str
    memories: list[Deduplicated]
    count: int


class Restored(msgspec.Struct, kw_only=True):
    restored: bool
    memory: MemoryOut


class BatchStored(msgspec.Struct, kw_only=True):
    id: str
    content: str
    agent_id: str
    tags: list[str]
    importance: float
    created_at: int
    deduplicated: bool | UnsetType = UNSET
    duplicate_id: str | UnsetType = UNSET


class BatchStoreResponse(msgspec.Struct, kw_only=True):
    stored: list[BatchStored]
    stored_count: int
    total_embedding_time_ms: int
    ended_sessions: list[str]


class BatchRecallResponse(msgspec.Struct, kw_only=True):
    memories: list[MemoryOut]
    total: int
    filtered: int
    truncated: bool


def required_agent(agent_id: str | None) -> str:
    if agent_id is None:
        raise ValidationError("the 'agent_id' query parameter is required")
    return agent_id


class MemoryController(Controller):
    path = "/v1/memory"

    @post("/store", status_code=200, sync_to_thread=True,
          responses=error_responses(409, 413, 415),
          opt=need("write", agent=in_body()))
    def store(self, data: JSONBody[StoreRequest], service: Service) -> StoreResponse:
        result = service.memories.store(
            data.agent_id, data.content, memory_type=data.memory_type,
            importance=data.importance, tags=data.tags, metadata=data.metadata,
            session_id=data.session_id, ttl_seconds=data.ttl_seconds,
            expires_at=data.expires_at, event_time=data.event_time)
        body = StoreResponse(memory=memory_out(result.memory),
                             embedding_time_ms=round(result.embedding_ms, 3))
        if result.memory.session_id is not None:
            body.session_state = result.session_states.get(result.memory.session_id)
        if 0 in result.duplicates:
            dup = result.duplicates[0]
            body.deduplicated, body.merged_into, body.duplicate_id = True, result.memory.id, dup
            body.warnings = [f"duplicate of {result.memory.id}: merged into it; restore it as "
                             f"a separate memory with POST /v1/memory/deduplicated/{dup}/"
                             f"restore"]
        return body

    @get("/get/{memory_id:str}", sync_to_thread=True, responses=error_responses(404),
         opt=need("read", agent=memory_in_path()))
    def get_memory(self, memory_id: FromPath[str], service: Service,
                   agent_id: FromQuery[str | None] = None) -> MemoryOut:
        return memory_out(service.memories.get(memory_id, agent_id))

    @put("/update/{memory_id:str}", sync_to_thread=True,
         responses=error_responses(404, 413, 415),
         opt=need("write", agent=in_query()))
    def update(self, memory_id: FromPath[str], data: JSONBody[UpdateRequest],
               service: Service, agent_id: FromQuery[str | None] = None) -> MemoryOut:
        return memory_out(service.memories.update(
            required_agent(agent_id), memory_id, content=data.content, metadata=data.metadata,
            memory_type=data.memory_type, importance=data.importance, tags=data.tags,
            ttl_seconds=data.ttl_seconds, expires_at=data.expires_at))

    @post("/forget", status_code=200, sync_to_thread=True, responses=error_responses(415),
          opt=need("write", agent=in_body()))
    def forget(self, data: JSONBody[ForgetRequest], service: Service) -> DeletedCount:
        count = service.memories.forget(data.agent_id, memory_ids=data.memory_ids,
                                        tags=data.tags, session_id=data.session_id,
                                        before_timestamp=data.before_timestamp)
        return DeletedCount(deleted_count=count)

    @get("/deduplicated", sync_to_thread=True, responses=error_responses(),
         opt=need("read", agent=in_query()))
    def deduplicated(self, service: Service, agent_id: FromQuery[str | None] = None
                     ) -> DeduplicatedList:
        return msgspec.convert(service.memories.list_deduplicated(required_agent(agent_id)),
                               DeduplicatedList)

    @post("/deduplicated/{memory_id:str}/restore", status_code=200, sync_to_thread=True,
          responses=error_responses(404, 409),
          opt=need("write", agent=in_query()))
    def restore(self, memory_id: FromPath[str], service: Service,
                agent_id: FromQuery[str | None] = None) -> Restored:
        memory = service.memories.restore_deduplicated(required_agent(agent_id), memory_id)
        return Restored(restored=True, memory=memory_out(memory))


class BatchController(Controller):
    path = "/v1/memories"

    @post("/store/batch", status_code=200, sync_to_thread=True,
          responses=error_responses(409, 413, 415),
          opt=need("write", agent=in_body()))
    def store_batch(self, data: JSONBody[BatchStoreRequest],
                    service: Service) -> BatchStoreResponse:
        result = service.memories.store_batch(data.agent_id,
                                              [as_dict(item) for item in data.memories])
        stored = []
        for i, m in enumerate(result.memories):
            item = BatchStored(id=m.id, content=m.content, agent_id=m.agent_id, tags=m.tags,
                               importance=m.importance, created_at=m.created_at)
            if i in result.duplicates:
                item.deduplicated, item.duplicate_id = True, result.duplicates[i]
            stored.append(item)
        return BatchStoreResponse(
            stored=stored, stored_count=len(result.memories),
            total_embedding_time_ms=round(result.embedding_ms),
            ended_sessions=sorted(sid for sid, state in result.session_states.items()
                                  if state == "ended"))

    @post("/recall/batch", status_code=200, sync_to_thread=True,
          responses=error_responses(415),
          opt=need("read", agent=in_body()))
    def recall_batch(self, data: JSONBody[BatchRecallRequest],
                     service: Service) -> BatchRecallResponse:
        out = service.memories.batch_recall(data.agent_id, as_dict(data.filter), data.limit)
        return BatchRecallResponse(memories=[memory_out(m) for m in out["memories"]],
                                   total=out["total"], filtered=out["filtered"],
                                   truncated=out["truncated"])

    @delete("/forget/batch", status_code=200, sync_to_thread=True,
            responses=error_responses(415),
            opt=need("write", agent=in_body()))
    def forget_batch(self, data: JSONBody[BatchForgetRequest],
                     service: Service) -> DeletedCount:
        return DeletedCount(deleted_count=service.memories.batch_forget(
            data.agent_id, as_dict(data.filter)))
