"""The knowledge graph: explicit links, neighbourhoods and paths between memories, edge
queries, exports (JSON and GraphML), and the graph neighbours recall returns as associated
memories. Similarity graphs built on the fly (seeded, full, cross-agent) are in
app/service/similarity.py; the edges stored with each memory are made by
app/service/linking.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from app import validate
from app.errors import NotFoundError, UnprocessableError, ValidationError
from app.models import EDGE_TYPES, Associated, Edge, Memory, RecallHit
from app.service.agents import AGENT_NAMESPACE_PREFIX
from app.service.traverse import Limits, PathLimitError, neighbourhood, shortest_path
from app.store import Store, Tx

MAX_DEPTH = 5  # graph depth cap of the contract
MAX_PATH_HOPS = 6
PREVIEW_CHARS = 200
QUERY_LIMIT, MAX_QUERY_LIMIT = 100, 1000
EXPORT_PAGE = 5000
MAX_LABEL_CHARS = 256
GRAPH_LIMITS = Limits(per_node=50, max_nodes=500, seconds=2.0)
PATH_LIMITS = Limits(per_node=50, max_nodes=20_000, seconds=2.0)
ASSOCIATED_LIMITS = Limits(per_node=10, max_nodes=200, seconds=0.5)


def edge_view(e: Edge, ids: dict[int, str]) -> dict[str, Any]:
    """An edge as the clients read it (from_id/to_id, also as source_id/target_id)."""
    out: dict[str, Any] = {"from_id": ids[e.src], "to_id": ids[e.dst],
                           "source_id": ids[e.src], "target_id": ids[e.dst],
                           "edge_type": e.edge_type, "weight": round(e.weight, 6),
                           "created_at": e.created_at}
    if e.label is not None:
        out["label"] = e.label
    return out


def edge_types(value: Any, field: str = "edge_type") -> list[str] | None:
    """A comma-separated list (or a list) of edge types; None: every type."""
    if value is None or value == "":
        return None
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError(f"'{field}' must be edge types separated by commas")
    out = [n.strip().lower() for n in names if n.strip()]
    unknown = [n for n in out if n not in EDGE_TYPES]
    if unknown:
        raise ValidationError(f"'{field}': unknown edge type {unknown[0]!r}; the types are "
                              f"{', '.join(EDGE_TYPES)}")
    return out or None


class Graph:
    def __init__(self, store: Store, now: Callable[[], int],
                 find_memory: Callable[[Any, Any], Memory]) -> None:
        self.db = store
        self.now = now
        self.find = find_memory  # Memories.get: a memory by id (and agent)

    def _load(self, rowids: list[int]) -> dict[int, Memory]:
        return self.db.memories.by_rowids(rowids, self.now()) if rowids else {}

    # -- explicit links ---------------------------------------------------------------

    def link(self, memory_id: Any, target_id: Any, agent_id: Any, label: Any = None
             ) -> dict[str, Any]:
        """An explicit linked_by edge from one memory of the agent to another (weight 1.0).
        Linking again keeps one edge and takes the new label."""
        if agent_id is None:
            raise UnprocessableError("'agent_id' is required: the agent holding both memories")
        agent = validate.agent_id(agent_id)
        if not isinstance(target_id, str) or not target_id:
            raise ValidationError("'target_id' is required")
        if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL_CHARS):
            raise ValidationError(f"'label' must be a string of at most {MAX_LABEL_CHARS} "
                                  "characters")
        source = self.find(memory_id, agent)
        target = self.find(target_id, agent)
        if source.rowid == target.rowid:
            raise ValidationError("a memory cannot be linked to itself")
        edge = Edge(source.rowid, target.rowid, "linked_by", 1.0, self.now(), label)

        def job(tx: Tx) -> Edge | None:
            tx.edges.add([edge])
            return tx.edges.get(edge.src, edge.dst, edge.edge_type)

        stored = self.db.write(job) or edge
        view = edge_view(stored, {source.rowid: source.id, target.rowid: target.id})
        return {"edge": view, **{k: view[k] for k in ("from_id", "to_id", "edge_type",
                                                      "weight", "created_at")},
                **({"label": stored.label} if stored.label is not None else {})}

    def restore_edges(self, agent_id: str, edges: Sequence[dict[str, Any]]) -> int:
        """Put back exported edges between memories the agent holds (for an import): each
        {from_id, to_id, edge_type, weight?, created_at?, label?}. Edges to memories the
        agent does not hold are skipped. Returns how many were written."""
        ids = {e.get("from_id") for e in edges} | {e.get("to_id") for e in edges}
        rowids = self.db.memories.rowids_by_id(agent_id, [i for i in ids if isinstance(i, str)])
        now = self.now()
        out = []
        for e in edges:
            src, dst = rowids.get(e.get("from_id", "")), rowids.get(e.get("to_id", ""))
            if src is None or dst is None or src == dst or e.get("edge_type") not in EDGE_TYPES:
                continue
            weight = e.get("weight", 1.0)
            out.append(Edge(src, dst, e["edge_type"],
                            float(weight) if isinstance(weight, int | float) else 1.0,
                            int(e.get("created_at") or now), e.get("label")))
        if out:
            self.db.write(lambda tx: tx.edges.add(out))
        return len(out)

    # -- neighbourhoods and paths -----------------------------------------------------

    def memory_graph(self, memory_id: Any, depth: Any = 1, agent_id: Any = None
                     ) -> dict[str, Any]:
        """GET /v1/memories/{id}/graph: the memories within `depth` edges (capped at 5) of
        one memory, each with its depth and the edges that touch it among those returned."""
        levels = validate.int_range(depth, 1, MAX_DEPTH, "depth", 1, clamp=True)
        root = self.find(memory_id, agent_id)
        walk = neighbourhood(self.db.edges, self._load, [root], levels, GRAPH_LIMITS)
        ids = {rowid: m.id for rowid, (m, _) in walk.nodes.items()}
        by_node: dict[int, list[dict[str, Any]]] = {rowid: [] for rowid in walk.nodes}
        edges = []
        for e in walk.edges:
            view = edge_view(e, ids)
            edges.append(view)
            by_node[e.src].append(view)
            by_node[e.dst].append(view)
        nodes = [{"memory_id": m.id, "content_preview": m.content[:PREVIEW_CHARS],
                  "depth": d, "importance": round(m.importance, 6),
                  "memory_type": m.memory_type, "edges": by_node[rowid]}
                 for rowid, (m, d) in sorted(walk.nodes.items(), key=lambda kv: kv[1][1])]
        return {"root_id": root.id, "agent_id": root.agent_id, "depth": levels,
                "node_count": len(nodes), "edge_count": len(edges), "nodes": nodes,
                "edges": edges, "truncated": walk.truncated}

    def memory_path(self, memory_id: Any, to: Any, agent_id: Any = None) -> dict[str, Any]:
        """GET /v1/memories/{id}/path?to=: the shortest chain of edges between two memories;
        404 when none joins them within 6 hops."""
        source = self.find(memory_id, agent_id)
        if not isinstance(to, str) or not to:
            raise ValidationError("the 'to' query parameter (the target memory id) is required")
        target = self.find(to, source.agent_id)
        path = self._path(source, target)
        return {"from_id": source.id, "to_id": target.id, "source_id": source.id,
                "target_id": target.id, **path}

    def _path(self, source: Memory, target: Memory) -> dict[str, Any]:
        try:
            found = shortest_path(self.db.edges, self._load, source, target, MAX_PATH_HOPS,
                                  PATH_LIMITS)
        except PathLimitError:
            found = None
        if found is None:
            raise NotFoundError(f"no path joins {source.id!r} and {target.id!r} within "
                                f"{MAX_PATH_HOPS} edges", resource="path")
        ids = {r: m.id for r, m in self._load(found.nodes).items()}
        return {"path": [ids[r] for r in found.nodes], "hops": len(found.edges),
                "hop_count": len(found.edges), "edges": [edge_view(e, ids) for e in found.edges]}

    def knowledge_path(self, agent_id: Any, from_id: Any, to_id: Any) -> dict[str, Any]:
        """GET /v1/knowledge/path: the shortest path between two of the agent's memories."""
        agent = validate.agent_id(agent_id)
        for value, name in ((from_id, "from"), (to_id, "to")):
            if not isinstance(value, str) or not value:
                raise ValidationError(f"the '{name}' query parameter is required")
        source, target = self.find(from_id, agent), self.find(to_id, agent)
        path = self._path(source, target)
        return {"agent_id": agent, "from_id": source.id, "to_id": target.id, **path}

    def query(self, agent_id: Any, *, root_id: Any = None, edge_type: Any = None,
              min_weight: Any = None, max_depth: Any = 3, limit: Any = QUERY_LIMIT
              ) -> dict[str, Any]:
        """GET /v1/knowledge/query: the agent's edges (of some types, of at least a weight);
        with root_id, those within max_depth (1-5) edges of that memory."""
        agent = validate.agent_id(agent_id)
        types = edge_types(edge_type)
        floor = validate.unit_float(min_weight, "min_weight") or 0.0
        depth = validate.int_range(max_depth, 1, MAX_DEPTH, "max_depth", 3)
        n = validate.int_range(limit, 1, MAX_QUERY_LIMIT, "limit", QUERY_LIMIT)
        truncated = False
        if root_id is not None:
            root = self.find(root_id, agent)
            walk = neighbourhood(self.db.edges, self._load, [root], depth, GRAPH_LIMITS,
                                 types=types, min_weight=floor)
            ids = {rowid: m.id for rowid, (m, _) in walk.nodes.items()}
            views = [edge_view(e, ids) for e in walk.edges]
            truncated = walk.truncated or len(views) > n
            views = views[:n]
        else:
            rows = self.db.edges.of_agent(agent, self.now(), types=types, min_weight=floor,
                                          limit=n + 1)
            truncated = len(rows) > n
            views = [edge_view(e, {e.src: a, e.dst: b}) for e, a, b in rows[:n]]
        nodes = {v["from_id"] for v in views} | {v["to_id"] for v in views}
        return {"agent_id": agent, "node_count": len(nodes), "edge_count": len(views),
                "edges": views, "truncated": truncated}

    # -- exports ------------------------------------------------------------------------

    def edges_of(self, agent_id: str) -> list[dict[str, Any]]:
        """Every edge between the agent's live memories, by memory id: what an export
        carries to restore the graph (restore_edges)."""
        return [edge_view(e, {e.src: a, e.dst: b})
                for e, a, b in self.db.edges.of_agent(agent_id, self.now())]

    def export(self, agent_id: Any, fmt: Any = "json") -> dict[str, Any] | str:
        """GET /v1/knowledge/export: the agent's whole graph as JSON, or as GraphML text
        (nodes with content, type, importance and time; edges with type, weight, label)."""
        agent = validate.agent_id(agent_id)
        kind = validate.choice(fmt.lower() if isinstance(fmt, str) else fmt,
                               ("json", "graphml"), "format") or "json"
        edges = self.edges_of(agent)
        node_ids = list(dict.fromkeys([e["from_id"] for e in edges] + [e["to_id"] for e in edges]))
        if kind == "graphml":
            return graphml(agent, self._nodes(agent, node_ids), edges)
        return {"agent_id": agent, "format": "json", "node_count": len(node_ids),
                "edge_count": len(edges), "edges": edges}

    def agent_export(self, agent_id: Any) -> dict[str, Any]:
        """GET /v1/agents/{id}/graph/export: the agent's edges (always JSON)."""
        agent = validate.agent_id(agent_id)
        edges = self.edges_of(agent)
        nodes = {e["from_id"] for e in edges} | {e["to_id"] for e in edges}
        return {"agent_id": agent, "namespace": AGENT_NAMESPACE_PREFIX + agent,
                "format": "json", "node_count": len(nodes), "edge_count": len(edges),
                "edges": edges}

    def _nodes(self, agent: str, ids: list[str]) -> list[Memory]:
        out = []
        for i in range(0, len(ids), EXPORT_PAGE):
            rowids = self.db.memories.rowids_by_id(agent, ids[i:i + EXPORT_PAGE])
            loaded = self._load(list(rowids.values()))
            out += [loaded[r] for r in rowids.values() if r in loaded]
        return out

    # -- recall's associated memories ---------------------------------------------------

    def associated(self, hits: list[RecallHit], cap: int, depth: int, min_weight: float
                   ) -> list[Associated]:
        """Graph neighbours of recall hits that are not hits themselves, best first: each
        scored by its hit's relevance (0-1) times the weights of the edges leading to it."""
        if not hits:
            return []
        walk = neighbourhood(self.db.edges, self._load, [h.memory for h in hits], depth,
                             ASSOCIATED_LIMITS, min_weight=min_weight)
        # rowid -> (score, depth, edge type, id of the hit it comes from), level by level
        best: dict[int, tuple[float, int, str, str]] = {
            h.memory.rowid: (h.score, 0, "", h.memory.id) for h in hits}
        for level in range(1, depth + 1):
            for e in walk.edges:
                for a, b in ((e.src, e.dst), (e.dst, e.src)):
                    if (a not in best or best[a][1] != level - 1 or b not in walk.nodes
                            or walk.nodes[b][1] != level):
                        continue
                    score = best[a][0] * e.weight
                    if b not in best or score > best[b][0]:
                        best[b] = (score, level, e.edge_type, best[a][3])
        hit_rows = {h.memory.rowid for h in hits}
        found = sorted(((r, v) for r, v in best.items() if r not in hit_rows),
                       key=lambda kv: -kv[1][0])[:cap]
        return [Associated(walk.nodes[r][0], score, level, edge_type, origin)
                for r, (score, level, edge_type, origin) in found]


