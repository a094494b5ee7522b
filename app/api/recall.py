"""/v1/memory/recall and /v1/memory/search -> service.recall."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.params import JSONBody

from app.api.deps import Service
from app.api.schemas import RecallRequest, SearchRequest, lenient
from app.errors import ValidationError


class RecallController(Controller):
    path = "/v1/memory"

    @post("/recall", status_code=200, sync_to_thread=True)
    def recall(self, data: JSONBody[dict[str, Any]], service: Service) -> dict[str, Any]:
        body = data
        req, warnings = lenient(body, RecallRequest)
        if req.rerank_candidates is not None and req.rerank_candidates < 1:
            raise ValidationError("'rerank_candidates' must be at least 1")
        result = service.recall.recall(
            req.agent_id, req.query, top_k=req.top_k, memory_type=req.memory_type,
            min_importance=req.min_importance, tags=req.tags, session_id=req.session_id,
            since=req.since, until=req.until, routing=req.routing, fusion=req.fusion,
            vector_weight=req.vector_weight, neighborhood=req.neighborhood,
            neighborhood_mode=req.neighborhood_mode)
        context = [h.to_dict() for h in result.context]
        if result.context_mode == "inline":  # after the ranked results, marked, no context_of
            context = [{**{k: v for k, v in c.items() if k != "context_of"},
                        "retrieval": "neighborhood"} for c in context]
        out: dict[str, Any] = {
            "memories": [h.to_dict() for h in result.hits]
            + (context if result.context_mode == "inline" else []),
            "context_memories": context if result.context_mode == "separate" else [],
            "rerank_report": {"applied": False, "candidates": result.candidates,
                              "skipped": True, "capped": False},
            "query_embedding_time_ms": round(result.embed_ms, 3),
            "search_time_ms": round(result.search_ms, 3),
            "total_found": len(result.hits),
        }
        if req.include_associated:
            out["associated_memories"] = []
        if warnings:
            out["warnings"] = warnings
        return out

    @post("/search", status_code=200, sync_to_thread=True)
    def search(self, data: JSONBody[SearchRequest], service: Service) -> dict[str, Any]:
        out = service.recall.search(
            data.agent_id, data.query, top_k=data.top_k, memory_type=data.memory_type,
            min_importance=data.min_importance, tags=data.tags, session_id=data.session_id,
            routing=data.routing, vector_weight=data.vector_weight)
        return {"memories": [h.to_dict() for h in out.hits]}
