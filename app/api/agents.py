"""/v1/agents: list, create, an agent's memories, stats and wake-up context -> service.agents."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from app.api import aliases
from app.api.deps import PreviewChars, Service
from app.api.schemas import CreateAgentRequest


class AgentController(Controller):
    path = "/v1/agents"

    @get("/", sync_to_thread=True)
    def list_agents(self, service: Service) -> list[dict[str, Any]]:
        return service.agents.all()

    @post("/", sync_to_thread=True)
    def create(self, data: JSONBody[CreateAgentRequest],
               service: Service) -> Response[dict[str, Any]]:
        created, info = service.agents.create(data.agent_id)
        body = {**info, "created": created}
        return Response(body, status_code=201 if created else 200)

    @get("/{agent_id:str}/memories", sync_to_thread=True)
    def memories(self, agent_id: FromPath[str], service: Service,
                 memory_type: FromQuery[str | None] = None, limit: FromQuery[int] = 50,
                 offset: FromQuery[int] = 0, include_derived: FromQuery[bool] = False,
                 content_preview_chars: PreviewChars = None) -> list[dict[str, Any]]:
        memories = service.agents.memories(agent_id, memory_type=memory_type, limit=limit,
                                           offset=offset)
        return [m.to_dict(content_preview_chars) for m in memories]

    @post("/{agent_id:str}/memories", status_code=200, sync_to_thread=True)
    def store(self, agent_id: FromPath[str], data: JSONBody[dict[str, Any]],
              service: Service) -> dict[str, Any]:
        """Store, as older GO clients call it (§8)."""
        return aliases.store(service, agent_id, data)

    @get("/{agent_id:str}/stats", sync_to_thread=True)
    def stats(self, agent_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.agents.stats(agent_id)

    @get("/{agent_id:str}/wake-up", sync_to_thread=True)
    def wake_up(self, agent_id: FromPath[str], service: Service, top_n: FromQuery[int] = 20,
                min_importance: FromQuery[float] = 0.0,
                include_derived: FromQuery[bool] = False) -> dict[str, Any]:
        memories, total = service.agents.wake_up(agent_id, top_n=top_n,
                                                 min_importance=min_importance)
        return {"agent_id": agent_id, "memories": [m.to_dict() for m in memories],
                "total_available": total}
