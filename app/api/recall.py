"""/v1/memory/recall and /v1/memory/search -> service.recall."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.params import JSONBody

from app.api.deps import Service
from app.api.schemas import RecallRequest, SearchRequest
from app.errors import ValidationError


class RecallController(Controller):
    path = "/v1/memory"

    @post("/recall", status_code=200, sync_to_thread=True)
    def recall(self, data: JSONBody[RecallRequest], service: Service) -> dict[str, Any]:
        if data.rerank_candidates is not None and data.rerank_candidates < 1:
            raise ValidationError("'rerank_candidates' must be at least 1")
        out = service.recall.recall(
            data.agent_id, data.query, top_k=data.top_k, memory_type=data.memory_type,
            min_importance=data.min_importance, tags=data.tags, session_id=data.session_id,
            since=data.since, until=data.until, routing=data.routing, fusion=data.fusion,
            vector_weight=data.vector_weight, neighborhood=data.neighborhood,
            neighborhood_mode=data.neighborhood_mode, include_associated=data.include_associated,
            associated_memories_cap=data.associated_memories_cap,
            associated_memories_depth=data.associated_memories_depth,
            associated_memories_min_weight=data.associated_memories_min_weight)
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
        }
        if out.associated is not None:
            body["associated_memories"] = [a.to_dict() for a in out.associated]
        return body

    @post("/search", status_code=200, sync_to_thread=True)
    def search(self, data: JSONBody[SearchRequest], service: Service) -> dict[str, Any]:
        out = service.recall.search(
            data.agent_id, data.query, top_k=data.top_k, memory_type=data.memory_type,
            min_importance=data.min_importance, tags=data.tags, session_id=data.session_id,
            routing=data.routing, vector_weight=data.vector_weight)
        return {"memories": [h.to_dict() for h in out.hits]}
