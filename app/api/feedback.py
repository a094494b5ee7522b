"""Feedback and importance overrides -> service.feedback."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.access import in_body, in_path, in_query, need
from app.api.deps import Service
from app.api.memories import required_agent
from app.api.schemas import (
    FeedbackRequest,
    ImportanceRequest,
    MemoryFeedbackRequest,
    PatchImportanceRequest,
)


class FeedbackController(Controller):
    path = "/v1"

    @post("/memory/feedback", status_code=200, opt=need("write", agent=in_body()),
          sync_to_thread=True)
    def feedback(self, data: JSONBody[FeedbackRequest], service: Service) -> dict[str, Any]:
        return service.feedback.give(data.agent_id, data.memory_id, data.signal)

    @post("/memories/{memory_id:str}/feedback", status_code=200,
          opt=need("write", agent=in_body()), sync_to_thread=True)
    def memory_feedback(self, memory_id: FromPath[str], data: JSONBody[MemoryFeedbackRequest],
                        service: Service) -> dict[str, Any]:
        return service.feedback.give(data.agent_id, memory_id, data.signal)

    @get("/memories/{memory_id:str}/feedback", opt=need("read", agent=in_query()),
         sync_to_thread=True)
    def history(self, memory_id: FromPath[str], service: Service,
                agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.feedback.history(required_agent(agent_id), memory_id)

    @post("/memory/importance", status_code=200, opt=need("write", agent=in_body()),
          sync_to_thread=True)
    def importance(self, data: JSONBody[ImportanceRequest], service: Service) -> dict[str, Any]:
        return service.feedback.set_importance(data.agent_id, data.memory_id,
                                               data.importance).to_dict()

    @patch("/memories/{memory_id:str}/importance", opt=need("write", agent=in_body()),
           sync_to_thread=True)
    def patch_importance(self, memory_id: FromPath[str], data: JSONBody[PatchImportanceRequest],
                         service: Service) -> dict[str, Any]:
        return service.feedback.set_importance(data.agent_id, memory_id,
                                               data.importance).to_dict()

    @get("/feedback/health", opt=need("read", agent=in_query()), sync_to_thread=True)
    def health(self, service: Service, agent_id: FromQuery[str | None] = None
               ) -> dict[str, Any]:
        return service.feedback.health(required_agent(agent_id))

    @get("/agents/{agent_id:str}/feedback/summary", opt=need("read", agent=in_path()),
         sync_to_thread=True)
    def summary(self, agent_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.feedback.summary(agent_id)
