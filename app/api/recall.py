"""/v1/memory/recall and /v1/memory/search -> service.recall."""

from __future__ import annotations

import msgspec
from litestar import Controller, post
from litestar.params import JSONBody
from msgspec import UNSET, UnsetType

from app.api.deps import Service
from app.api.schemas import MemoryOut, RecallRequest, SearchRequest, error_responses, memory_out
from app.api.scopes import in_body, need
from app.errors import ValidationError
from app.models import RecallHit


class Hit(msgspec.Struct, kw_only=True):
    """One result ({Envelope} of the contract): ranked results carry weighted_score and
    rank_score (the sort key); context memories carry context_of (the ranked memory they
    surround) or, inline, retrieval "neighborhood"."""

    memory: MemoryOut
    score: float
    context_of: str | UnsetType = UNSET
    weighted_score: float | UnsetType = UNSET
    rank_score: float | UnsetType = UNSET
    vector_score: float | UnsetType = UNSET
    text_score: float | UnsetType = UNSET
    retrieval: str | UnsetType = UNSET


class RerankReport(msgspec.Struct, kw_only=True):
    applied: bool
    candidates: int
    skipped: bool
    capped: bool


class RecallResponse(msgspec.Struct, kw_only=True):
    memories: list[Hit]
    context_memories: list[Hit]
    rerank_report: RerankReport
    query_embedding_time_ms: float
    search_time_ms: float
    total_found: int
    associated_memories: list[Hit] | UnsetType = UNSET  # with include_associated: none yet


class SearchResponse(msgspec.Struct, kw_only=True):
    memories: list[Hit]


def hit_out(h: RecallHit, inline: bool = False) -> Hit:
    """A hit as clients read it (the same JSON as RecallHit.to_dict); inline context loses
    context_of and is marked retrieval "neighborhood"."""
    out = Hit(memory=memory_out(h.memory), score=round(h.score, 6))
    if h.context_of is not None:  # not ranked: no rank_score, its score is raw
        if inline:
            out.retrieval = "neighborhood"
        else:
            out.context_of = h.context_of
    else:
        out.weighted_score = out.rank_score = round(h.rank_score, 6)
    if h.vector_score is not None:
        out.vector_score = round(h.vector_score, 6)
    if h.text_score is not None:
        out.text_score = round(h.text_score, 6)
    return out


class RecallController(Controller):
    path = "/v1/memory"

    @post("/recall", status_code=200, sync_to_thread=True, responses=error_responses(415),
          opt=need("read", agent=in_body()))
    def recall(self, data: JSONBody[RecallRequest], service: Service) -> RecallResponse:
        if data.rerank_candidates is not None and data.rerank_candidates < 1:
            raise ValidationError("'rerank_candidates' must be at least 1")
        out = service.recall.recall(
            data.agent_id, data.query, top_k=data.top_k, memory_type=data.memory_type,
            min_importance=data.min_importance, tags=data.tags, session_id=data.session_id,
            since=data.since, until=data.until, routing=data.routing, fusion=data.fusion,
            vector_weight=data.vector_weight, neighborhood=data.neighborhood,
            neighborhood_mode=data.neighborhood_mode)
        inline = out.context_mode == "inline"  # after the ranked results, marked
        context = [hit_out(h, inline) for h in out.context]
        body = RecallResponse(
            memories=[hit_out(h) for h in out.hits] + (context if inline else []),
            context_memories=context if out.context_mode == "separate" else [],
            rerank_report=RerankReport(applied=False, candidates=out.candidates, skipped=True,
                                       capped=False),
            query_embedding_time_ms=round(out.embed_ms, 3),
            search_time_ms=round(out.search_ms, 3),
            total_found=len(out.hits))
        if data.include_associated:
            body.associated_memories = []
        return body

    @post("/search", status_code=200, sync_to_thread=True, responses=error_responses(415),
          opt=need("read", agent=in_body()))
    def search(self, data: JSONBody[SearchRequest], service: Service) -> SearchResponse:
        out = service.recall.search(
            data.agent_id, data.query, top_k=data.top_k, memory_type=data.memory_type,
            min_importance=data.min_importance, tags=data.tags, session_id=data.session_id,
            routing=data.routing, vector_weight=data.vector_weight)
        return SearchResponse(memories=[hit_out(h) for h in out.hits])
