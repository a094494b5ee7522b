"""Feedback, importance overrides, the duplicate trash, memory policies and decay admin."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Router, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import Service
from app.api.schemas import (
    DecayConfigRequest,
    FeedbackRequest,
    MemoryFeedbackRequest,
    PatchImportanceRequest,
)
from app.errors import NotFoundError, ValidationError

AGENT_NAMESPACE = "_dakera_agent_"


def _required(agent_id: str | None) -> str:
    if agent_id is None:
        raise ValidationError("the 'agent_id' query parameter is required")
    return agent_id


class FeedbackController(Controller):
    path = "/v1"

    @post("/memory/feedback", status_code=200, sync_to_thread=True)
    def feedback(self, data: JSONBody[FeedbackRequest], service: Service) -> dict[str, Any]:
        return service.feedback(data.agent_id, data.memory_id, data.signal)

    @post("/memories/{memory_id:str}/feedback", status_code=200, sync_to_thread=True)
    def memory_feedback(self, memory_id: FromPath[str], data: JSONBody[MemoryFeedbackRequest],
                        service: Service) -> dict[str, Any]:
        return service.feedback(data.agent_id, memory_id, data.signal)

    @get("/memories/{memory_id:str}/feedback", sync_to_thread=True)
    def history(self, memory_id: FromPath[str], service: Service,
                agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.feedback_history(_required(agent_id), memory_id)

    @patch("/memories/{memory_id:str}/importance", sync_to_thread=True)
    def patch_importance(self, memory_id: FromPath[str], data: JSONBody[PatchImportanceRequest],
                         service: Service) -> dict[str, Any]:
        return service.set_importance(data.agent_id, memory_id, data.importance).to_dict()

    @get("/feedback/health", sync_to_thread=True)
    def health(self, service: Service, agent_id: FromQuery[str | None] = None
               ) -> dict[str, Any]:
        return service.feedback_health(_required(agent_id))

    @get("/agents/{agent_id:str}/feedback/summary", sync_to_thread=True)
    def summary(self, agent_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.feedback_summary(agent_id)

    @get("/memory/deduplicated", sync_to_thread=True)
    def deduplicated(self, service: Service, agent_id: FromQuery[str | None] = None
                     ) -> dict[str, Any]:
        return service.list_deduplicated(_required(agent_id))

    @post("/memory/deduplicated/{memory_id:str}/restore", status_code=200, sync_to_thread=True)
    def restore(self, memory_id: FromPath[str], service: Service,
                agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        memory = service.restore_deduplicated(_required(agent_id), memory_id)
        return {"restored": True, "memory": memory.to_dict()}

    @get("/namespaces/{namespace:str}/memory_policy", sync_to_thread=True)
    def get_policy(self, namespace: FromPath[str], service: Service) -> dict[str, Any]:
        return service.memory_policy(_agent_of(namespace))

    @put("/namespaces/{namespace:str}/memory_policy", sync_to_thread=True)
    def put_policy(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
                   service: Service) -> dict[str, Any]:
        return service.set_memory_policy(_agent_of(namespace), data)


def _agent_of(namespace: str) -> str:
    if not namespace.startswith(AGENT_NAMESPACE):
        raise NotFoundError(f"namespace {namespace!r} not found (this server holds agent "
                            f"namespaces {AGENT_NAMESPACE}<agent_id> only)",
                            code="NAMESPACE_NOT_FOUND", resource="namespace")
    return namespace.removeprefix(AGENT_NAMESPACE)


class DecayAdminController(Controller):
    path = "/decay"

    @get("/config", sync_to_thread=True)
    def config(self, service: Service) -> dict[str, Any]:
        return service.decay_config()

    @put("/config", sync_to_thread=True)
    def set_config(self, data: JSONBody[DecayConfigRequest], service: Service
                   ) -> dict[str, Any]:
        return service.set_decay_config(strategy=data.strategy,
                                        half_life_hours=data.half_life_hours,
                                        min_importance=data.min_importance,
                                        delete_below_floor=data.delete_below_floor)

    @get("/stats", sync_to_thread=True)
    def stats(self, service: Service) -> dict[str, Any]:
        return service.decay_stats()

    @post("/run", status_code=200, sync_to_thread=True)
    def run(self, service: Service) -> dict[str, Any]:
        """Run a decay pass now (also removes expired memories)."""
        return {**service.run_decay(), "stats": service.decay_stats()}


# Admin routes live at both /v1/admin/... and /admin/..., as in the contract.
admin_routers = [Router(path=prefix, route_handlers=[DecayAdminController])
                 for prefix in ("/v1/admin", "/admin")]
