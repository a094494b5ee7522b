"""/v1/sessions: start, end, touch, get, list, and a session's memories -> service.sessions."""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import PreviewChars, Principal, Service
from app.api.schemas import (
    MemoryOut,
    SessionBody,
    SessionEndRequest,
    SessionOut,
    SessionStartRequest,
    error_responses,
    memory_out,
    session_out,
)
from app.api.scopes import in_body, in_query, need, session_in_path


class SessionEnded(msgspec.Struct, kw_only=True):
    session: SessionOut
    memory_count: int
    ended_reason: str | None


class SessionTouched(msgspec.Struct, kw_only=True):
    session: SessionOut
    session_state: str  # active or ended
    idle_deadline_at: int | None  # when it ends if idle until then (null: never, or ended)


class SessionList(msgspec.Struct, kw_only=True):
    sessions: list[SessionOut]
    total: int


class SessionMemories(msgspec.Struct, kw_only=True):
    session: SessionOut
    memories: list[MemoryOut]
    total: int


class SessionController(Controller):
    path = "/v1/sessions"

    @post("/start", status_code=201, sync_to_thread=True, responses=error_responses(415),
          opt=need("write", agent=in_body()))
    def start(self, data: JSONBody[SessionStartRequest], service: Service) -> SessionBody:
        session = service.sessions.start(data.agent_id, metadata=data.metadata,
                                        idle_timeout_secs=data.idle_timeout_secs)
        return SessionBody(session=session_out(session))

    @post("/{session_id:str}/end", status_code=200, sync_to_thread=True,
          responses=error_responses(413, 415),
          opt=need("write", agent=session_in_path()))
    def end(self, session_id: FromPath[str], service: Service,
            data: JSONBody[SessionEndRequest | None] = None) -> SessionEnded:
        session = service.sessions.end(session_id, summary=data.summary if data else None)
        return SessionEnded(session=session_out(session), memory_count=session.memory_count,
                            ended_reason=session.ended_reason)

    @post("/{session_id:str}/touch", status_code=200, sync_to_thread=True,
          responses=error_responses(404),
          opt=need("write", agent=session_in_path()))
    def touch(self, session_id: FromPath[str], service: Service) -> SessionTouched:
        session, deadline = service.sessions.touch(session_id)
        return SessionTouched(session=session_out(session),
                              session_state="active" if session.active else "ended",
                              idle_deadline_at=deadline)

    @get("/{session_id:str}", sync_to_thread=True, responses=error_responses(404),
         opt=need("read", agent=session_in_path()))
    def get_session(self, session_id: FromPath[str], service: Service) -> SessionOut:
        return session_out(service.sessions.get(session_id))

    @get("/", sync_to_thread=True, responses=error_responses(),
         opt=need("read", agent=in_query(optional=True), listing=True))
    def list_sessions(self, service: Service, principal: Principal,
                      agent_id: FromQuery[str | None] = None,
                      active_only: FromQuery[bool] = False, limit: FromQuery[int] = 50,
                      offset: FromQuery[int] = 0) -> SessionList:
        among = None  # a key limited to some agents sees their sessions only
        if agent_id is None and not principal.unrestricted:
            among = [a["agent_id"] for a in service.agents.all()
                     if principal.reaches_agent(a["agent_id"])]
        sessions, total = service.sessions.find(agent_id=agent_id, active_only=active_only,
                                                limit=limit, offset=offset, among=among)
        return SessionList(sessions=[session_out(s) for s in sessions], total=total)

    @get("/{session_id:str}/memories", sync_to_thread=True, responses=error_responses(404),
         opt=need("read", agent=session_in_path()))
    def memories(self, session_id: FromPath[str], service: Service,
                 limit: FromQuery[int] = 50, offset: FromQuery[int] = 0,
                 content_preview_chars: PreviewChars = None) -> SessionMemories:
        chars = content_preview_chars
        session, memories, total = service.sessions.memories(session_id, limit=limit,
                                                            offset=offset)
        return SessionMemories(session=session_out(session),
                               memories=[memory_out(m, chars) for m in memories], total=total)
