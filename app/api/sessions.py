"""/v1/sessions: start, end, touch, get, list, and a session's memories -> service.sessions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.access import in_body, in_query, need, session_in_path
from app.api.deps import PreviewChars, Principal, Service
from app.api.schemas import SessionEndRequest, SessionStartRequest


class SessionController(Controller):
    path = "/v1/sessions"

    @post("/start", status_code=201, opt=need("write", agent=in_body()), sync_to_thread=True)
    def start(self, data: JSONBody[SessionStartRequest], service: Service) -> dict[str, Any]:
        session = service.sessions.start(data.agent_id, metadata=data.metadata,
                                        idle_timeout_secs=data.idle_timeout_secs)
        return {"session": session.to_dict()}

    @post("/{session_id:str}/end", status_code=200, opt=need("write", agent=session_in_path()),
          sync_to_thread=True)
    def end(self, session_id: FromPath[str], service: Service,
            data: JSONBody[SessionEndRequest | None] = None) -> dict[str, Any]:
        session = service.sessions.end(session_id, summary=data.summary if data else None)
        return {"session": session.to_dict(), "memory_count": session.memory_count,
                "ended_reason": session.ended_reason}

    @post("/{session_id:str}/touch", status_code=200,
          opt=need("write", agent=session_in_path()), sync_to_thread=True)
    def touch(self, session_id: FromPath[str], service: Service) -> dict[str, Any]:
        session, deadline = service.sessions.touch(session_id)
        return {"session": session.to_dict(),
                "session_state": "active" if session.active else "ended",
                "idle_deadline_at": deadline}

    @get("/{session_id:str}", opt=need("read", agent=session_in_path()), sync_to_thread=True)
    def get_session(self, session_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.sessions.get(session_id).to_dict()

    @get("/", opt=need("read", agent=in_query(optional=True), listing=True),
         sync_to_thread=True)
    def list_sessions(self, service: Service, principal: Principal,
                      agent_id: FromQuery[str | None] = None,
                      active_only: FromQuery[bool] = False, limit: FromQuery[int] = 50,
                      offset: FromQuery[int] = 0) -> dict[str, Any]:
        among = None  # a key limited to some agents sees their sessions only
        if agent_id is None and not principal.unrestricted:
            among = [a["agent_id"] for a in service.agents.all()
                     if principal.reaches_agent(a["agent_id"])]
        sessions, total = service.sessions.find(agent_id=agent_id, active_only=active_only,
                                                limit=limit, offset=offset, among=among)
        return {"sessions": [s.to_dict() for s in sessions], "total": total}

    @get("/{session_id:str}/memories", opt=need("read", agent=session_in_path()),
         sync_to_thread=True)
    def memories(self, session_id: FromPath[str], service: Service,
                 limit: FromQuery[int] = 50, offset: FromQuery[int] = 0,
                 content_preview_chars: PreviewChars = None) -> dict[str, Any]:
        chars = content_preview_chars
        session, memories, total = service.sessions.memories(session_id, limit=limit,
                                                            offset=offset)
        return {"session": session.to_dict(), "memories": [m.to_dict(chars) for m in memories],
                "total": total}
