"""/v1/sessions: start, end, touch, get, list, and a session's memories -> service.sessions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import PreviewChars, Service
from app.api.schemas import SessionEndRequest, SessionStartRequest


def _start(data: SessionStartRequest, service: Service) -> dict[str, Any]:
    session = service.sessions.start(data.agent_id, metadata=data.metadata,
                                    idle_timeout_secs=data.idle_timeout_secs)
    return {"session": session.to_dict()}


class SessionController(Controller):
    path = "/v1/sessions"

    @post("/start", status_code=201, sync_to_thread=True)
    def start(self, data: JSONBody[SessionStartRequest], service: Service) -> dict[str, Any]:
        return _start(data, service)

    @post("/", status_code=201, sync_to_thread=True)
    def start_alias(self, data: JSONBody[SessionStartRequest],
                    service: Service) -> dict[str, Any]:
        """POST /v1/sessions, as the dakera.ai guides show it (§8): start a session."""
        return _start(data, service)

    @post("/{session_id:str}/end", status_code=200, sync_to_thread=True)
    def end(self, session_id: FromPath[str], service: Service,
            data: JSONBody[SessionEndRequest | None] = None) -> dict[str, Any]:
        session = service.sessions.end(session_id, summary=data.summary if data else None)
        return {"session": session.to_dict(), "memory_count": session.memory_count,
                "ended_reason": session.ended_reason}

    @post("/{session_id:str}/touch", status_code=200, sync_to_thread=True)
    def touch(self, session_id: FromPath[str], service: Service) -> dict[str, Any]:
        session, deadline = service.sessions.touch(session_id)
        return {"session": session.to_dict(),
                "session_state": "active" if session.active else "ended",
                "idle_deadline_at": deadline}

    @get("/{session_id:str}", sync_to_thread=True)
    def get_session(self, session_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.sessions.get(session_id).to_dict()

    @get("/", sync_to_thread=True)
    def list_sessions(self, service: Service, agent_id: FromQuery[str | None] = None,
                      active_only: FromQuery[bool] = False, limit: FromQuery[int] = 50,
                      offset: FromQuery[int] = 0) -> dict[str, Any]:
        sessions, total = service.sessions.find(agent_id=agent_id, active_only=active_only,
                                                limit=limit, offset=offset)
        return {"sessions": [s.to_dict() for s in sessions], "total": total}

    @get("/{session_id:str}/memories", sync_to_thread=True)
    def memories(self, session_id: FromPath[str], service: Service,
                 limit: FromQuery[int] = 50, offset: FromQuery[int] = 0,
                 content_preview_chars: PreviewChars = None) -> dict[str, Any]:
        chars = content_preview_chars
        session, memories, total = service.sessions.memories(session_id, limit=limit,
                                                            offset=offset)
        return {"session": session.to_dict(), "memories": [m.to_dict(chars) for m in memories],
                "total": total}
