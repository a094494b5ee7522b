"""Bounded walks over the edge index: breadth-first neighbourhoods and shortest paths.

Every walk reads a node's strongest edges only (`per_node` each way, off the (node, weight)
indexes), visits at most `max_nodes` memories and stops at a deadline, so a hub with
thousands of edges or a dense graph costs the same bounded work. Expired memories are not
visited. Edges are walked in both directions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.models import Edge, Memory
from app.store.protocol import EdgeReads

Load = Callable[[list[int]], dict[int, Memory]]  # live memories by rowid


@dataclass(frozen=True)
class Limits:
    per_node: int = 50  # strongest edges read per node and direction
    max_nodes: int = 500  # memories visited
    seconds: float = 2.0  # wall-clock budget

    def deadline(self) -> float:
        return time.monotonic() + self.seconds


@dataclass
class Walk:
    """What a walk found: each memory with its depth, the edges between them, and whether
    a limit cut it short."""

    nodes: dict[int, tuple[Memory, int]] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    truncated: bool = False


def neighbourhood(edges: EdgeReads, load: Load, roots: Sequence[Memory], depth: int,
                  limits: Limits, *, types: Sequence[str] | None = None,
                  min_weight: float = 0.0) -> Walk:
    """The memories within `depth` edges of the roots (depth 0), nearest and strongest
    first, with the edges that reach them and those between them."""
    walk = Walk(nodes={m.rowid: (m, 0) for m in roots})
    frontier = [m.rowid for m in roots]
    deadline = limits.deadline()
    seen_edges: dict[tuple[int, int, str], Edge] = {}
    agent = roots[0].agent_id if roots else ""
    for level in range(1, depth + 1):
        if not frontier:
            break
        if time.monotonic() > deadline:
            walk.truncated = True
            break
        found = edges.incident(frontier, limits.per_node, types=types, min_weight=min_weight)
        reach: dict[int, float] = {}
        for e in found:
            seen_edges[(e.src, e.dst, e.edge_type)] = e
            for here, there in ((e.src, e.dst), (e.dst, e.src)):
                if here in walk.nodes and there not in walk.nodes:
                    reach[there] = max(reach.get(there, 0.0), e.weight)
        room = limits.max_nodes - len(walk.nodes)
        ranked = sorted(reach, key=lambda r: -reach[r])
        if len(ranked) > room:
            walk.truncated = True
            ranked = ranked[:max(room, 0)]
        live = load(ranked)
        frontier = []
        for rowid in ranked:
            m = live.get(rowid)
            if m is not None and m.agent_id == agent:
                walk.nodes[rowid] = (m, level)
                frontier.append(rowid)
        if len(walk.nodes) >= limits.max_nodes:
            break
    walk.edges = [e for e in seen_edges.values() if e.src in walk.nodes and e.dst in walk.nodes]
    walk.edges.sort(key=lambda e: (-e.weight, e.src, e.dst))
    return walk


@dataclass
class Path:
    nodes: list[int]  # rowids from the source to the target
    edges: list[Edge]  # one per hop, in order


class PathLimitError(Exception):
    """The search hit a limit before it could tell whether a path exists."""


def shortest_path(edges: EdgeReads, load: Load, source: Memory, target: Memory,
                  max_hops: int, limits: Limits) -> Path | None:
    """The shortest chain of edges between two memories (fewest hops; among equally short
    ones, the first found along the strongest edges), searched from both ends at once.
    None when there is none within max_hops; PathLimitError when a limit cut the search."""
    if source.rowid == target.rowid:
        return Path([source.rowid], [])
    parents: tuple[dict[int, tuple[int, Edge] | None], ...] = (
        {source.rowid: None}, {target.rowid: None})
    fronts = [[source.rowid], [target.rowid]]
    deadline = limits.deadline()
    hops = 0
    while fronts[0] and fronts[1] and hops < max_hops:
        if time.monotonic() > deadline or sum(map(len, parents)) > limits.max_nodes:
            raise PathLimitError("the path search stopped at its limit")
        side = 0 if len(fronts[0]) <= len(fronts[1]) else 1
        mine, theirs = parents[side], parents[1 - side]
        reach: dict[int, tuple[int, Edge]] = {}
        for e in sorted(edges.incident(fronts[side], limits.per_node), key=lambda e: -e.weight):
            for here, there in ((e.src, e.dst), (e.dst, e.src)):
                if here in mine and there not in mine and there not in reach:
                    reach[there] = (here, e)
        live = load(list(reach))
        fronts[side] = []
        hops += 1
        for there, step in reach.items():
            if there not in live or live[there].agent_id != source.agent_id:
                continue
            mine[there] = step
            fronts[side].append(there)
            if there in theirs:
                return _join(parents, there)
    return None


def _join(parents: tuple[dict[int, tuple[int, Edge] | None], ...], meet: int) -> Path:
    back: list[tuple[int, Edge]] = []
    node = meet
    while (step := parents[0][node]) is not None:
        back.append((node, step[1]))
        node = step[0]
    nodes = [node] + [n for n, _ in reversed(back)]
    hops = [e for _, e in reversed(back)]
    node = meet
    while (step := parents[1][node]) is not None:
        node = step[0]
        nodes.append(node)
        hops.append(step[1])
    return Path(nodes, hops)
