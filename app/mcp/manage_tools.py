"""MCP tools for looking after memories, sessions and agents (the `power` profile), decay (the
`admin` profile) and the server itself."""

from __future__ import annotations

from typing import Any

from app.mcp.backend import Backend
from app.mcp.graph_tools import MEMORY_ID, _ns
from app.mcp.ops import agent_namespace
from app.mcp.tools import AGENT_ID, MEMORY_TYPE, ToolSpec, _pick, _schema, memory_view

SESSION_ID = {"type": "string", "minLength": 1,
              "description": "A session id, as returned by dakera_session_start."}
PREVIEW = {"type": "integer", "minimum": 0, "maximum": 10000, "default": 500, "description": (
    "Cut each memory's content to this many characters (default 500; 0 = whole content). "
    "dakera_memory_get returns one memory in full.")}
LIMIT_OFFSET = {"limit": {"type": "integer", "minimum": 1, "description": "Page size."},
                "offset": {"type": "integer", "minimum": 0, "description": "Skip this many."}}


def _list_view(memories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in memories:
        view = memory_view(m)
        if m.get("content_truncated"):
            view["content_truncated"] = True
        out.append(view)
    return out


def _op(name: str, *fields: str, shape: Any = None) -> Any:
    """A handler that calls one operation with the given fields of the arguments."""
    async def handler(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
        out = await backend.call(name, _pick(args, *fields))
        return shape(out) if shape else out
    return handler


def _memory_full(out: dict[str, Any]) -> dict[str, Any]:
    view = memory_view(out)
    view.update({k: out[k] for k in ("access_count", "last_accessed_at", "updated_at")
                 if k in out})
    return view


async def _importance(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    updated = []
    for item in args["updates"]:
        out = await backend.call("memory_importance", {"agent_id": args["agent_id"], **item})
        updated.append({"id": out["id"], "importance": out["importance"]})
    return {"updated": updated, "count": len(updated)}


async def _session_memories(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"content_preview_chars": 500,
            **_pick(args, "session_id", "limit", "offset", "content_preview_chars")}
    out = await backend.call("session_memories", body)
    return {"session": out["session"], "memories": _list_view(out.get("memories", [])),
            "total": out.get("total")}


async def _agent_memories(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"content_preview_chars": 500,
            **_pick(args, "agent_id", "limit", "offset", "content_preview_chars",
                    "memory_type")}
    out = await backend.call("agent_memories", body)
    memories = out.get("result", [])
    return {"memories": _list_view(memories), "count": len(memories)}


async def _wake_up(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    out = await backend.call("wake_up", _pick(args, "agent_id", "top_n", "min_importance"))
    return {"memories": [memory_view(m) for m in out.get("memories", [])],
            "total_available": out.get("total_available")}


async def _policy_get(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    return await backend.call("memory_policy_get", _ns(args))


async def _policy_set(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"namespace": agent_namespace(args),
            **_pick(args, "dedup_on_store", "dedup_threshold", "dedup_memory_types")}
    return await backend.call("memory_policy_set", body)


MANAGE_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="dakera_memory_get", tier="power", title="Read one memory",
        description="""\
One memory in full by its id: content, type, importance (0-1; it fades with time and rises \
when the memory is recalled), tags, metadata, session, created_at / updated_at / \
last_accessed_at (unix seconds) and access_count (how often recall returned it).""",
        input_schema=_schema({"memory_id": MEMORY_ID, "agent_id": AGENT_ID},
                             ["memory_id", "agent_id"]),
        handler=_op("memory_get", "memory_id", "agent_id", shape=_memory_full), read_only=True,
    ),
    ToolSpec(
        name="dakera_memory_update", tier="power", title="Correct a memory",
        description="""\
Change a memory in place: new content (embedded again; its entities and similarity links \
are made anew), importance, tags (replace the list), memory_type or metadata. Use it to \
correct a fact while keeping its id, links and history; to record that a fact changed over \
time, store the new fact instead (the graph links it to the old one as supersedes).""",
        input_schema=_schema({
            "memory_id": MEMORY_ID, "agent_id": AGENT_ID,
            "content": {"type": "string"},
            "importance": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "memory_type": MEMORY_TYPE,
            "metadata": {"type": "object"},
        }, ["memory_id", "agent_id"]),
        handler=_op("memory_update", "memory_id", "agent_id", "content", "importance", "tags",
                    "memory_type", "metadata", shape=memory_view),
        idempotent=True,
    ),
    ToolSpec(
        name="dakera_memory_importance", tier="power", title="Set importance",
        description="""\
Set the importance (0-1) of one or more memories of an agent: 0.9-1.0 critical, 0.7-0.8 \
important, 0.5 standard, 0.3-0.4 ephemeral. Important memories rank higher in recall and \
fade slower.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "updates": {"type": "array", "minItems": 1, "maxItems": 100, "items": {
                "type": "object", "additionalProperties": False,
                "required": ["memory_id", "importance"],
                "properties": {"memory_id": {"type": "string"},
                               "importance": {"type": "number", "minimum": 0, "maximum": 1}}}},
        }, ["agent_id", "updates"]),
        handler=_importance, idempotent=True,
    ),
    ToolSpec(
        name="dakera_session_list", tier="power", title="List sessions",
        description="""\
An agent's sessions, newest first: id, started_at, ended_at (null while active), \
ended_reason (client or idle), summary and memory_count.""",
        input_schema=_schema({"agent_id": AGENT_ID,
                              "active_only": {"type": "boolean", "default": False},
                              **LIMIT_OFFSET}, ["agent_id"]),
        handler=_op("session_list", "agent_id", "active_only", "limit", "offset"),
        read_only=True,
    ),
    ToolSpec(
        name="dakera_session_get", tier="power", title="Read a session",
        description="One session: its times, state, summary, metadata and memory_count.",
        input_schema=_schema({"session_id": SESSION_ID}, ["session_id"]),
        handler=_op("session_get", "session_id"), read_only=True,
    ),
    ToolSpec(
        name="dakera_session_memories", tier="power", title="Memories of a session",
        description="""\
The memories stored in one session, in the order they were stored: what happened in that \
conversation or task.""",
        input_schema=_schema({"session_id": SESSION_ID, **LIMIT_OFFSET,
                              "content_preview_chars": PREVIEW}, ["session_id"]),
        handler=_session_memories, read_only=True,
    ),
    ToolSpec(
        name="dakera_session_touch", tier="power", title="Keep a session open",
        description="""\
Mark a session as active now, so it does not end by itself for being idle. Never reopens an \
ended session (session_state says which it is).""",
        input_schema=_schema({"session_id": SESSION_ID}, ["session_id"]),
        handler=_op("session_touch", "session_id"), idempotent=True,
    ),
    ToolSpec(
        name="dakera_agent_stats", tier="power", title="Agent statistics",
        description="""\
How many memories an agent holds (in total and by type), its sessions (total and active), \
average importance and the times of its oldest and newest memories.""",
        input_schema=_schema({"agent_id": AGENT_ID}, ["agent_id"]),
        handler=_op("agent_stats", "agent_id"), read_only=True,
    ),
    ToolSpec(
        name="dakera_agent_memories", tier="power", title="List an agent's memories",
        description="""\
An agent's memories, newest first, page by page (limit default 50, at most 1000), with \
their content cut to content_preview_chars. To search, use dakera_recall.""",
        input_schema=_schema({"agent_id": AGENT_ID, **LIMIT_OFFSET,
                              "content_preview_chars": PREVIEW, "memory_type": MEMORY_TYPE},
                             ["agent_id"]),
        handler=_agent_memories, read_only=True,
    ),
    ToolSpec(
        name="dakera_wake_up", tier="power", title="Start-up context",
        description="""\
The memories to load at the start of a conversation, without a query: an agent's most \
important recent ones, ranked by importance x recency (halving every 14 days). top_n \
default 20, at most 100.""",
        input_schema=_schema({"agent_id": AGENT_ID,
                              "top_n": {"type": "integer", "minimum": 1, "maximum": 100},
                              "min_importance": {"type": "number", "minimum": 0,
                                                 "maximum": 1}}, ["agent_id"]),
        handler=_wake_up, read_only=True,
    ),
    ToolSpec(
        name="dakera_agent_create", tier="power", title="Create an agent",
        description="""\
Create an agent (its memory namespace) ahead of its first memory; an existing agent is left \
as it is (created: false). Storing a memory creates the agent too.""",
        input_schema=_schema({"agent_id": AGENT_ID}, ["agent_id"]),
        handler=_op("agent_create", "agent_id"), idempotent=True,
    ),
    ToolSpec(
        name="dakera_memory_feedback", tier="power", title="Rate a memory",
        description="""\
Tell the memory how useful it was: upvote (importance x 1.15, at most 1), downvote (x 0.85) \
or flag (wrong or harmful: it fades faster from now on). Returns new_importance.""",
        input_schema=_schema({
            "memory_id": MEMORY_ID, "agent_id": AGENT_ID,
            "signal": {"type": "string", "enum": ["upvote", "downvote", "flag"]},
        }, ["memory_id", "agent_id", "signal"]),
        handler=_op("memory_feedback", "memory_id", "agent_id", "signal"),
    ),
    ToolSpec(
        name="dakera_memory_feedback_get", tier="power", title="Feedback history",
        description="""\
Every feedback signal a memory received, oldest first, with the importance before and \
after each.""",
        input_schema=_schema({"memory_id": MEMORY_ID, "agent_id": AGENT_ID},
                             ["memory_id", "agent_id"]),
        handler=_op("memory_feedback_get", "memory_id", "agent_id"), read_only=True,
    ),
    ToolSpec(
        name="dakera_agent_feedback_summary", tier="power", title="Feedback summary",
        description="""\
An agent's feedback totals (upvotes, downvotes, flags) and health_score: the mean \
importance of its memories (0-1).""",
        input_schema=_schema({"agent_id": AGENT_ID}, ["agent_id"]),
        handler=_op("agent_feedback_summary", "agent_id"), read_only=True,
    ),
    ToolSpec(
        name="dakera_memory_policy_get", tier="power", title="Memory policy",
        description="""\
An agent's memory policy: whether new memories that repeat an existing one are merged into \
it (dedup_on_store, dedup_threshold: cosine 0-1, dedup_memory_types) and how memories fade \
(the decay strategy per type).""",
        input_schema=_schema({"agent_id": AGENT_ID, "namespace": {"type": "string"}}, []),
        handler=_policy_get, read_only=True,
    ),
    ToolSpec(
        name="dakera_memory_policy_set", tier="power", title="Change the memory policy",
        description="""\
Change an agent's deduplication on store: dedup_on_store (true/false), dedup_threshold \
(cosine similarity 0-1 at which a new memory counts as a repeat, e.g. 0.95) and \
dedup_memory_types (the types it applies to). Other fields are kept.""",
        input_schema=_schema({
            "agent_id": AGENT_ID, "namespace": {"type": "string"},
            "dedup_on_store": {"type": "boolean"},
            "dedup_threshold": {"type": "number", "minimum": 0, "maximum": 1},
            "dedup_memory_types": {"type": "array", "items": MEMORY_TYPE},
        }, []),
        handler=_policy_set, idempotent=True,
    ),
    ToolSpec(
        name="dakera_decay_config_get", tier="admin", title="Decay settings",
        description="""\
How memories fade on this server: strategy (exponential, linear or step), half_life_hours, \
min_importance (below it a memory is deleted, when delete_below_floor), how often decay \
runs and the speed of each memory type.""",
        input_schema=_schema({}, []),
        handler=_op("decay_config_get"), read_only=True,
    ),
    ToolSpec(
        name="dakera_decay_config_set", tier="admin", title="Change decay",
        description="""\
Change how memories fade for the whole server (every agent): strategy, half_life_hours, \
min_importance (the floor) and delete_below_floor. Kept across restarts.""",
        input_schema=_schema({
            "strategy": {"type": "string", "enum": ["exponential", "linear", "step"]},
            "half_life_hours": {"type": "number", "exclusiveMinimum": 0},
            "min_importance": {"type": "number", "minimum": 0, "maximum": 1},
            "delete_below_floor": {"type": "boolean"},
        }, []),
        handler=_op("decay_config_set", "strategy", "half_life_hours", "min_importance",
                    "delete_below_floor"),
        idempotent=True,
    ),
    ToolSpec(
        name="dakera_decay_stats", tier="admin", title="Decay statistics",
        description="What the last decay passes did: memories decayed and deleted, and when.",
        input_schema=_schema({}, []),
        handler=_op("decay_stats"), read_only=True,
    ),
    ToolSpec(
        name="dakera_whoami", tier="admin", title="Who am I",
        description="""\
The API key this MCP connection uses: its key_id, name, scope (read < write < admin < \
super_admin) and the namespaces it reaches (null: every one; an agent's namespace is \
_dakera_agent_<agent_id>). auth_enabled false: the server needs no key (in-process or \
key-less). The tools marked admin (decay and memory policy changes, AutoPilot runs, the \
cross-agent network) need an admin key for every namespace.""",
        input_schema=_schema({}, []), handler=_op("whoami"), read_only=True,
    ),
    ToolSpec(
        name="dakera_health", tier="power", title="Server health",
        description="Whether the dakera server is up (status healthy), its version and uptime.",
        input_schema=_schema({}, []), handler=_op("health"), read_only=True,
    ),
    ToolSpec(
        name="dakera_health_ready", tier="power", title="Server readiness",
        description="Whether the server is ready to serve (model loaded, storage readable).",
        input_schema=_schema({}, []), handler=_op("health_ready"), read_only=True,
    ),
    ToolSpec(
        name="dakera_health_live", tier="power", title="Server liveness",
        description="Whether the server process answers, and whether it is still starting.",
        input_schema=_schema({}, []), handler=_op("health_live"), read_only=True,
    ),
    ToolSpec(
        name="dakera_capabilities", tier="power", title="Server capabilities",
        description="""\
What the server supports: its version, embedding model and dimension, search modes, session \
settings and which optional features are on.""",
        input_schema=_schema({}, []), handler=_op("capabilities"), read_only=True,
    ),
)
