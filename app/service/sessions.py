"""Sessions: start, end, touch, get, list, a session's memories, and idle expiry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from app import validate
from app.config import Settings
from app.errors import NotFoundError, ValidationError
from app.models import Memory, MemoryFilter, Session
from app.service.events import Publisher
from app.store import Store, Tx

MAX_IDLE_TIMEOUT = 2_592_000  # 30 days


def _not_found(session_id: str) -> NotFoundError:
    # The contract's oddity: an unknown session is VECTOR_NOT_FOUND with resource "session".
    return NotFoundError(f"session {session_id!r} not found", resource="session")


def _session_id(value: Any) -> str:
    sid = validate.session_id(value, "session_id")
    if sid is None:
        raise ValidationError("'session_id' is required")
    return sid


IdleEnded = list[tuple[str, str]]  # (session id, agent id) of sessions ended as idle


def announce_idle(events: Publisher, ended: IdleEnded) -> None:
    """session_ended events (reason idle) for sessions a write found idle and ended."""
    for session_id, agent_id in ended:
        events.memory("session_ended", agent_id, session_id=session_id, reason="idle")


class Sessions:
    def __init__(self, store: Store, settings: Settings, now: Callable[[], int],
                 events: Publisher) -> None:
        self.db = store
        self.now = now
        self.events = events
        self.timeout = settings.session_idle_timeout  # the default of sessions without one
        self.max_summary_bytes = settings.max_content_bytes
        self.max_metadata_bytes = settings.max_metadata_bytes

    def expire_idle(self) -> int:
        """End sessions idle past their timeout (cheap when there are none)."""
        now = self.now()
        if not self.db.sessions.any_idle(now, self.timeout):
            return 0
        ended = self.db.write(lambda tx: tx.sessions.expire_idle(now, self.timeout),
                              partial(announce_idle, self.events))
        return len(ended)

    def start(self, agent_id: Any, *, metadata: Any = None,
              idle_timeout_secs: Any = None) -> Session:
        agent = validate.agent_id(agent_id)
        meta = validate.metadata(metadata, max_bytes=self.max_metadata_bytes)
        timeout = None
        if idle_timeout_secs is not None:
            if (isinstance(idle_timeout_secs, bool) or not isinstance(idle_timeout_secs, int)
                    or not 0 <= idle_timeout_secs <= MAX_IDLE_TIMEOUT):
                raise ValidationError("'idle_timeout_secs' must be an integer from 0 (never) "
                                      f"to {MAX_IDLE_TIMEOUT}")
            timeout = idle_timeout_secs
        now = self.now()
        session = Session(id="sess_" + uuid.uuid4().hex, agent_id=agent, started_at=now,
                          last_activity_at=now, idle_timeout_secs=timeout, metadata=meta)
        self.db.write(lambda tx: tx.sessions.start(session))
        self.events.memory("session_started", agent, session_id=session.id)
        return session

    def get(self, session_id: Any) -> Session:
        sid = _session_id(session_id)
        self.expire_idle()
        session = self.db.sessions.get(sid)
        if session is None:
            raise _not_found(sid)
        return session

    def end(self, session_id: Any, *, summary: Any = None) -> Session:
        """End a session (idempotent): an ended session keeps its state; an unknown id
        answers an empty session, as the contract asks."""
        sid = _session_id(session_id)
        text = None if summary is None else validate.content(summary, self.max_summary_bytes,
                                                             "summary")
        now = self.now()

        def job(tx: Tx) -> tuple[IdleEnded, bool]:
            idle = tx.sessions.expire_idle(now, self.timeout)
            return idle, tx.sessions.end(sid, now, text, self.timeout)

        idle, ended = self.db.write(job)
        announce_idle(self.events, idle)
        session = self.db.sessions.get(sid)
        if ended and session is not None:
            self.events.memory("session_ended", session.agent_id, session_id=sid,
                               reason="client")
        if session is None:
            return Session(id=sid, agent_id="", started_at=0, last_activity_at=0)
        return session

    def touch(self, session_id: Any) -> tuple[Session, int | None]:
        """Record activity; never reopens. Returns the session and its idle deadline."""
        session = self.get(session_id)  # expires it first if it timed out
        if session.active:
            self.record_activity(session.agent_id, {session.id})
            session = self.get(session.id)
        return session, self.idle_deadline(session)

    def idle_deadline(self, session: Session) -> int | None:
        timeout = (self.timeout if session.idle_timeout_secs is None
                   else session.idle_timeout_secs)
        if not session.active or timeout == 0:
            return None
        return session.last_activity_at + timeout

    def find(self, *, agent_id: Any = None, active_only: bool = False, limit: Any = 50,
             offset: Any = 0, among: list[str] | None = None) -> tuple[list[Session], int]:
        """Sessions newest first (of one agent, or active ones only, when asked) and how
        many there are; `among` limits them to those agents."""
        agent: str | list[str] | None = (among if agent_id is None
                                         else validate.agent_id(agent_id))
        n = validate.limit(limit, 1000)
        skip = validate.offset(offset)
        self.expire_idle()
        return self.db.sessions.newest(agent, active_only, n, skip)

    def memories(self, session_id: Any, *, limit: Any = 50, offset: Any = 0
                 ) -> tuple[Session, list[Memory], int]:
        session = self.get(session_id)
        n = validate.limit(limit, 500)
        skip = validate.offset(offset)
        f = MemoryFilter(session_id=session.id)
        now = self.now()
        memories = self.db.memories.newest(session.agent_id, f, now, limit=n, offset=skip)
        return session, memories, self.db.memories.count(session.agent_id, f, now)

    def record_activity(self, agent_id: str, session_ids: set[str], *,
                        wait: bool = True) -> dict[str, str]:
        """Activity in these sessions (creating unknown ones); their states after it."""
        now = self.now()

        def job(tx: Tx) -> tuple[IdleEnded, dict[str, str]]:
            idle = tx.sessions.expire_idle(now, self.timeout)
            return idle, tx.sessions.activity(agent_id, session_ids, now, self.timeout)

        def after(result: tuple[IdleEnded, dict[str, str]]) -> None:
            announce_idle(self.events, result[0])

        if not wait:
            self.db.submit(job, after)
            return {}
        return self.db.write(job, after)[1]
