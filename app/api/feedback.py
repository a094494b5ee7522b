"""Feedback and importance overrides -> service.feedback."""

from __future__ import annotations

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import Service
from app.api.memories import required_agent
from app.api.schemas import (
    FeedbackRequest,
    ImportanceRequest,
    MemoryFeedbackRequest,
    MemoryOut,
    PatchImportanceRequest,
    error_responses,
    memory_out,
)
from app.api.scopes import in_body, in_path, in_query, need


class FeedbackGiven(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    memory_id: str
    new_importance: float
    signal: str  # upvote, downvote or flag


class FeedbackEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    signal: str
    timestamp: int
    old_importance: float
    new_importance: float


class FeedbackHistory(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    memory_id: str
    entries: list[FeedbackEntry]


class FeedbackHealth(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agent_id: str
    health_score: float
    memory_count: int
    avg_importance: float | None


class FeedbackSummary(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agent_id: str
    upvotes: int
    downvotes: int
    flags: int
    total_feedback: int
    health_score: float


class FeedbackController(Controller):
    path = "/v1"

    @post("/memory/feedback", status_code=200, sync_to_thread=True,
          responses=error_responses(404, 415),
          opt=need("write", agent=in_body()))
    def feedback(self, data: JSONBody[FeedbackRequest], service: Service) -> FeedbackGiven:
        return msgspec.convert(service.feedback.give(data.agent_id, data.memory_id,
                                                     data.signal), FeedbackGiven)

    @post("/memories/{memory_id:str}/feedback", status_code=200, sync_to_thread=True,
          responses=error_responses(404, 415),
          opt=need("write", agent=in_body()))
    def memory_feedback(self, memory_id: FromPath[str], data: JSONBody[MemoryFeedbackRequest],
                        service: Service) -> FeedbackGiven:
        return msgspec.convert(service.feedback.give(data.agent_id, memory_id, data.signal),
                               FeedbackGiven)

    @get("/memories/{memory_id:str}/feedback", sync_to_thread=True,
         responses=error_responses(),
         opt=need("read", agent=in_query()))
    def history(self, memory_id: FromPath[str], service: Service,
                agent_id: FromQuery[str | None] = None) -> FeedbackHistory:
        return msgspec.convert(service.feedback.history(required_agent(agent_id), memory_id),
                               FeedbackHistory)

    @post("/memory/importance", status_code=200, sync_to_thread=True,
          responses=error_responses(404, 415),
          opt=need("write", agent=in_body()))
    def importance(self, data: JSONBody[ImportanceRequest], service: Service) -> MemoryOut:
        return memory_out(service.feedback.set_importance(data.agent_id, data.memory_id,
                                                          data.importance))

    @patch("/memories/{memory_id:str}/importance", sync_to_thread=True,
           responses=error_responses(404, 415),
           opt=need("write", agent=in_body()))
    def patch_importance(self, memory_id: FromPath[str], data: JSONBody[PatchImportanceRequest],
                         service: Service) -> MemoryOut:
        return memory_out(service.feedback.set_importance(data.agent_id, memory_id,
                                                          data.importance))

    @get("/feedback/health", sync_to_thread=True, responses=error_responses(),
         opt=need("read", agent=in_query()))
    def health(self, service: Service, agent_id: FromQuery[str | None] = None
               ) -> FeedbackHealth:
        return msgspec.convert(service.feedback.health(required_agent(agent_id)),
                               FeedbackHealth)

    @get("/agents/{agent_id:str}/feedback/summary", sync_to_thread=True,
         responses=error_responses(),
         opt=need("read", agent=in_path()))
    def summary(self, agent_id: FromPath[str], service: Service) -> FeedbackSummary:
        return msgspec.convert(service.feedback.summary(agent_id), FeedbackSummary)
