"""The knowledge graph: /v1/memories/{id}/graph|path|links, /v1/knowledge/... (similarity
graphs, edge queries, paths, exports, the cross-agent network) and /v1/agents/{id}/graph/export
-> service.graph and service.knowledge."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import UNSET, UnsetType

from app.api.deps import Service
from app.api.schemas import (
    CrossAgentRequest,
    FullGraphRequest,
    KnowledgeGraphRequest,
    LinkRequest,
    error_responses,
)
from app.api.scopes import in_body, in_path, in_query, memory_in_path, need


class Out(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A response body built from what the service answers: a key it does not declare is
    an error (caught by the tests), not silently dropped."""


class EdgeOut(Out):
    """An edge between two memories: from_id -> to_id (also as source_id/target_id), its
    type (related_to, shares_entity, precedes, linked_by, supersedes), weight (0-1) and
    the label of an explicit link."""

    from_id: str
    to_id: str
    source_id: str
    target_id: str
    edge_type: str
    weight: float
    created_at: int
    label: str | UnsetType = UNSET


class GraphNodeOut(Out):
    memory_id: str
    content_preview: str
    depth: int
    importance: float
    memory_type: str
    edges: list[EdgeOut]


class MemoryGraphOut(Out):
    root_id: str
    agent_id: str
    depth: int
    node_count: int
    edge_count: int
    nodes: list[GraphNodeOut]
    edges: list[EdgeOut]
    truncated: bool


class PathOut(Out):
    from_id: str
    to_id: str
    source_id: str
    target_id: str
    path: list[str]
    hops: int
    hop_count: int
    edges: list[EdgeOut]


class KgPathOut(Out):
    agent_id: str
    from_id: str
    to_id: str
    path: list[str]
    hops: int
    hop_count: int
    edges: list[EdgeOut]


class LinkOut(Out):
    edge: EdgeOut
    from_id: str
    to_id: str
    edge_type: str
    weight: float
    created_at: int
    label: str | UnsetType = UNSET


class KgQueryOut(Out):
    agent_id: str
    node_count: int
    edge_count: int
    edges: list[EdgeOut]
    truncated: bool


class KgExportOut(Out):
    agent_id: str
    format: str
    node_count: int
    edge_count: int
    edges: list[EdgeOut]


class AgentGraphExportOut(Out):
    agent_id: str
    namespace: str
    format: str
    node_count: int
    edge_count: int
    edges: list[EdgeOut]


class SimNodeOut(Out):
    """A memory of a similarity graph (content cut to content_preview_chars when asked)."""

    id: str
    agent_id: str
    content: str
    content_len: int
    content_truncated: bool
    importance: float
    memory_type: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: int
    depth: int | UnsetType = UNSET  # seeded graphs: steps from the seed


class SimEdgeOut(Out):
    """Two similar or linked memories: similarity = their cosine (0-1); relationship =
    related_to for similarity alone, else the most telling stored edge type."""

    source: str
    target: str
    similarity: float
    relationship: str
    relationships: list[str]


class ClusterOut(Out):
    cluster_id: int
    size: int
    memory_ids: list[str]
    central_id: str  # its most important memory


class KnowledgeGraphOut(Out):
    agent_id: str
    root_id: str
    depth: int
    nodes: list[SimNodeOut]
    edges: list[SimEdgeOut]
    node_count: int
    edge_count: int
    clusters: list[ClusterOut]


class FullGraphStats(Out):
    node_count: int
    edge_count: int
    cluster_count: int
    clustered_nodes: int
    avg_degree: float
    density: float


class FullGraphOut(Out):
    agent_id: str
    nodes: list[SimNodeOut]
    edges: list[SimEdgeOut]
    clusters: list[ClusterOut]
    stats: FullGraphStats


class NetworkAgentOut(Out):
    agent_id: str
    memory_count: int
    avg_importance: float
    node_count: int


class CrossEdgeOut(Out):
    source: str
    target: str
    source_agent: str
    target_agent: str
    similarity: float


class NetworkStats(Out):
    total_agents: int
    total_nodes: int
    total_cross_edges: int
    density: float  # cross edges / pairs of memories of two different agents


class NetworkOut(Out):
    agents: list[NetworkAgentOut]
    nodes: list[SimNodeOut]
    edges: list[CrossEdgeOut]
    node_count: int
    stats: NetworkStats


def shaped(struct: Any, value: Any) -> Any:
    return msgspec.convert(value, struct)


