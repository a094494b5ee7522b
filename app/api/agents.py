"""/v1/agents: list, create, an agent's memories, stats and wake-up context -> service.agents."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import PreviewChars, Principal, Service
from app.api.schemas import CreateAgentRequest, MemoryOut, error_responses, memory_out
from app.api.scopes import in_body, in_path, need


class AgentSummary(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agent_id: str
    memory_count: int
    session_count: int
    active_sessions: int
    vector_count: int


class AgentCreated(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agent_id: str
    namespace: str  # _dakera_agent_<agent_id>: where the contract keeps its memories
    dimension: int
    model: str
    created: bool  # false: it existed (status 200 instead of 201)


class AgentStats(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    agent_id: str
    total_memories: int
    memories_by_type: dict[str, int]
    total_sessions: int
    active_sessions: int
    avg_importance: float | None
    oldest_memory_at: int | None
    newest_memory_at: int | None


class WakeUp(msgspec.Struct, kw_only=True):
    agent_id: str
    memories: list[MemoryOut]
    total_available: int


class AgentController(Controller):
    path = "/v1/agents"

    @get("/", sync_to_thread=True, responses=error_responses(),
         opt=need("read", listing=True))
    def list_agents(self, service: Service, principal: Principal) -> list[AgentSummary]:
        return msgspec.convert([a for a in service.agents.all()
                                if principal.reaches_agent(a["agent_id"])], list[AgentSummary])

    @post("/", sync_to_thread=True, status_code=201, responses={
        **error_responses(415),
        200: ResponseSpec(AgentCreated, description="The agent existed already.",
                          generate_examples=False)},
          opt=need("write", agent=in_body()))
    def create(self, data: JSONBody[CreateAgentRequest],
               service: Service) -> Response[AgentCreated]:
        created, info = service.agents.create(data.agent_id)
        body = msgspec.convert({**info, "created": created}, AgentCreated)
        return Response(body, status_code=201 if created else 200)

    @get("/{agent_id:str}/memories", sync_to_thread=True, responses=error_responses(),
         opt=need("read", agent=in_path()))
    def memories(self, agent_id: FromPath[str], service: Service,
                 memory_type: FromQuery[str | None] = None, limit: FromQuery[int] = 50,
                 offset: FromQuery[int] = 0, include_derived: FromQuery[bool] = False,
                 content_preview_chars: PreviewChars = None) -> list[MemoryOut]:
        memories = service.agents.memories(agent_id, memory_type=memory_type, limit=limit,
                                           offset=offset)
        return [memory_out(m, content_preview_chars) for m in memories]

    @get("/{agent_id:str}/stats", sync_to_thread=True, responses=error_responses(),
         opt=need("read", agent=in_path()))
    def stats(self, agent_id: FromPath[str], service: Service) -> AgentStats:
        return msgspec.convert(service.agents.stats(agent_id), AgentStats)

    @get("/{agent_id:str}/wake-up", sync_to_thread=True, responses=error_responses(),
         opt=need("read", agent=in_path()))
    def wake_up(self, agent_id: FromPath[str], service: Service, top_n: FromQuery[int] = 20,
                min_importance: FromQuery[float] = 0.0,
                include_derived: FromQuery[bool] = False) -> WakeUp:
        memories, total = service.agents.wake_up(agent_id, top_n=top_n,
                                                 min_importance=min_importance)
        return WakeUp(agent_id=agent_id, memories=[memory_out(m) for m in memories],
                      total_available=total)