def graphml(agent: str, nodes: list[Memory], edges: list[dict[str, Any]]) -> str:
    keys = [("content", "node", "string"), ("memory_type", "node", "string"),
            ("importance", "node", "double"), ("created_at", "node", "long"),
            ("session_id", "node", "string"), ("edge_type", "edge", "string"),
            ("weight", "edge", "double"), ("label", "edge", "string")]
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">']
    out += [f'  <key id="{k}" for="{f}" attr.name="{k}" attr.type="{t}"/>' for k, f, t in keys]
    out.append(f"  <graph id={quoteattr(_clean(agent))} edgedefault=\"directed\">")
    for m in nodes:
        data = {"content": m.content, "memory_type": m.memory_type,
                "importance": round(m.importance, 6), "created_at": m.created_at,
                "session_id": m.session_id}
        out.append(f"    <node id={quoteattr(_clean(m.id))}>" + "".join(
            f'<data key="{k}">{_xml_text(v)}</data>' for k, v in data.items() if v is not None)
            + "</node>")
    for e in edges:
        data = {"edge_type": e["edge_type"], "weight": e["weight"], "label": e.get("label")}
        out.append(f"    <edge source={quoteattr(_clean(e['from_id']))} "
                   f"target={quoteattr(_clean(e['to_id']))}>"
                   + "".join(f'<data key="{k}">{_xml_text(v)}</data>'
                             for k, v in data.items() if v is not None) + "</edge>")
    out += ["  </graph>", "</graphml>", ""]
    return "\n".join(out)


def _clean(text: str) -> str:
    """Text XML 1.0 can carry: control characters other than tab and newlines dropped."""
    return "".join(c for c in text if c >= " " or c in "\t\n\r")


def _xml_text(value: Any) -> str:
    return escape(_clean(str(value)))
