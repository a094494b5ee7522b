"""Session idle expiry with an injectable clock (no sleeping)."""

from __future__ import annotations

import pytest

from app.service import Service
from tests.conftest import Clock, MakeService


@pytest.fixture
def svc(make_service: MakeService) -> Service:
    return make_service(session_idle_timeout=3600)


def test_idle_sessions_end_after_their_timeout(svc: Service, clock: Clock) -> None:
    session = svc.sessions.start("a")
    started = int(clock.now)
    clock.now += 3599
    assert svc.sessions.get(session.id).active
    touched, deadline = svc.sessions.touch(session.id)
    assert touched.last_activity_at == started + 3599
    assert deadline == started + 3599 + 3600

    clock.now += 3600  # exactly the timeout after the touch
    ended = svc.sessions.get(session.id)
    assert not ended.active and ended.ended_reason == "idle"
    assert ended.ended_at == started + 3599 + 3600
    assert ended.to_dict()["idle_since"] == started + 3599

    # Ending it afterwards keeps its idle state; a summary is not saved.
    again = svc.sessions.end(session.id, summary="too late")
    assert again.ended_reason == "idle" and again.summary is None
    # Storing into it still works, and says it has ended.
    stored = svc.memories.store("a", "a late message", session_id=session.id)
    assert stored.session_states == {session.id: "ended"}
    assert svc.sessions.get(session.id).memory_count == 1


def test_per_session_timeouts(svc: Service, clock: Clock) -> None:
    short = svc.sessions.start("a", idle_timeout_secs=60)
    never = svc.sessions.start("a", idle_timeout_secs=0)
    default = svc.sessions.start("a")
    clock.now += 61
    assert not svc.sessions.get(short.id).active
    assert svc.sessions.get(default.id).active
    clock.now += 365 * 86_400
    assert svc.sessions.get(never.id).active
    assert svc.sessions.touch(never.id)[1] is None  # no deadline
    active, total = svc.sessions.find(agent_id="a", active_only=True)
    assert [s.id for s in active] == [never.id] and total == 1


def test_activity_keeps_a_session_open(svc: Service, clock: Clock) -> None:
    session = svc.sessions.start("a")
    for _ in range(5):
        clock.now += 3000
        svc.memories.store("a", "still talking", session_id=session.id)
    clock.now += 3000
    svc.recall.recall("a", "talking", session_id=session.id)  # session-scoped recall is activity
    svc.memories.store("a", "flush the writer queue")
    clock.now += 3000
    assert svc.sessions.get(session.id).active
    clock.now += 601
    assert svc.sessions.expire_idle() == 1
    assert svc.sessions.get(session.id).ended_reason == "idle"


def test_invalid_timeouts(svc: Service) -> None:
    from app.errors import ValidationError

    for bad in (-1, 2_592_001, "60", True):
        with pytest.raises(ValidationError, match="idle_timeout_secs"):
            svc.sessions.start("a", idle_timeout_secs=bad)
