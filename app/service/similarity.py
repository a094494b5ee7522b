"""Graphs built on the fly from similarity: around one memory (POST /v1/knowledge/graph), over
an agent's most important memories with clusters (POST /v1/knowledge/graph/full), and between
the memories of different agents (POST /v1/knowledge/network/cross-agent).

Vectors come from the agents' indexes (no database read); similarities are cosines computed
in one matrix product over a bounded set of memories. Stored edges between the chosen
memories are added with their types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from app import validate
from app.errors import ValidationError
from app.models import Indexes, Memory
from app.service.graph import MAX_DEPTH
from app.store import Store

SEED_NEIGHBOURS = 10  # similar memories looked up per node of a seeded graph
SEED_MAX_NODES = 100
FULL_NODES, MAX_FULL_NODES = 100, 1000
EDGES_PER_NODE, MAX_EDGES_PER_NODE = 5, 50
NETWORK_NODES, MAX_NETWORK_NODES = 50, 500
MAX_NETWORK_TOTAL = 5000  # memories in one cross-agent network
MAX_CROSS_EDGES = 10_000
BLOCK = 512  # rows per block of a similarity product
# The relationship an edge reports when two memories have several: the most telling first.
RELATIONSHIPS = ("linked_by", "supersedes", "related_to", "shares_entity", "precedes")


def _unit(value: Any, field: str, default: float) -> float:
    got = validate.unit_float(value, field)
    return default if got is None else got


def node_view(m: Memory, preview: int | None) -> dict[str, Any]:
    content = m.content if preview is None else m.content[:preview]
    return {"id": m.id, "agent_id": m.agent_id, "content": content,
            "content_len": len(m.content), "content_truncated": len(content) < len(m.content),
            "importance": round(m.importance, 6), "memory_type": m.memory_type,
            "tags": m.tags, "metadata": m.metadata, "created_at": m.created_at}


def clusters(ids: list[str], importance: list[float], pairs: list[tuple[int, int, float]],
             threshold: float) -> list[dict[str, Any]]:
    """Connected groups of at least two memories joined by similarities >= threshold, the
    largest first; each names its most important memory as its centre."""
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, sim in pairs:
        if sim >= threshold:
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(ids)):
        groups.setdefault(root(i), []).append(i)
    found = sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
    return [{"cluster_id": n, "size": len(g), "memory_ids": [ids[i] for i in g],
             "central_id": ids[max(g, key=lambda i: importance[i])]}
            for n, g in enumerate(found)]


class Similarity:
    def __init__(self, store: Store, indexes: Indexes, now: Callable[[], int],
                 find_memory: Callable[[Any, Any], Memory]) -> None:
        self.db = store
        self.indexes = indexes
        self.now = now
        self.find = find_memory

    def _vectors(self, agent: str, memories: list[Memory]) -> tuple[list[Memory], np.ndarray]:
        """The memories the agent's index holds, with their unit vectors."""
        index = self.indexes.find(agent)
        if index is None or not memories:
            return [], np.empty((0, 0), dtype=np.float32)
        found, vectors = index.vectors([m.rowid for m in memories])
        by_rowid = {m.rowid: m for m in memories}
        kept = [by_rowid[r] for r in found]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return kept, vectors / np.where(norms > 0, norms, 1.0)

    # -- around one memory ----------------------------------------------------------------

    def knowledge_graph(self, agent_id: Any, memory_id: Any, depth: Any = 2,
                        min_similarity: Any = 0.7) -> dict[str, Any]:
        """The memories reachable from a seed by steps of similarity >= min_similarity (each
        step: a node's 10 nearest) or stored edges, up to `depth` steps (1-5)."""
        agent = validate.agent_id(agent_id)
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("'memory_id' (the seed memory) is required")
        levels = validate.int_range(depth, 1, MAX_DEPTH, "depth", 2, clamp=True)
        floor = _unit(min_similarity, "min_similarity", 0.7)
        seed = self.find(memory_id, agent)
        now = self.now()
        index = self.indexes.find(agent)
        nodes: dict[int, tuple[Memory, int]] = {seed.rowid: (seed, 0)}
        frontier = [seed]
        for level in range(1, levels + 1):
            if not frontier or index is None or len(nodes) >= SEED_MAX_NODES:
                break
            reach: dict[int, float] = {}
            labels, vectors = index.vectors([m.rowid for m in frontier])
            for vector in vectors:
                near, sims = index.search(vector, SEED_NEIGHBOURS + 1)
                for label, sim in zip(near, sims, strict=True):
                    if sim >= floor and int(label) not in nodes:
                        reach[int(label)] = max(reach.get(int(label), 0.0), float(sim))
            for e in self.db.edges.incident(labels, SEED_NEIGHBOURS):
                for here, there in ((e.src, e.dst), (e.dst, e.src)):
                    if here in nodes and there not in nodes:
                        reach[there] = max(reach.get(there, 0.0), e.weight)
            ranked = sorted(reach, key=lambda r: -reach[r])[:SEED_MAX_NODES - len(nodes)]
            live = self.db.memories.by_rowids(ranked, now)
            frontier = [live[r] for r in ranked if r in live and live[r].agent_id == agent]
            nodes.update({m.rowid: (m, level) for m in frontier})
        members = [m for m, _ in nodes.values()]
        edges, pairs = self._edges(agent, members, floor, SEED_NEIGHBOURS)
        ids = [m.id for m in members]
        return {"agent_id": agent, "root_id": seed.id, "depth": levels,
                "nodes": [{**node_view(m, None), "depth": nodes[m.rowid][1]} for m in members],
                "edges": edges, "node_count": len(members), "edge_count": len(edges),
                "clusters": clusters(ids, [m.importance for m in members], pairs,
                                     max(floor, 0.8))}

    def _edges(self, agent: str, members: list[Memory], floor: float, per_node: int
               ) -> tuple[list[dict[str, Any]], list[tuple[int, int, float]]]:
        """Edges among these memories: for each, its `per_node` most similar others at
        >= floor, plus the stored edges between them (their type as relationship)."""
        kept, vectors = self._vectors(agent, members)
        pos = {m.rowid: i for i, m in enumerate(members)}
        at = {m.rowid: i for i, m in enumerate(kept)}
        pairs: dict[tuple[int, int], tuple[float, str]] = {}
        kinds: dict[tuple[int, int], set[str]] = {}
        for start in range(0, len(kept), BLOCK):
            block = vectors[start:start + BLOCK] @ vectors.T
            for row_i, row in enumerate(block):
                i = start + row_i
                row[i] = -1.0
                best = np.argsort(-row)[:per_node]
                for j in best:
                    if row[j] < floor:
                        break
                    a, b = sorted((pos[kept[i].rowid], pos[kept[int(j)].rowid]))
                    pairs[(a, b)] = (float(row[j]), "related_to")
                    kinds.setdefault((a, b), set()).add("related_to")
        stored = self.db.edges.between([m.rowid for m in members], limit=len(members) * 20)
        for e in stored:
            a, b = sorted((pos[e.src], pos[e.dst]))
            vi, vj = at.get(e.src), at.get(e.dst)
            sim = (float(vectors[vi] @ vectors[vj]) if vi is not None and vj is not None
                   else e.weight)
            kinds.setdefault((a, b), set()).add(e.edge_type)
            pairs[(a, b)] = (sim, min(kinds[(a, b)], key=RELATIONSHIPS.index))
        edges = [{"source": members[a].id, "target": members[b].id,
                  "similarity": round(sim, 6), "relationship": rel,
                  "relationships": sorted(kinds[(a, b)], key=RELATIONSHIPS.index)}
                 for (a, b), (sim, rel) in sorted(pairs.items(), key=lambda kv: -kv[1][0])]
        return edges, [(a, b, sim) for (a, b), (sim, _) in pairs.items()]

    # -- over an agent ------------------------------------------------------------------

    def full_graph(self, agent_id: Any, *, max_nodes: Any = None, min_similarity: Any = None,
                   cluster_threshold: Any = None, max_edges_per_node: Any = None,
                   content_preview_chars: Any = None) -> dict[str, Any]:
        """The agent's max_nodes most important memories (default 100, at most 1000), each
        linked to its max_edges_per_node most similar others at >= min_similarity (0.7),
        grouped into clusters of similarity >= cluster_threshold (0.8)."""
        agent = validate.agent_id(agent_id)
        n = validate.int_range(max_nodes, 1, MAX_FULL_NODES, "max_nodes", FULL_NODES)
        floor = _unit(min_similarity, "min_similarity", 0.7)
        cluster_at = _unit(cluster_threshold, "cluster_threshold", 0.8)
        per_node = validate.int_range(max_edges_per_node, 1, MAX_EDGES_PER_NODE,
                                      "max_edges_per_node", EDGES_PER_NODE)
        preview = validate.preview_chars(content_preview_chars)
        members = self.db.memories.most_important(agent, self.now(), limit=n)
        edges, pairs = self._edges(agent, members, floor, per_node)
        ids = [m.id for m in members]
        groups = clusters(ids, [m.importance for m in members], pairs, cluster_at)
        possible = len(members) * (len(members) - 1) / 2
        return {"agent_id": agent, "nodes": [node_view(m, preview) for m in members],
                "edges": edges, "clusters": groups,
                "stats": {"node_count": len(members), "edge_count": len(edges),
                          "cluster_count": len(groups),
                          "clustered_nodes": sum(g["size"] for g in groups),
                          "avg_degree": round(2 * len(edges) / len(members), 4)
                          if members else 0.0,
                          "density": round(len(edges) / possible, 6) if possible else 0.0}}

    # -- between agents -----------------------------------------------------------------

    def cross_agent(self, *, agent_ids: Any = None, min_similarity: Any = None,
                    max_nodes_per_agent: Any = None, min_importance: Any = None,
                    max_cross_edges: Any = None, content_preview_chars: Any = None
                    ) -> dict[str, Any]:
        """The most important memories of each agent (by importance, at most
        max_nodes_per_agent) and the most similar pairs from two different agents."""
        floor = _unit(min_similarity, "min_similarity", 0.3)
        per_agent = validate.int_range(max_nodes_per_agent, 1, MAX_NETWORK_NODES,
                                       "max_nodes_per_agent", NETWORK_NODES)
        least = _unit(min_importance, "min_importance", 0.0)
        max_edges = validate.int_range(max_cross_edges, 0, MAX_CROSS_EDGES, "max_cross_edges", 200)
        preview = validate.preview_chars(content_preview_chars)
        if agent_ids is None:
            agents = sorted(a["agent_id"] for a in self.db.agents.overview())
        elif isinstance(agent_ids, list):
            agents = list(dict.fromkeys(validate.agent_id(a, "agent_ids") for a in agent_ids))
        else:
            raise ValidationError("'agent_ids' must be a list of agent ids")
        now = self.now()
        members: list[Memory] = []
        chunks: list[np.ndarray] = []
        info = []
        for agent in agents:
            room = MAX_NETWORK_TOTAL - len(members)
            chosen = self.db.memories.most_important(agent, now, limit=min(per_agent, room),
                                                     min_importance=least) if room > 0 else []
            kept, vectors = self._vectors(agent, chosen)
            members += kept
            if len(kept):
                chunks.append(vectors.astype(np.float32))
            count, mean = self.db.memories.importance_stats(agent, now)
            info.append({"agent_id": agent, "memory_count": count,
                         "avg_importance": round(mean or 0.0, 6), "node_count": len(kept)})
        owner = np.array([agents.index(m.agent_id) for m in members], dtype=np.int64)
        found: list[tuple[float, int, int]] = []
        if members:
            matrix = np.vstack(chunks)
            cols = np.arange(len(members))
            for start in range(0, len(members), BLOCK):
                block = matrix[start:start + BLOCK] @ matrix.T
                rows = cols[start:start + len(block)]
                # each pair once (j > i), and only between two different agents
                valid = (cols[None, :] > rows[:, None]) & (owner[rows][:, None] != owner[None, :])
                i_idx, j_idx = np.nonzero(valid & (block >= floor))
                found += [(float(block[i, j]), start + int(i), int(j))
                          for i, j in zip(i_idx, j_idx, strict=True)]
        found.sort(key=lambda t: -t[0])
        edges = [{"source": members[i].id, "target": members[j].id,
                  "source_agent": members[i].agent_id, "target_agent": members[j].agent_id,
                  "similarity": round(sim, 6)} for sim, i, j in found[:max_edges]]
        per = np.bincount(owner, minlength=len(agents)) if members else np.zeros(len(agents))
        possible = (float(per.sum()) ** 2 - float((per ** 2).sum())) / 2
        return {"agents": info, "nodes": [node_view(m, preview) for m in members],
                "edges": edges, "node_count": len(members),
                "stats": {"total_agents": len(agents), "total_nodes": len(members),
                          "total_cross_edges": len(edges),
                          "density": round(len(edges) / possible, 6) if possible else 0.0}}
