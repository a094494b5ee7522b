"""The REST operations the MCP tools beyond the first ten call, each as its route (for the
RemoteBackend) and as the same call on the Service of this process (for the LocalBackend),
answering the JSON body the route answers.

A tool calls `backend.call(name, args)`: the remote backend puts the path's {names} from
args into the path, the names in `query` (and, for GET and DELETE, every other arg) into the
query string, and the rest into the JSON body. Adding a route to the tools is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.service import Service
    from app.service.keys import Principal

Args = dict[str, Any]


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # with {name} placeholders taken from the args
    local: Callable[[Service, Args], Any]
    query: tuple[str, ...] = ()  # args sent in the query string of a POST/PUT/PATCH
    # its route needs an admin key for every namespace: the server's /mcp (which a write
    # key reaches) checks the caller's key before running it on the Service
    admin: bool = False


# Who called the tool being run: the key of the request to the server's /mcp; None in the
# stdio server of `dakera mcp` (in-process: no key, the user runs the server's own files).
CALLER: ContextVar[Principal | None] = ContextVar("dakera_mcp_caller", default=None)


def _whoami(a: Args) -> dict[str, Any]:
    from app.service.keys import AUTH_DISABLED
    return (CALLER.get() or AUTH_DISABLED).whoami()


def agent_namespace(args: Args) -> str:
    """An agent's namespace, from `namespace` or `agent_id`."""
    if args.get("namespace"):
        return str(args["namespace"])
    return "_dakera_agent_" + str(args.get("agent_id", ""))


def _preview(args: Args) -> int | None:
    value = args.get("content_preview_chars", 500)
    return None if value == 0 else value


def _health(s: Service) -> dict[str, Any]:
    if not s.ready:
        return {"status": "starting", "version": s.version}
    return {"status": "healthy", "service": "dakera", "version": s.version,
            "uptime_seconds": s.uptime()}


def _ready(s: Service) -> dict[str, Any]:
    checks = s.readiness_checks()
    return {"ready": all(c["status"] == "ok" for c in checks.values()), "version": s.version,
            "checks": checks}


def _session_memories(s: Service, a: Args) -> dict[str, Any]:
    session, memories, total = s.sessions.memories(a["session_id"], limit=a.get("limit", 50),
                                                   offset=a.get("offset", 0))
    return {"session": session.to_dict(),
            "memories": [m.to_dict(_preview(a)) for m in memories], "total": total}


def _session_list(s: Service, a: Args) -> dict[str, Any]:
    sessions, total = s.sessions.find(agent_id=a.get("agent_id"),
                                      active_only=a.get("active_only", False),
                                      limit=a.get("limit", 50), offset=a.get("offset", 0))
    return {"sessions": [x.to_dict() for x in sessions], "total": total}


def _touch(s: Service, a: Args) -> dict[str, Any]:
    session, deadline = s.sessions.touch(a["session_id"])
    return {"session": session.to_dict(),
            "session_state": "active" if session.active else "ended",
            "idle_deadline_at": deadline}


def _wake_up(s: Service, a: Args) -> dict[str, Any]:
    memories, total = s.agents.wake_up(a["agent_id"], top_n=a.get("top_n", 20),
                                       min_importance=a.get("min_importance", 0.0))
    return {"agent_id": a["agent_id"], "memories": [m.to_dict() for m in memories],
            "total_available": total}


def _create_agent(s: Service, a: Args) -> dict[str, Any]:
    created, info = s.agents.create(a.get("agent_id"))
    return {**info, "created": created}


