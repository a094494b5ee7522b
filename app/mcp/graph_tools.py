"""MCP tools of the knowledge graph, entity extraction, consolidation and AutoPilot: the two of
the `core` profile (dakera_knowledge_graph, dakera_extract) and the `power` ones."""

from __future__ import annotations

from typing import Any

from app.errors import ValidationError
from app.mcp.backend import Backend
from app.mcp.ops import agent_namespace
from app.mcp.tools import AGENT_ID, MEMORY_TYPE, ToolSpec, _pick, _schema, hits_view, memory_view

MEMORY_ID = {"type": "string", "minLength": 1, "description": (
    "A memory id, as returned by dakera_store, dakera_recall or dakera_search.")}
ENTITY_TYPES = {"type": "array", "items": {"type": "string"}, "description": (
    "Entity types to find: person, org, location, date, url, email, number_with_unit, "
    "identifier (default: person, org, location, date, url, email).")}
EDGE_MEANING = (
    "Edge types: related_to (similar meaning; weight = cosine similarity, at least 0.85), "
    "shares_entity (both name the same person, organisation, place, date, id, url or email; "
    "weight 0.4-0.9 by how specific it is), precedes (stored one after the other in a "
    "session; weight 0.5), linked_by (an explicit link; weight 1.0), supersedes (the newer "
    "memory restates the older one's fact with other values, e.g. a new price; from = newer).")


def node_view(node: dict[str, Any]) -> dict[str, Any]:
    out = {"id": node.get("memory_id", node.get("id"))}
    for key in ("content_preview", "content", "depth", "importance", "memory_type"):
        if key in node:
            out[key] = node[key]
    return out


def edge_view(edge: dict[str, Any]) -> dict[str, Any]:
    out = {"from": edge.get("from_id", edge.get("source")),
           "to": edge.get("to_id", edge.get("target")),
           "type": edge.get("edge_type", edge.get("relationship")),
           "weight": edge.get("weight", edge.get("similarity"))}
    if edge.get("label") is not None:
        out["label"] = edge["label"]
    return out


async def _knowledge_graph(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"depth": 2, "min_similarity": 0.7,
            **_pick(args, "agent_id", "memory_id", "depth", "min_similarity")}
    out = await backend.call("knowledge_graph", body)
    return {"root_id": out.get("root_id"),
            "nodes": [{**node_view(n), "content": n.get("content", "")[:500]}
                      for n in out.get("nodes", [])],
            "edges": [{"from": e["source"], "to": e["target"], "similarity": e["similarity"],
                       "relationship": e["relationship"]} for e in out.get("edges", [])],
            "clusters": [{"memory_ids": c["memory_ids"], "central_id": c["central_id"]}
                         for c in out.get("clusters", [])]}


