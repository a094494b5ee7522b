"""Paths older clients still send (the contract's §8), answered by the current routes'
service calls: the RS SDK and `dk` (update, feedback), older GO (everything under
/v1/agents/{agent}/memories), the dakera.ai guides (/v1/memories, /v1/sessions), and the
agent's session listing (§3.1). Aliases on a path a controller already serves with another
method live in that controller (POST /v1/agents/{id}/memories, POST /v1/sessions)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import Service
from app.api.schemas import error_responses
from app.api.scopes import in_body, in_path, need
from app.errors import ValidationError

Body = JSONBody[dict[str, Any]]
# What these routes answer besides 2xx (the error envelope), for the OpenAPI document.
ERRORS = error_responses(404, 409, 413, 415)

_FEEDBACK_WORDS = {"good": "upvote", "useful": "upvote", "relevant": "upvote",
                   "bad": "downvote", "wrong": "downvote", "irrelevant": "downvote"}


def _signal(data: dict[str, Any]) -> Any:
    """The feedback signal of an older client's body: `signal`, `feedback` (a word) or a
    0-1 `score` / `relevance_score` (>= 0.5 up, below down)."""
    for key in ("signal", "feedback", "feedback_type"):
        value = data.get(key)
        if isinstance(value, str):
            return _FEEDBACK_WORDS.get(value.lower(), value)
    for key in ("score", "relevance_score", "rating"):
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return "upvote" if value >= 0.5 else "downvote"
    raise ValidationError("feedback needs 'signal' (upvote, downvote or flag)")


def store(service: Service, agent_id: Any, data: dict[str, Any]) -> dict[str, Any]:
    result = service.memories.store(
        agent_id, data.get("content"), memory_type=data.get("memory_type"),
        importance=data.get("importance"), tags=data.get("tags"),
        metadata=data.get("metadata"), session_id=data.get("session_id"),
        ttl_seconds=data.get("ttl_seconds"), expires_at=data.get("expires_at"),
        event_time=data.get("event_time"))
    return {"memory": result.memory.to_dict(), "memory_id": result.memory.id,
            "agent_id": result.memory.agent_id,
            "embedding_time_ms": round(result.embedding_ms, 3)}


def _recall(service: Service, agent_id: Any, data: dict[str, Any], *,
            search: bool) -> dict[str, Any]:
    fields = ("memory_type", "min_importance", "tags", "session_id", "routing", "vector_weight")
    options: dict[str, Any] = {k: data[k] for k in fields if data.get(k) is not None}
    query = data.get("query")
    top_k = data.get("top_k", 10 if search else 5)
    if search:
        out = service.recall.search(agent_id, query, top_k=top_k, **options)
    else:
        out = service.recall.recall(agent_id, query, top_k=top_k, neighborhood=False, **options)
    return {"memories": [h.to_dict() for h in out.hits], "total_found": len(out.hits)}


class AgentMemoryAliasController(Controller):
    path = "/v1/agents/{agent_id:str}"

    @post("/memories/recall", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", agent=in_path()))
    def recall(self, agent_id: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        return _recall(service, agent_id, data, search=False)

    @post("/memories/search", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", agent=in_path()))
    def search(self, agent_id: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        return _recall(service, agent_id, data, search=True)

    @get("/memories/{memory_id:str}", sync_to_thread=True, responses=ERRORS,
         opt=need("read", agent=in_path()))
    def get_memory(self, agent_id: FromPath[str], memory_id: FromPath[str],
                   service: Service) -> dict[str, Any]:
        return service.memories.get(memory_id, agent_id).to_dict()

    @put("/memories/{memory_id:str}", sync_to_thread=True, responses=ERRORS,
         opt=need("write", agent=in_path()))
    def update(self, agent_id: FromPath[str], memory_id: FromPath[str], data: Body,
               service: Service) -> dict[str, Any]:
        return service.memories.update(
            agent_id, memory_id, content=data.get("content"), metadata=data.get("metadata"),
            memory_type=data.get("memory_type"), importance=data.get("importance"),
            tags=data.get("tags"), ttl_seconds=data.get("ttl_seconds"),
            expires_at=data.get("expires_at")).to_dict()

    @post("/memories/feedback", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", agent=in_path()))
    def feedback(self, agent_id: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        return service.feedback.give(agent_id, data.get("memory_id"), _signal(data))

    @post("/memories/importance", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", agent=in_path()))
    def importance(self, agent_id: FromPath[str], data: Body,
                   service: Service) -> dict[str, Any]:
        ids = data.get("memory_ids") or ([data["memory_id"]] if data.get("memory_id") else [])
        if not isinstance(ids, list) or not ids:
            raise ValidationError("'memory_ids' (or 'memory_id') is required")
        updated = [service.feedback.set_importance(agent_id, i, data.get("importance"))
                   for i in ids]
        return {"updated": [m.to_dict() for m in updated], "updated_count": len(updated)}

    @get("/sessions", sync_to_thread=True, responses=ERRORS,
         opt=need("read", agent=in_path()))
    def sessions(self, agent_id: FromPath[str], service: Service,
                 active_only: FromQuery[bool] = False, limit: FromQuery[int] = 50,
                 offset: FromQuery[int] = 0) -> dict[str, Any]:
        found, total = service.sessions.find(agent_id=agent_id, active_only=active_only,
                                             limit=limit, offset=offset)
        return {"sessions": [s.to_dict() for s in found], "total": total}


class GuideAliasController(Controller):
    """The paths the dakera.ai guides show."""

    path = "/v1"

    @post("/memories", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", agent=in_body()))
    def store(self, data: Body, service: Service) -> dict[str, Any]:
        return store(service, data.get("agent_id"), data)

    @post("/memories/recall", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", agent=in_body()))
    def recall(self, data: Body, service: Service) -> dict[str, Any]:
        return _recall(service, data.get("agent_id"), data, search=False)