OPS: dict[str, Op] = {
    # memories
    "memory_get": Op("GET", "/v1/memory/get/{memory_id}", lambda s, a: s.memories.get(
        a.get("memory_id"), a.get("agent_id")).to_dict()),
    "memory_update": Op("PUT", "/v1/memory/update/{memory_id}", lambda s, a: s.memories.update(
        a.get("agent_id"), a.get("memory_id"), content=a.get("content"),
        metadata=a.get("metadata"), memory_type=a.get("memory_type"),
        importance=a.get("importance"), tags=a.get("tags")).to_dict(), query=("agent_id",)),
    "memory_importance": Op("POST", "/v1/memory/importance", lambda s, a:
                            s.feedback.set_importance(a.get("agent_id"), a.get("memory_id"),
                                                      a.get("importance")).to_dict()),
    "consolidate": Op("POST", "/v1/memory/consolidate", lambda s, a: s.consolidation.consolidate(
        a.get("agent_id"), memory_ids=a.get("memory_ids"), threshold=a.get("threshold"),
        target_type=a.get("target_type"))),
    # sessions
    "session_list": Op("GET", "/v1/sessions", _session_list),
    "session_get": Op("GET", "/v1/sessions/{session_id}", lambda s, a: s.sessions.get(
        a["session_id"]).to_dict()),
    "session_memories": Op("GET", "/v1/sessions/{session_id}/memories", _session_memories),
    "session_touch": Op("POST", "/v1/sessions/{session_id}/touch", _touch),
    # agents
    "agent_stats": Op("GET", "/v1/agents/{agent_id}/stats", lambda s, a: s.agents.stats(
        a["agent_id"])),
    "agent_memories": Op("GET", "/v1/agents/{agent_id}/memories", lambda s, a: [
        m.to_dict(_preview(a)) for m in s.agents.memories(
            a["agent_id"], memory_type=a.get("memory_type"), limit=a.get("limit", 50),
            offset=a.get("offset", 0))]),
    "wake_up": Op("GET", "/v1/agents/{agent_id}/wake-up", _wake_up),
    "agent_create": Op("POST", "/v1/agents", _create_agent),
    # feedback
    "memory_feedback": Op("POST", "/v1/memories/{memory_id}/feedback", lambda s, a:
                          s.feedback.give(a.get("agent_id"), a["memory_id"], a.get("signal"))),
    "memory_feedback_get": Op("GET", "/v1/memories/{memory_id}/feedback", lambda s, a:
                              s.feedback.history(a.get("agent_id"), a["memory_id"])),
    "agent_feedback_summary": Op("GET", "/v1/agents/{agent_id}/feedback/summary",
                                 lambda s, a: s.feedback.summary(a["agent_id"])),
    # the knowledge graph
    "knowledge_graph": Op("POST", "/v1/knowledge/graph", lambda s, a:
                          s.knowledge.knowledge_graph(a.get("agent_id"), a.get("memory_id"),
                                                      a.get("depth"), a.get("min_similarity"))),
    "memory_graph": Op("GET", "/v1/memories/{memory_id}/graph", lambda s, a:
                       s.graph.memory_graph(a["memory_id"], a.get("depth", 1),
                                            a.get("agent_id"))),
    "knowledge_query": Op("GET", "/v1/knowledge/query", lambda s, a: s.graph.query(
        a.get("agent_id"), root_id=a.get("root_id"), edge_type=a.get("edge_type"),
        min_weight=a.get("min_weight"), max_depth=a.get("max_depth", 3),
        limit=a.get("limit", 100))),
    "memory_path": Op("GET", "/v1/memories/{memory_id}/path", lambda s, a:
                      s.graph.memory_path(a["memory_id"], a.get("to"), a.get("agent_id"))),
    "memory_link": Op("POST", "/v1/memories/{memory_id}/links", lambda s, a: s.graph.link(
        a["memory_id"], a.get("target_id"), a.get("agent_id"), a.get("label"))),
    "graph_export": Op("GET", "/v1/knowledge/export", lambda s, a: s.graph.export(
        a.get("agent_id"), a.get("format", "json"))),
    "cross_agent": Op("POST", "/v1/knowledge/network/cross-agent", admin=True,
                      local=lambda s, a: s.knowledge.cross_agent(**{k: a.get(k) for k in (
                          "agent_ids", "min_similarity", "max_nodes_per_agent",
                          "min_importance", "max_cross_edges", "content_preview_chars")})),
    "deduplicate": Op("POST", "/v1/knowledge/deduplicate", lambda s, a:
                      s.consolidation.deduplicate(a.get("agent_id"),
                                                  dry_run=a.get("dry_run", False),
                                                  threshold=a.get("threshold"),
                                                  memory_type=a.get("memory_type"))),
    # entities
    "extract": Op("POST", "/v1/extract", lambda s, a: s.extraction.extract_text(
        a.get("text"), namespace=a.get("namespace"), provider=a.get("provider"),
        model=a.get("model"), lang=a.get("lang"), agent_id=a.get("agent_id"),
        extractor_override=a.get("extractor_override"))),
    "auto_tag": Op("POST", "/v1/memories/extract", lambda s, a: s.extraction.extract(
        a.get("content"), a.get("entity_types"), a.get("lang"))),
    "memory_entities": Op("GET", "/v1/memory/entities/{memory_id}", lambda s, a:
                          s.extraction.memory_entities(a["memory_id"], a.get("agent_id"))),
    "entity_config_get": Op("GET", "/v1/namespaces/{namespace}/config", lambda s, a:
                            s.policies.ner(a["namespace"])),
    "entity_config_set": Op("PATCH", "/v1/namespaces/{namespace}/config", lambda s, a:
                            s.policies.set_ner(a["namespace"], {
                                k: v for k, v in a.items() if k != "namespace"},
                                replace=False)),
    # policies, decay, autopilot
    "memory_policy_get": Op("GET", "/v1/namespaces/{namespace}/memory_policy", lambda s, a:
                            s.policies.get(a["namespace"])),
    "memory_policy_set": Op("PUT", "/v1/namespaces/{namespace}/memory_policy", admin=True,
                            local=lambda s, a: s.policies.set(a["namespace"], {
                                k: v for k, v in a.items() if k != "namespace"})),
    "decay_config_get": Op("GET", "/admin/decay/config", lambda s, a: s.decay.config()),
    "decay_config_set": Op("PUT", "/admin/decay/config", admin=True,
                           local=lambda s, a: s.decay.set_config(**{k: a.get(k) for k in (
                               "strategy", "half_life_hours", "min_importance",
                               "delete_below_floor")})),
    "decay_stats": Op("GET", "/admin/decay/stats", admin=True,
                      local=lambda s, a: s.decay.stats()),
    "autopilot_status": Op("GET", "/admin/autopilot/status", lambda s, a: s.autopilot.status()),
    "autopilot_trigger": Op("POST", "/admin/autopilot/trigger", admin=True,
                            local=lambda s, a: s.autopilot.trigger(a.get("action"))),
    # the server
    "health": Op("GET", "/health", lambda s, a: _health(s)),
    "health_ready": Op("GET", "/health/ready", lambda s, a: _ready(s)),
    "health_live": Op("GET", "/health/live", lambda s, a: {
        "alive": True, "version": s.version, "uptime_seconds": s.uptime(),
        "starting": not s.ready}),
    "capabilities": Op("GET", "/v1/capabilities", lambda s, a: s.capabilities.describe()),
    "whoami": Op("GET", "/v1/auth/whoami", lambda s, a: _whoami(a)),
}

# Operations answered without the engine: they must not wait for the model to load.
NO_ENGINE = frozenset({"health", "health_live", "capabilities", "whoami"})

__all__ = ["CALLER", "NO_ENGINE", "OPS", "Op", "agent_namespace"]
