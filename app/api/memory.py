"""/v1/memory/*: store, recall, search, get, update, forget."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import Service
from app.api.schemas import (
    ForgetRequest,
    ImportanceRequest,
    RecallRequest,
    SearchRequest,
    StoreRequest,
    UpdateRequest,
)
from app.errors import ValidationError


class MemoryController(Controller):
    path = "/v1/memory"

    @post("/store", status_code=200, sync_to_thread=True)
    def store(self, data: JSONBody[StoreRequest], service: Service) -> dict[str, Any]:
        result = service.store(
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

    @post("/recall", status_code=200, sync_to_thread=True)
    def recall(self, data: JSONBody[RecallRequest], service: Service) -> dict[str, Any]:
        if data.rerank_candidates is not None and data.rerank_candidates < 1:
            raise ValidationError("'rerank_candidates' must be at least 1")
        out = service.recall(
            data.agent_id, data.query, top_k=data.top_k, memory_type=data.memory_type,
            min_importance=data.min_importance, tags=data.tags, session_id=data.session_id,
            since=data.since, until=data.until, routing=data.routing, fusion=data.fusion,
            vector_weight=data.vector_weight, neighborhood=data.neighborhood,
            neighborhood_mode=data.neighborhood_mode)
        context = [h.to_dict() for h in out.context]
        if out.context_mode == "inline":  # after the ranked results, marked, no context_of
            context = [{**{k: v for k, v in c.items() if k != "context_of"},
                        "retrieval": "neighborhood"} for c in context]
        body: dict[str, Any] = {
            "memories": [h.to_dict() for h in out.hits]
            + (context if out.context_mode == "inline" else []),
            "context_memories": context if out.context_mode == "separate" else [],
            "rerank_report": {"applied": False, "candidates": out.candidates,
                              "skipped": True, "capped": False},
            "query_embedding_time_ms": round(out.embed_ms, 3),
            "search_time_ms": round(out.search_ms, 3),
            "total_found": len(out.hits),
            "warnings": out.warnings,
        }
        if data.include_associated:
            body["associated_memories"] = []
        return body

    @post("/search", status_code=200, sync_to_thread=True)
    def search(self, data: JSONBody[SearchRequest], service: Service) -> dict[str, Any]:
        out = service.recall(
            data.agent_id, data.query, top_k=data.top_k, memory_type=data.memory_type,
            min_importance=data.min_importance, tags=data.tags, session_id=data.session_id,
            routing=data.routing, vector_weight=data.vector_weight, neighborhood=False,
            reinforce=False)
        return {"memories": [h.to_dict() for h in out.hits]}

    @get("/get/{memory_id:str}", sync_to_thread=True)
    def get_memory(self, memory_id: FromPath[str], service: Service,
                   agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.get(memory_id, agent_id).to_dict()

    @put("/update/{memory_id:str}", sync_to_thread=True)
    def update(self, memory_id: FromPath[str], data: JSONBody[UpdateRequest],
               service: Service, agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        if agent_id is None:
            raise ValidationError("the 'agent_id' query parameter is required")
        return service.update(agent_id, memory_id, content=data.content, metadata=data.metadata,
                              memory_type=data.memory_type, importance=data.importance,
                              tags=data.tags, ttl_seconds=data.ttl_seconds,
                              expires_at=data.expires_at).to_dict()

    @post("/importance", status_code=200, sync_to_thread=True)
    def importance(self, data: JSONBody[ImportanceRequest], service: Service) -> dict[str, Any]:
        return service.set_importance(data.agent_id, data.memory_id, data.importance).to_dict()

    @post("/forget", status_code=200, sync_to_thread=True)
    def forget(self, data: JSONBody[ForgetRequest], service: Service) -> dict[str, Any]:
        count = service.forget(data.agent_id, memory_ids=data.memory_ids, tags=data.tags,
                               session_id=data.session_id,
                               before_timestamp=data.before_timestamp)
        return {"deleted_count": count}
