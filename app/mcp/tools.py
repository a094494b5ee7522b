"""The MCP tools of everyday memory work (the first ten of dakera-mcp's `core` profile):
names, descriptions and input schemas, each turned into a request for a Backend and its
answer shaped for a model. The other tools are in graph_tools.py and manage_tools.py; the
catalogue and its profiles in catalogue.py.

The descriptions are read by the model that calls the tools, so they say when to use each
tool and how to use it well, not how it is implemented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from app.errors import ValidationError
from app.mcp.backend import Backend

INSTRUCTIONS = """\
dakera is your long-term memory: what you store here is still there in later conversations.

- Use one stable agent_id for the person or project you work for, the same one every time \
(for example "alice" or "acme-billing"). Memories of different agent_ids never mix.
- Before answering anything that may depend on earlier conversations (preferences, people, \
decisions, ongoing work, how something was solved), call dakera_recall with a specific query.
- When you learn something worth keeping, call dakera_store: one self-contained fact per \
memory, with an importance that says how much it matters.
- When the user corrects something, store the corrected fact and dakera_forget the old one.
- Optionally wrap a piece of work in dakera_session_start / dakera_session_end and pass the \
session id to dakera_store.
"""

# -- shared schema pieces --------------------------------------------------------------------

AGENT_ID = {"type": "string", "description": (
    "Whose memories: a stable id for the person, assistant or project, e.g. \"alice\". "
    "Letters, digits, '_', '-', '.'; starts with a letter or digit. Use the same id every time.")}
TAGS_ANY = {"type": "array", "items": {"type": "string"}, "description": (
    "Only memories carrying at least one of these tags.")}
TAGS_ALL = {"type": "array", "items": {"type": "string"}, "description": (
    "Only memories carrying all of these tags.")}
MEMORY_TYPE = {"type": "string", "enum": ["episodic", "semantic", "procedural", "working"],
               "description": "Only memories of this type."}
MIN_IMPORTANCE = {"type": "number", "description": (
    "Only memories at least this important (0-1); e.g. 0.7 for important and critical ones.")}
SESSION_FILTER = {"type": "string", "description": "Only memories stored in this session."}
LANG = {"type": "string", "description": (
    "Language of the text, e.g. \"en\". Accepted for compatibility: this server matches "
    "meaning in any language and stems keywords as English.")}
TOP_K_DOC = "How many memories to return (1-1000)."


def _top_k(default: int) -> dict[str, Any]:
    return {"type": "integer", "default": default, "description": f"{TOP_K_DOC} Default {default}."}


BATCH_FILTERS: dict[str, Any] = {
    "tags": TAGS_ALL,
    "min_importance": {"type": "number", "description": "Only memories with importance >= this."},
    "max_importance": {"type": "number", "description": "Only memories with importance <= this."},
    "created_after": {"type": "integer", "description": (
        "Only memories stored after this time (unix seconds).")},
    "created_before": {"type": "integer", "description": (
        "Only memories stored before this time (unix seconds).")},
    "memory_type": MEMORY_TYPE,
    "session_id": SESSION_FILTER,
}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


# -- result shaping --------------------------------------------------------------------------

def memory_view(m: dict[str, Any]) -> dict[str, Any]:
    """A memory as a model needs it: no bookkeeping fields, no nulls."""
    out: dict[str, Any] = {k: m[k] for k in ("id", "content", "memory_type", "importance",
                                             "tags") if k in m}
    for key in ("session_id", "expires_at"):
        if m.get(key) is not None:
            out[key] = m[key]
    if m.get("metadata"):
        out["metadata"] = m["metadata"]
    if "created_at" in m:
        out["created_at"] = m["created_at"]
    return out


def hits_view(body: dict[str, Any]) -> dict[str, Any]:
    """Ranked results (best first), each memory with its final score."""
    memories = []
    for hit in body.get("memories", []):
        inner = hit.get("memory", hit)
        view = memory_view(inner)
        score = hit.get("rank_score", hit.get("weighted_score", hit.get("score")))
        if score is not None:
            view["score"] = round(float(score), 4)
        memories.append(view)
    out: dict[str, Any] = {"memories": memories, "count": len(memories)}
    if "associated_memories" in body:
        out["associated"] = [associated_view(a) for a in body["associated_memories"]]
    return out


def associated_view(item: dict[str, Any]) -> dict[str, Any]:
    """A graph neighbour of the results: the memory, how it was reached and its score."""
    view = memory_view(item.get("memory", item))
    for key in ("score", "depth", "edge_type", "associated_with"):
        if key in item:
            view[key] = round(float(item[key]), 4) if key == "score" else item[key]
    return view


# -- the tools -------------------------------------------------------------------------------

Handler = Callable[[Backend, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    # core: listed by default; power / admin: listed by those profiles; meta: always listed
    tier: str = "core"
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        Draft202012Validator.check_schema(self.input_schema)
        object.__setattr__(self, "validator", Draft202012Validator(self.input_schema))

    def check(self, arguments: dict[str, Any]) -> None:
        """Raise ValidationError (INVALID_REQUEST) when the arguments do not fit the schema."""
        error = best_match(self.validator.iter_errors(arguments))
        if error is None:
            return
        where = ".".join(str(p) for p in error.absolute_path)
        prefix = f"'{where}': " if where else ""
        raise ValidationError(f"invalid arguments for {self.name}: {prefix}{error.message}")


def _pick(args: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: args[n] for n in names if n in args}


async def _store(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = _pick(args, "agent_id", "content", "memory_type", "importance", "tags", "session_id",
                 "metadata", "ttl_seconds", "expires_at", "lang")
    out = await backend.store(body)
    result: dict[str, Any] = {"stored": True, "memory": memory_view(out["memory"])}
    if out.get("session_state"):
        result["session_state"] = out["session_state"]
    return result


async def _recall(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"top_k": 5, **_pick(args, "agent_id", "query", "top_k", "min_importance", "tags",
                                "memory_type", "session_id", "since", "until", "lang",
                                "include_associated", "associated_memories_cap",
                                "associated_memories_depth", "associated_memories_min_weight")}
    return hits_view(await backend.recall(body))


async def _search(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"top_k": 10, **_pick(args, "agent_id", "query", "top_k", "min_importance", "tags",
                                 "memory_type", "session_id", "lang")}
    return hits_view(await backend.search(body))


async def _fulltext(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"top_k": 10, **_pick(args, "agent_id", "query", "top_k"), "routing": "bm25"}
    return hits_view(await backend.search(body))


async def _hybrid(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    weight = args.get("vector_weight", 0.5)
    # The two ends are single channels: all meaning, or all keywords.
    routing = "vector" if weight == 1 else "bm25" if weight == 0 else "hybrid"
    body: dict[str, Any] = {"agent_id": args.get("agent_id"), "query": args.get("text"),
                            "top_k": args.get("top_k", 10), "routing": routing}
    if routing == "hybrid":
        body["vector_weight"] = weight
    return hits_view(await backend.search(body))


async def _forget(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    # An explicit empty list would mean "everything" (tags) or "nothing" (ids) to the
    # server; a model sending [] means "not this filter", so empty lists are dropped.
    body = {k: v for k, v in _pick(args, "agent_id", "memory_ids", "tags").items() if v != []}
    out = await backend.forget(body)
    return {"deleted_count": out.get("deleted_count", 0)}


def _batch_filter(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _pick(args, *BATCH_FILTERS).items() if v != []}


async def _batch_recall(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"agent_id": args.get("agent_id"), "filter": _batch_filter(args),
            "limit": args.get("limit", 100)}
    out = await backend.batch_recall(body)
    return {"memories": [memory_view(m) for m in out.get("memories", [])],
            "count": len(out.get("memories", [])), "total": out.get("total"),
            "filtered": out.get("filtered"), "truncated": out.get("truncated", False)}


async def _batch_forget(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    body = {"agent_id": args.get("agent_id"), "filter": _batch_filter(args)}
    out = await backend.batch_forget(body)
    return {"deleted_count": out.get("deleted_count", 0)}


async def _session_start(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    out = await backend.start_session(_pick(args, "agent_id", "metadata", "idle_timeout_secs"))
    return {"session": out["session"]}


async def _session_end(backend: Backend, args: dict[str, Any]) -> dict[str, Any]:
    out = await backend.end_session(args["session_id"], _pick(args, "summary"))
    return {"session": out["session"], "memory_count": out.get("memory_count", 0),
            "ended_reason": out.get("ended_reason")}


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="dakera_store",
        title="Store a memory",
        description="""\
