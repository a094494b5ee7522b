"""Consolidation and deduplication: POST /v1/memory/consolidate, /v1/agents/{id}/consolidate
(+ its log and config), POST /v1/knowledge/deduplicate, and AutoPilot under /v1/admin and
/admin; summarize and compress answer 501 -> service.consolidation and service.autopilot."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Router, get, patch, post, put
from litestar.params import FromPath, JSONBody

from app.api.deps import Service
from app.api.schemas import ConsolidateRequest, DeduplicateRequest, TriggerRequest
from app.errors import ValidationError


class ConsolidationController(Controller):
    path = "/v1"

    @post("/memory/consolidate", status_code=200, sync_to_thread=True)
    def consolidate(self, data: JSONBody[ConsolidateRequest], service: Service
                    ) -> dict[str, Any]:
        if data.dry_run:
            raise ValidationError("consolidate has no dry run: it merges the memories. "
                                  "Preview duplicates with POST /v1/knowledge/deduplicate "
                                  "and dry_run true")
        return service.consolidation.consolidate(
            data.agent_id, memory_ids=data.memory_ids, threshold=data.threshold,
            target_type=data.target_type)

    @post("/agents/{agent_id:str}/consolidate", status_code=200, sync_to_thread=True)
    def consolidate_agent(self, agent_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.consolidation.consolidate_agent(agent_id)

    @get("/agents/{agent_id:str}/consolidation/log", sync_to_thread=True)
    def log(self, agent_id: FromPath[str], service: Service) -> list[dict[str, Any]]:
        return service.consolidation.log(agent_id)

    @get("/agents/{agent_id:str}/consolidation/config", sync_to_thread=True)
    def config(self, agent_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.consolidation.config(agent_id)

    @patch("/agents/{agent_id:str}/consolidation/config", sync_to_thread=True)
    def set_config(self, agent_id: FromPath[str], data: JSONBody[dict[str, Any]],
                   service: Service) -> dict[str, Any]:
        return service.consolidation.set_config(agent_id, data)

    @post("/agents/{agent_id:str}/compress", status_code=200, sync_to_thread=True)
    def compress(self, agent_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.consolidation.compress(agent_id)

    @post("/knowledge/summarize", status_code=200, sync_to_thread=True)
    def summarize(self, service: Service) -> dict[str, Any]:
        return service.consolidation.summarize()

    @post("/knowledge/deduplicate", status_code=200, sync_to_thread=True)
    def deduplicate(self, data: JSONBody[DeduplicateRequest], service: Service
                    ) -> dict[str, Any]:
        return service.consolidation.deduplicate(data.agent_id, dry_run=data.dry_run,
                                                 threshold=data.threshold,
                                                 memory_type=data.memory_type)


class AutopilotController(Controller):
    path = "/autopilot"

    @get("/status", sync_to_thread=True)
    def status(self, service: Service) -> dict[str, Any]:
        return service.autopilot.status()

    @put("/config", sync_to_thread=True)
    def config(self, data: JSONBody[dict[str, Any]], service: Service) -> dict[str, Any]:
        return service.autopilot.set_config(data)

    @post("/trigger", status_code=200, sync_to_thread=True)
    def trigger(self, data: JSONBody[TriggerRequest], service: Service) -> dict[str, Any]:
        return service.autopilot.trigger(data.action)


# Admin routes live at both /v1/admin/... and /admin/..., as in the contract.
controllers: list[type[Controller] | Router] = [
    ConsolidationController,
               *(Router(path=prefix, route_handlers=[AutopilotController])
                 for prefix in ("/v1/admin", "/admin"))]
