"""The knowledge graph: /v1/memories/{id}/graph|path|links, /v1/knowledge/... (similarity
graphs, edge queries, paths, exports, the cross-agent network) and /v1/agents/{id}/graph/export
-> service.graph and service.knowledge."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app.api.deps import Service
from app.api.schemas import (
    CrossAgentRequest,
    FullGraphRequest,
    KnowledgeGraphRequest,
    LinkRequest,
)


class MemoryGraphController(Controller):
    path = "/v1/memories/{memory_id:str}"

    @get("/graph", sync_to_thread=True)
    def graph(self, memory_id: FromPath[str], service: Service, depth: FromQuery[int] = 1,
              agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.graph.memory_graph(memory_id, depth, agent_id)

    @get("/path", sync_to_thread=True)
    def path_to(self, memory_id: FromPath[str], service: Service,
                to: FromQuery[str | None] = None, target: FromQuery[str | None] = None,
                agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        # `target=` is what older clients send for `to=`.
        return service.graph.memory_path(memory_id, to if to is not None else target, agent_id)

    @post("/links", status_code=200, sync_to_thread=True)
    def link(self, memory_id: FromPath[str], data: JSONBody[LinkRequest],
             service: Service) -> dict[str, Any]:
        return service.graph.link(memory_id, data.target_id, data.agent_id, data.label)


class KnowledgeController(Controller):
    path = "/v1/knowledge"

    @post("/graph", status_code=200, sync_to_thread=True)
    def graph(self, data: JSONBody[KnowledgeGraphRequest], service: Service) -> dict[str, Any]:
        return service.knowledge.knowledge_graph(data.agent_id, data.memory_id,
                                                 depth=data.depth,
                                                 min_similarity=data.min_similarity)

    @post("/graph/full", status_code=200, sync_to_thread=True)
    def full(self, data: JSONBody[FullGraphRequest], service: Service) -> dict[str, Any]:
        return service.knowledge.full_graph(
            data.agent_id, max_nodes=data.max_nodes, min_similarity=data.min_similarity,
            cluster_threshold=data.cluster_threshold,
            max_edges_per_node=data.max_edges_per_node,
            content_preview_chars=data.content_preview_chars)

    @post("/network/cross-agent", status_code=200, sync_to_thread=True)
    def cross_agent(self, data: JSONBody[CrossAgentRequest], service: Service
                    ) -> dict[str, Any]:
        return service.knowledge.cross_agent(
            agent_ids=data.agent_ids, min_similarity=data.min_similarity,
            max_nodes_per_agent=data.max_nodes_per_agent, min_importance=data.min_importance,
            max_cross_edges=data.max_cross_edges,
            content_preview_chars=data.content_preview_chars)

    @get("/query", sync_to_thread=True)
    def query(self, service: Service, agent_id: FromQuery[str | None] = None,
              root_id: FromQuery[str | None] = None, edge_type: FromQuery[str | None] = None,
              min_weight: FromQuery[float | None] = None, max_depth: FromQuery[int] = 3,
              limit: FromQuery[int] = 100) -> dict[str, Any]:
        return service.graph.query(agent_id, root_id=root_id, edge_type=edge_type,
                                   min_weight=min_weight, max_depth=max_depth, limit=limit)

    @get("/path", sync_to_thread=True)
    def path_between(self, service: Service, agent_id: FromQuery[str | None] = None,
                     from_id: Annotated[str | None, QueryParameter(query="from")] = None,
                     to: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.graph.knowledge_path(agent_id, from_id, to)

    @get("/export", sync_to_thread=True)
    def export(self, service: Service, agent_id: FromQuery[str | None] = None,
               format: FromQuery[str] = "json") -> Response[Any]:
        out = service.graph.export(agent_id, format)
        if isinstance(out, str):
            return Response(out, media_type="application/xml")
        return Response(out, media_type="application/json")


class AgentGraphController(Controller):
    path = "/v1/agents/{agent_id:str}/graph"

    @get("/export", sync_to_thread=True)
    def export(self, agent_id: FromPath[str], service: Service,
               format: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.graph.agent_export(agent_id)  # format is ignored, as by Dakera


controllers = [MemoryGraphController, KnowledgeController, AgentGraphController]