Save one memory for an agent so it can be recalled in later conversations.

Store durable, reusable information: the user's preferences, facts about people, projects \
and environments, decisions and their reasons, commitments, lessons learned, how a problem \
was solved. Do not store small talk, something already stored (check with dakera_search), \
or secrets such as passwords and keys unless the user asks you to.

Write each memory as one self-contained statement that makes sense without this \
conversation: name who or what it is about and keep concrete values ("Alice prefers dark \
mode in every editor", not "she likes it dark").

importance (0-1, default 0.5) decides how strongly the memory competes in recall:
- 0.9-1.0 critical: must never be missed (allergies, hard constraints, security rules)
- 0.7-0.8 important: preferences, key decisions, core project facts
- 0.5 standard: useful context (the default)
- 0.3-0.4 ephemeral: short-lived details likely to go stale
- 0.1-0.2 noise: barely worth keeping

Returns the stored memory with its id (keep it to forget or correct the memory later).""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "content": {"type": "string", "description": (
                "The memory: one self-contained statement (at most 100000 bytes).")},
            "importance": {"type": "number", "default": 0.5, "description": (
                "0-1: 0.9-1.0 critical, 0.7-0.8 important, 0.5 standard, 0.3-0.4 ephemeral, "
                "0.1-0.2 noise.")},
            "memory_type": {"type": "string", "default": "episodic",
                            "enum": ["episodic", "semantic", "procedural", "working"],
                            "description": (
                                "episodic: something that happened (default); semantic: a "
                                "lasting fact or preference; procedural: how to do something; "
                                "working: scratch notes for the current task (add ttl_seconds).")},
            "tags": {"type": "array", "items": {"type": "string"}, "description": (
                "Short labels to filter by later, e.g. [\"preferences\", \"editor\"].")},
            "session_id": {"type": "string", "description": (
                "Group the memory with a session from dakera_session_start.")},
            "metadata": {"type": "object", "description": "Any extra JSON fields to keep."},
            "ttl_seconds": {"type": "integer", "description": (
                "Delete the memory this many seconds after storing it.")},
            "expires_at": {"type": "integer", "description": (
                "Delete the memory at this time (unix seconds); wins over ttl_seconds.")},
            "lang": LANG,
        }, ["agent_id", "content"]),
        handler=_store,
    ),
    ToolSpec(
        name="dakera_recall",
        title="Recall memories",
        description="""\
Recall an agent's memories most relevant to a query, best first. Matching combines meaning \
(semantic similarity) and keywords, and important memories rank higher. Each result has a \
score: higher is better, comparable within one answer only.

Call it before answering anything that may depend on earlier conversations. Query well:
- Ask a specific question or name the concrete things you need ("which editor theme does \
Alice prefer?", "deploy steps for the billing service"), not a vague word.
- Several focused recalls beat one broad one.
- Exact identifiers (order numbers, host names, error codes) are matched literally.
- Narrow with filters you know: tags (any of), memory_type, min_importance (e.g. 0.7 for \
only important memories), session_id, since/until (ISO-8601 times).
- top_k is 5 by default: raise it (10-20) for broad questions, lower it for one fact.

Each memory returned counts as a use of it. To look something up without that, use \
dakera_search.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "query": {"type": "string", "description": (
                "What you need to know, as a specific question or description.")},
            "top_k": _top_k(5),
            "min_importance": MIN_IMPORTANCE,
            "tags": TAGS_ANY,
            "memory_type": MEMORY_TYPE,
            "session_id": SESSION_FILTER,
            "since": {"type": "string", "description": (
                "Only memories of events at or after this ISO-8601 time, e.g. "
                "\"2026-05-01T00:00:00Z\".")},
            "until": {"type": "string", "description": (
                "Only memories of events at or before this ISO-8601 time.")},
            "lang": LANG,
            "include_associated": {"type": "boolean", "description": (
                "Also return, under `associated`, memories linked in the knowledge graph to "
                "the results (same facts restated, shared people or ids, explicit links), "
                "which may not match the query's words. Each carries its depth (edges from "
                "a result), the edge_type that reached it, associated_with (that result's "
                "id) and a score: the result's relevance times the edge weights, 0-1.")},
            "associated_memories_cap": {"type": "integer", "minimum": 1, "maximum": 10,
                                        "description": "At most this many associated "
                                                       "memories (default 10)."},
            "associated_memories_depth": {"type": "integer", "minimum": 1, "maximum": 3,
                                          "description": "How many edges away from a result "
                                                         "(1-3, default 1)."},
            "associated_memories_min_weight": {"type": "number", "minimum": 0, "maximum": 1,
                                               "description": "Follow only edges of at least "
                                                              "this weight (0-1)."},
        }, ["agent_id", "query"]),
        handler=_recall,
        read_only=True,
    ),
    ToolSpec(
        name="dakera_search",
        title="Search memories",
        description="""\
Search an agent's memories like dakera_recall (meaning and keywords, best first), as a \
plain lookup: the results do not count as uses. Good for checking whether something is \
already stored before storing it, or for browsing a topic. top_k is 10 by default.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "query": {"type": "string", "description": "What to look for."},
            "top_k": _top_k(10),
            "min_importance": MIN_IMPORTANCE,
            "tags": TAGS_ANY,
            "memory_type": MEMORY_TYPE,
            "session_id": SESSION_FILTER,
            "lang": LANG,
        }, ["agent_id", "query"]),
        handler=_search,
        read_only=True,
    ),
    ToolSpec(
        name="dakera_fulltext_search",
        title="Keyword search",
        description="""\
Keyword (BM25 full-text) search over an agent's memories: finds memories that contain the \
query's words, best match first, with no semantic matching. Use it for exact terms: names, \
identifiers, error messages, file names, when dakera_recall's matching by meaning is too \
loose. Common words such as "the" or "what" are ignored. top_k is 10 by default.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "query": {"type": "string", "description": "The words to find."},
            "top_k": _top_k(10),
        }, ["agent_id", "query"]),
        handler=_fulltext,
        read_only=True,
    ),
    ToolSpec(
        name="dakera_hybrid_search",
        title="Hybrid search",
        description="""\
Search an agent's memories by meaning (vector similarity) and keywords (BM25) with an \
explicit balance: vector_weight 1.0 = meaning only, 0.0 = keywords only, 0.5 (default) = \
both equally. Use it to steer between the two when dakera_recall's default balance does not \
find what you need. The results do not count as uses. top_k is 10 by default.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "text": {"type": "string", "description": "What to look for."},
            "vector_weight": {"type": "number", "default": 0.5, "description": (
                "0-1: the share of meaning against keywords. 1.0 meaning only, 0.0 keywords "
                "only.")},
            "top_k": _top_k(10),
        }, ["agent_id", "text"]),
        handler=_hybrid,
        read_only=True,
    ),
    ToolSpec(
        name="dakera_forget",
        title="Forget memories",
        description="""\
Delete an agent's memories for good: those with the given ids (from dakera_store, \
dakera_recall or dakera_search results) and/or those carrying any of the given tags; with \
both, only memories matching both. Use it when the user asks you to forget something, or a \
memory is wrong or outdated (store the corrected fact, then forget the old memory). Returns \
deleted_count.""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "memory_ids": {"type": "array", "items": {"type": "string"}, "description": (
                "Ids of the memories to delete.")},
            "tags": {"type": "array", "items": {"type": "string"}, "description": (
                "Delete memories carrying any of these tags.")},
        }, ["agent_id"]),
        handler=_forget,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="dakera_batch_recall",
        title="List memories by filter",
        description="""\
List an agent's memories by filters alone, newest first: no query and no ranking. Use it to \
review what is stored (everything with a tag, everything from a session, the important ones) \
or to check what dakera_batch_forget would delete. Every filter given must match (tags: the \
memory carries all of them); with no filter it lists everything up to limit. Returns the \
memories, total (all the agent's memories) and filtered (how many match).""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            **BATCH_FILTERS,
            "limit": {"type": "integer", "default": 100, "description": (
                "At most this many memories (1-10000). Default 100.")},
        }, ["agent_id"]),
        handler=_batch_recall,
        read_only=True,
    ),
    ToolSpec(
        name="dakera_batch_forget",
        title="Delete memories by filter",
        description="""\
Delete every memory of an agent that matches all the given filters (tags: the memory carries \
all of them). At least one filter is required. This cannot be undone: run \
dakera_batch_recall with the same filters first and check what it lists. Returns \
deleted_count.""",
        input_schema=_schema({"agent_id": AGENT_ID, **BATCH_FILTERS}, ["agent_id"]),
        handler=_batch_forget,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="dakera_session_start",
        title="Start a session",
        description="""\
Start a session: a span of work for an agent, such as one conversation or one task. Pass \
the returned session id as session_id to dakera_store to group memories with it, and to \
dakera_recall to focus on them. End it with dakera_session_end; an idle session also ends \
by itself (after idle_timeout_secs of inactivity, the server's default when not given).""",
        input_schema=_schema({
            "agent_id": AGENT_ID,
            "metadata": {"type": "object", "description": (
                "Any JSON describing the session, e.g. {\"topic\": \"billing migration\"}.")},
            "idle_timeout_secs": {"type": "integer", "description": (
                "End the session after this many seconds without activity; 0 = never "
                "(at most 2592000, 30 days).")},
        }, ["agent_id"]),
        handler=_session_start,
    ),
    ToolSpec(
        name="dakera_session_end",
        title="End a session",
        description="""\
End a session when its work is done, optionally with a summary of what happened. Ending a \
session that already ended (or is unknown) is harmless. Returns the session and how many \
memories it holds.""",
        input_schema=_schema({
            "session_id": {"type": "string", "minLength": 1, "description": (
                "The id returned by dakera_session_start.")},
            "summary": {"type": "string", "description": "What happened in the session."},
        }, ["session_id"]),
        handler=_session_end,
        idempotent=True,
    ),
)