class MemoryGraphController(Controller):
    path = "/v1/memories/{memory_id:str}"

    @get("/graph", sync_to_thread=True, responses=error_responses(404),
          opt=need("read", agent=memory_in_path()))
    def graph(self, memory_id: FromPath[str], service: Service, depth: FromQuery[int] = 1,
              agent_id: FromQuery[str | None] = None) -> MemoryGraphOut:
        return shaped(MemoryGraphOut, service.graph.memory_graph(memory_id, depth, agent_id))

    @get("/path", sync_to_thread=True, responses=error_responses(404),
          opt=need("read", agent=memory_in_path()))
    def path_to(self, memory_id: FromPath[str], service: Service,
                to: FromQuery[str | None] = None, target: FromQuery[str | None] = None,
                agent_id: FromQuery[str | None] = None) -> PathOut:
        # `target=` is what older clients send for `to=`.
        return shaped(PathOut, service.graph.memory_path(
            memory_id, to if to is not None else target, agent_id))

    @post("/links", status_code=200, sync_to_thread=True,
          responses=error_responses(404, 415, 422),
          opt=need("write", agent=in_body()))
    def link(self, memory_id: FromPath[str], data: JSONBody[LinkRequest],
             service: Service) -> LinkOut:
        return shaped(LinkOut, service.graph.link(memory_id, data.target_id, data.agent_id,
                                                  data.label))


class KnowledgeController(Controller):
    path = "/v1/knowledge"

    @post("/graph", status_code=200, sync_to_thread=True, responses=error_responses(404, 415),
          opt=need("read", agent=in_body()))
    def graph(self, data: JSONBody[KnowledgeGraphRequest], service: Service
              ) -> KnowledgeGraphOut:
        return shaped(KnowledgeGraphOut, service.knowledge.knowledge_graph(
            data.agent_id, data.memory_id, depth=data.depth,
            min_similarity=data.min_similarity))

    @post("/graph/full", status_code=200, sync_to_thread=True, responses=error_responses(415),
          opt=need("read", agent=in_body()))
    def full(self, data: JSONBody[FullGraphRequest], service: Service) -> FullGraphOut:
        return shaped(FullGraphOut, service.knowledge.full_graph(
            data.agent_id, max_nodes=data.max_nodes, min_similarity=data.min_similarity,
            cluster_threshold=data.cluster_threshold,
            max_edges_per_node=data.max_edges_per_node,
            content_preview_chars=data.content_preview_chars))

    @post("/network/cross-agent", status_code=200, sync_to_thread=True,
          responses=error_responses(415),
          opt=need("admin", every_namespace=True))
    def cross_agent(self, data: JSONBody[CrossAgentRequest], service: Service) -> NetworkOut:
        return shaped(NetworkOut, service.knowledge.cross_agent(
            agent_ids=data.agent_ids, min_similarity=data.min_similarity,
            max_nodes_per_agent=data.max_nodes_per_agent, min_importance=data.min_importance,
            max_cross_edges=data.max_cross_edges,
            content_preview_chars=data.content_preview_chars))

    @get("/query", sync_to_thread=True, responses=error_responses(404),
          opt=need("read", agent=in_query()))
    def query(self, service: Service, agent_id: FromQuery[str | None] = None,
              root_id: FromQuery[str | None] = None, edge_type: FromQuery[str | None] = None,
              min_weight: FromQuery[float | None] = None, max_depth: FromQuery[int] = 3,
              limit: FromQuery[int] = 100) -> KgQueryOut:
        return shaped(KgQueryOut, service.graph.query(
            agent_id, root_id=root_id, edge_type=edge_type, min_weight=min_weight,
            max_depth=max_depth, limit=limit))

    @get("/path", sync_to_thread=True, responses=error_responses(404),
          opt=need("read", agent=in_query()))
    def path_between(self, service: Service, agent_id: FromQuery[str | None] = None,
                     from_id: Annotated[str | None, QueryParameter(name="from")] = None,
                     to: FromQuery[str | None] = None) -> KgPathOut:
        return shaped(KgPathOut, service.graph.knowledge_path(agent_id, from_id, to))

    @get("/export", sync_to_thread=True, responses=error_responses(),
          opt=need("read", agent=in_query()))
    def export(self, service: Service, agent_id: FromQuery[str | None] = None,
               format: FromQuery[str] = "json") -> Response[KgExportOut | str]:
        """JSON, or with format=graphml the GraphML document (application/xml)."""
        out = service.graph.export(agent_id, format)
        if isinstance(out, str):
            return Response(out, media_type="application/xml")
        return Response(shaped(KgExportOut, out), media_type="application/json")


class AgentGraphController(Controller):
    path = "/v1/agents/{agent_id:str}/graph"

    @get("/export", sync_to_thread=True, responses=error_responses(),
          opt=need("read", agent=in_path()))
    def export(self, agent_id: FromPath[str], service: Service,
               format: FromQuery[str | None] = None) -> AgentGraphExportOut:
        # format is ignored, as by Dakera: always JSON
        return shaped(AgentGraphExportOut, service.graph.agent_export(agent_id))


controllers = [MemoryGraphController, KnowledgeController, AgentGraphController]