async def _extract(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = _pick(args, "text", "namespace", "agent_id", "lang", "extractor_override")
    out = await backend.call("extract", body)
    result: dict[str, Any] = {"entities": [_entity(e) for e in out.get("entities", [])],
                              "count": len(out.get("entities", [])),
                              "provider": out.get("provider")}
    if out.get("warnings"):
        result["warnings"] = out["warnings"]
    return result


def _entity(e: dict[str, Any]) -> dict[str, Any]:
    return {k: e[k] for k in ("entity_type", "value", "normalized", "score") if k in e}


async def _recall_associated(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"top_k": 5, "include_associated": True,
            **_pick(args, "agent_id", "query", "top_k", "min_importance", "tags", "memory_type",
                    "session_id", "associated_memories_cap", "associated_memories_depth",
                    "associated_memories_min_weight")}
    return hits_view(await backend.recall(body))


async def _graph_traverse(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    if "memory_id" in args:
        out = await backend.call("memory_graph", _pick(args, "memory_id", "depth", "agent_id"))
        return {"root_id": out["root_id"], "truncated": out.get("truncated", False),
                "nodes": [node_view(n) for n in out.get("nodes", [])],
                "edges": [edge_view(e) for e in out.get("edges", [])]}
    if "agent_id" not in args:
        raise ValidationError("dakera_graph_traverse needs memory_id, or agent_id (with "
                              "root_id to start from a memory)")
    body = {"max_depth": args.get("depth", 3),
            **_pick(args, "agent_id", "root_id", "edge_type", "min_weight", "limit")}
    out = await backend.call("knowledge_query", body)
    return {"edges": [edge_view(e) for e in out.get("edges", [])],
            "edge_count": out.get("edge_count"), "node_count": out.get("node_count"),
            "truncated": out.get("truncated", False)}


async def _graph_path(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"memory_id": args["from_id"], "to": args["to_id"], **_pick(args, "agent_id")}
    out = await backend.call("memory_path", body)
    return {"path": out.get("path", []), "hops": out.get("hop_count"),
            "edges": [edge_view(e) for e in out.get("edges", [])]}


async def _graph_link(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    out = await backend.call("memory_link", _pick(args, "memory_id", "target_id", "agent_id",
                                                  "label"))
    return {"linked": True, "edge": edge_view(out["edge"])}


async def _graph_export(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"format": "json", **_pick(args, "agent_id", "format")}
    out = await backend.call("graph_export", body)
    if "text" in out:
        return {"format": "graphml", "graphml": out["text"]}
    return {"format": "json", "node_count": out.get("node_count"),
            "edge_count": out.get("edge_count"),
            "edges": [edge_view(e) for e in out.get("edges", [])]}


async def _consolidate(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    out = await backend.call("consolidate", _pick(args, "agent_id", "memory_ids",
                                                  "target_type"))
    merged = out.get("consolidated_memory")
    return {"consolidated_memory": memory_view(merged) if merged else None,
            "source_memory_ids": out.get("source_memory_ids", []),
            "memories_removed": out.get("memories_removed", 0)}


async def _deduplicate(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"threshold": 0.9, "dry_run": True,
            **_pick(args, "agent_id", "threshold", "dry_run", "memory_type")}
    out = await backend.call("deduplicate", body)
    return {k: out.get(k) for k in ("dry_run", "groups", "duplicates_found",
                                    "duplicates_merged", "duplicates_skipped_changed")}


async def _cross_agent(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"content_preview_chars": 200,
            **_pick(args, "agent_ids", "min_similarity", "max_nodes_per_agent",
                    "min_importance", "max_cross_edges", "content_preview_chars")}
    out = await backend.call("cross_agent", body)
    return {"agents": out.get("agents", []), "stats": out.get("stats", {}),
            "nodes": [{"id": n["id"], "agent_id": n["agent_id"], "content": n["content"],
                       "importance": n["importance"]} for n in out.get("nodes", [])],
            "edges": out.get("edges", [])}


async def _auto_tag(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    out = await backend.call("auto_tag", _pick(args, "content", "entity_types", "lang"))
    return {"entities": [_entity(e) for e in out.get("entities", [])],
            "count": len(out.get("entities", []))}


async def _memory_entities(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    out = await backend.call("memory_entities", _pick(args, "memory_id", "agent_id"))
    return {"memory_id": out.get("memory_id"),
            "entities": [_entity(e) for e in out.get("entities", [])],
            "count": out.get("count", 0)}


def _ns(args: dict[str, Any]) -> dict[str, Any]:
    if "namespace" not in args and "agent_id" not in args:
        raise ValidationError("give agent_id (or the agent's namespace)")
    return {"namespace": agent_namespace(args)}


async def _entity_types_get(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    return await backend.call("entity_config_get", _ns(args))


async def _entity_types_set(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {**_ns(args), **_pick(args, "extract_entities", "entity_types")}
    return await backend.call("entity_config_set", body)


async def _autopilot_status(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    return await backend.call("autopilot_status", {})


async def _autopilot_trigger(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    return await backend.call("autopilot_trigger", _pick(args, "action"))


FILTERS = {"min_importance": {"type": "number", "description": (
               "Only results at least this important (0-1).")},
           "tags": {"type": "array", "items": {"type": "string"},
                    "description": "Only results carrying at least one of these tags."},
           "memory_type": MEMORY_TYPE,
           "session_id": {"type": "string", "description": "Only results of this session."}}

GRAPH_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="dakera_knowledge_graph",
        title="Explore related memories",
        description="""\
Map what an agent knows around one memory: the memories similar in meaning to it (cosine \
similarity >= min_similarity, default 0.7), then those similar to them, up to `depth` steps \
(default 2), plus memories linked to them in the knowledge graph. Use it to gather \
everything about a topic once dakera_recall has found one relevant memory, or to see how \
facts connect.

Returns nodes (id, content, importance, depth = steps from the seed), edges (from, to, \
similarity = cosine 0-1 between the two memories, relationship = related_to for \
similarity, or the stored edge type: linked_by, supersedes, shares_entity, precedes) and \
clusters (groups of closely similar memories, each with its most important one as \
central_id).""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "memory_id": {**MEMORY_ID, "description": "The seed memory to start from."},
            "depth": {"type": "integer", "minimum": 1, "maximum": 5, "default": 2,
                      "description": "Steps away from the seed (1-5, default 2)."},
            "min_similarity": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.7,
                               "description": "Cosine similarity a step needs (0-1, default "
                                              "0.7; lower it to reach further)."},
        }, ["agent_id", "memory_id"]),
        handler=_knowledge_graph, read_only=True,
    ),
    ToolSpec(
        name="dakera_extract",
        title="Extract entities from text",
        description="""\
Find the named entities in a text: people, organisations, locations, dates, urls, emails \
(and, for an agent whose config asks, numbers with units and identifiers such as ticket \
ids). Nothing is stored. Use it to pick out who and what a message is about, e.g. to choose \
tags or to check which people or ids to recall.

Rules, not a model: precise rather than exhaustive. A person, organisation or place that \
is not well known and carries no title, suffix (Inc, University, Street...) or speaker \
label may be missed. Each entity has entity_type, value (as written), normalized (equal \
for two mentions of the same thing; dates as ISO yyyy-mm-dd) and score (the rule's \
confidence, 0-1).""",
        input_schema=_schema({
            "text": {"type": "string", "description": "The text to read."},
            "agent_id": {**AGENT_ID, "description": (
                "Use this agent's entity types (dakera_entity_types_get) instead of the "
                "default set.")},
            "namespace": {"type": "string", "description": (
                "Like agent_id, by namespace name (_dakera_agent_<agent_id>).")},
            "lang": {"type": "string", "description": (
                "Language of the text; the rules are written for English.")},
            "extractor_override": {"type": "object", "description": (
                "Accepted for compatibility; this server extracts with its own rules, and "
                "refuses hosted model providers.")},
        }, ["text"]),
        handler=_extract, read_only=True,
    ),
    ToolSpec(
        name="dakera_recall_associated", tier="power",
        title="Recall with associated memories",
        description="""\
dakera_recall that also returns, under `associated`, memories linked in the knowledge graph \
to the results, which may share no words with the query: the same fact restated with new \
values (supersedes), memories naming the same person or ticket (shares_entity), explicit \
links, very similar memories, the next memory of a session. Each associated memory has \
depth (edges from a result), edge_type (of the last edge), associated_with (the result it \
was reached from) and score (that result's relevance times the edge weights, 0-1).""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "query": {"type": "string", "description": "What you need to know."},
            "top_k": {"type": "integer", "default": 5, "description": "Results (default 5)."},
            **FILTERS,
            "associated_memories_cap": {"type": "integer", "minimum": 1, "maximum": 10,
                                        "description": "At most this many associated "
                                                       "memories (default 10)."},
            "associated_memories_depth": {"type": "integer", "minimum": 1, "maximum": 3,
                                          "description": "Edges away from a result (1-3, "
                                                         "default 1)."},
            "associated_memories_min_weight": {"type": "number", "minimum": 0, "maximum": 1,
                                               "description": "Follow only edges at least "
                                                              "this strong (0-1)."},
        }, ["agent_id", "query"]),
        handler=_recall_associated, read_only=True,
    ),
    ToolSpec(
        name="dakera_graph_traverse", tier="power",
        title="Walk the knowledge graph",
        description=f"""\
Walk the stored knowledge graph. With memory_id: the memories within `depth` edges of it \
(1-5, default 1), each with its depth and the edges between them. With agent_id (and \
optionally root_id to start from a memory): the agent's edges, filtered by edge_type \
(comma-separated) and min_weight, at most `limit` (default 100). {EDGE_MEANING} \
`truncated` says a size or time limit cut the walk short.""",
        input_schema=_schema({
            "memory_id": MEMORY_ID,
            "agent_id": AGENT_ID,
            "root_id": {"type": "string", "description": "Start the agent's walk here."},
            "depth": {"type": "integer", "minimum": 1, "maximum": 5,
                      "description": "Edges away from the start (1-5)."},
            "edge_type": {"type": "string", "description": (
                "Only these edge types, comma-separated, e.g. \"supersedes,linked_by\".")},
            "min_weight": {"type": "number", "minimum": 0, "maximum": 1,
                           "description": "Only edges at least this strong (0-1)."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000,
                      "description": "At most this many edges (default 100)."},
        }, []),
        handler=_graph_traverse, read_only=True,
    ),
    ToolSpec(
        name="dakera_graph_path", tier="power",
        title="Find how two memories connect",
        description=f"""\
The shortest chain of edges joining two memories of the same agent (at most 6), as the list \
of memory ids from one to the other and the edges on the way. An error (not found) means no \
chain joins them. {EDGE_MEANING}""",
        input_schema=_schema({
            "from_id": MEMORY_ID, "to_id": MEMORY_ID,
            "agent_id": {**AGENT_ID, "description": "The agent holding both (needed only "
                                                    "when several agents use the same ids)."},
        }, ["from_id", "to_id"]),
        handler=_graph_path, read_only=True,
    ),
    ToolSpec(
        name="dakera_graph_link_memory", tier="power",
        title="Link two memories",
        description="""\
Record that two memories of an agent belong together (a linked_by edge, weight 1.0), with \
an optional label saying how ("caused by", "same project"). Links are kept when either \
memory is later merged by consolidation, and recall's associated memories follow them. \
Linking the same pair again only changes the label.""",
        input_schema=_schema({
            "memory_id": {**MEMORY_ID, "description": "The memory the link starts from."},
            "target_id": {**MEMORY_ID, "description": "The memory it points to."},
            "agent_id": AGENT_ID,
            "label": {"type": "string", "maxLength": 256,
                      "description": "How they relate, in a few words."},
        }, ["memory_id", "target_id", "agent_id"]),
        handler=_graph_link, idempotent=True,
    ),
    ToolSpec(
        name="dakera_graph_export", tier="power",
        title="Export the knowledge graph",
        description="""\
Every edge of an agent's knowledge graph, as JSON (from, to, type, weight) or as GraphML \
text (nodes with content, type, importance; edges with type and weight) for graph tools \
such as Gephi or yEd. Large for large agents: prefer dakera_graph_traverse to look around.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "format": {"type": "string", "enum": ["json", "graphml"], "default": "json",
                       "description": "json (default) or graphml."},
        }, ["agent_id"]),
        handler=_graph_export, read_only=True,
    ),
    ToolSpec(
        name="dakera_consolidate", tier="power",
        title="Merge memories into one",
        description="""\
Merge two or more memories of an agent into one new memory that keeps every distinct \
sentence of them (nothing is rewritten or summarised), the highest importance and every \
tag. The originals are deleted but stay restorable for a while (the server's trash). Use it \
for near-duplicates or fragments of one fact; memories with an expiry cannot be merged. \
Returns the merged memory and the ids it replaced.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "memory_ids": {"type": "array", "items": {"type": "string"}, "minItems": 2,
                           "maxItems": 100, "description": "The memories to merge."},
            "target_type": {**MEMORY_TYPE, "description": (
                "Type of the merged memory (default: the sources' most common).")},
        }, ["agent_id", "memory_ids"]),
        handler=_consolidate, destructive=True,
    ),
    ToolSpec(
        name="dakera_knowledge_deduplicate", tier="power",
        title="Find or merge duplicate memories",
        description="""\
Find an agent's duplicate memories: the same type, cosine similarity >= threshold (default \
0.9) and the same numbers (two texts that differ in a date, amount or id state different \
facts and are never duplicates). Each group lists the surviving memory (the oldest) first. \
dry_run (default true) only reports; with dry_run false each group is folded into its \
survivor (highest importance and all tags kept) and the others go to the trash, \
restorable.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.9,
                          "description": "Cosine similarity of duplicates (0-1)."},
            "dry_run": {"type": "boolean", "default": True,
                        "description": "Only report (default true)."},
            "memory_type": MEMORY_TYPE,
        }, ["agent_id"]),
        handler=_deduplicate, destructive=True,
    ),
    ToolSpec(
        name="dakera_knowledge_network_cross_agent", tier="power",
        title="Compare agents' memories",
        description="""\
The most similar pairs of memories held by different agents: each agent's most important \
memories (max_nodes_per_agent, default 50) compared by cosine similarity; edges at \
>= min_similarity (default 0.3), strongest first, at most max_cross_edges (default 200). \
Stats give the agents, memories compared, edges found and density (edges / possible \
pairs). Use it to see what agents know in common. Needs an admin key.""",
        input_schema=_schema({
            "agent_ids": {"type": "array", "items": {"type": "string"},
                          "description": "These agents only (default: all)."},
            "min_similarity": {"type": "number", "minimum": 0, "maximum": 1},
            "max_nodes_per_agent": {"type": "integer", "minimum": 1, "maximum": 500},
            "min_importance": {"type": "number", "minimum": 0, "maximum": 1},
            "max_cross_edges": {"type": "integer", "minimum": 0, "maximum": 10000},
            "content_preview_chars": {"type": "integer", "minimum": 1, "maximum": 10000,
                                      "description": "Cut each memory to this many "
                                                     "characters (default 200)."},
        }, []),
        handler=_cross_agent, read_only=True,
    ),
    ToolSpec(
        name="dakera_auto_tag", tier="power",
        title="Suggest tags from entities",
        description="""\
The entities of a text (as dakera_extract, choosing the types), to use as tags before \
storing it: people, organisations, locations, dates, urls, emails, number_with_unit \
(amounts, durations, sizes) and identifier (ticket ids, versions, hosts).""",
        input_schema=_schema({
            "content": {"type": "string", "description": "The text to read."},
            "entity_types": ENTITY_TYPES,
            "lang": {"type": "string", "description": "Language; the rules are English."},
        }, ["content"]),
        handler=_auto_tag, read_only=True,
    ),
    ToolSpec(
        name="dakera_memory_entities", tier="power",
        title="Entities of a memory",
        description="""\
The entities found in a stored memory (extracted when it was stored): entity_type, value, \
normalized and score (0-1). Memories naming the same entity are linked by shares_entity \
edges.""",
        input_schema=_schema({"memory_id": MEMORY_ID, "agent_id": AGENT_ID}, ["memory_id"]),
        handler=_memory_entities, read_only=True,
    ),
    ToolSpec(
        name="dakera_entity_types_get", tier="power",
        title="Entity extraction config",
        description="""\
Whether an agent's stored memories have their entities extracted (extract_entities) and \
which entity_types.""",
        input_schema=_schema({"agent_id": AGENT_ID, "namespace": {"type": "string"}}, []),
        handler=_entity_types_get, read_only=True,
    ),
    ToolSpec(
        name="dakera_entity_types_set", tier="power",
        title="Change entity extraction",
        description="""\
Turn entity extraction of an agent's new memories on or off and choose its entity types \
(person, org, location, date, url, email, number_with_unit, identifier; an empty list means \
the default set). Memories already stored keep their entities.""",
        input_schema=_schema({
            "agent_id": AGENT_ID, "namespace": {"type": "string"},
            "extract_entities": {"type": "boolean"},
            "entity_types": ENTITY_TYPES,
        }, []),
        handler=_entity_types_set, idempotent=True,
    ),
    ToolSpec(
        name="dakera_autopilot_status", tier="power",
        title="AutoPilot status",
        description="""\
The background deduplication and consolidation (AutoPilot): whether it is enabled, its \
config (dedup_mode off/report/merge, intervals, thresholds, trash_retention_hours), and \
what its last runs found and changed.""",
        input_schema=_schema({}, []),
        handler=_autopilot_status, read_only=True,
    ),
    ToolSpec(
        name="dakera_autopilot_trigger", tier="power",
        title="Run AutoPilot now",
        description="""\
Run a pass now over every agent: dedup (merges duplicates when dedup_mode is merge, else \
only reports them), consolidate (folds near-duplicate clusters of agents whose \
consolidation is enabled; folded memories stay restorable) or all.""",
        input_schema=_schema({"action": {"type": "string",
                                         "enum": ["dedup", "consolidate", "all"]}},
                             ["action"]),
        handler=_autopilot_trigger, destructive=True,
    ),
)
