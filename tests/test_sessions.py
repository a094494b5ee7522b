"""Session idle expiry with an injectable clock (no sleeping)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.service import MemoryService
from tests.conftest import Clock, make_settings


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[MemoryService]:
    s = MemoryService(make_settings(tmp_path, embedding_model="hash",
                                    session_idle_timeout=3600), clock=clock)
    s.start(wait=True)
    yield s
    s.close()


def test_idle_sessions_end_after_their_timeout(svc: MemoryService, clock: Clock) -> None:
    session = svc.start_session("a")
    started = int(clock.now)
    clock.now += 3599
    assert svc.get_session(session.id).active
    touched, deadline = svc.touch_session(session.id)
    assert touched.last_activity_at == started + 3599
    assert deadline == started + 3599 + 3600

    clock.now += 3600  # exactly the timeout after the touch
    ended = svc.get_session(session.id)
    assert not ended.active and ended.ended_reason == "idle"
    assert ended.ended_at == started + 3599 + 3600
    assert ended.to_dict()["idle_since"] == started + 3599

    # Ending it afterwards keeps its idle state; a summary is not saved.
    again = svc.end_session(session.id, summary="too late")
    assert again.ended_reason == "idle" and again.summary is None
    # Storing into it still works, and says it has ended.
    stored = svc.store("a", "a late message", session_id=session.id)
    assert stored.session_states == {session.id: "ended"}
    assert svc.get_session(session.id).memory_count == 1


def test_per_session_timeouts(svc: MemoryService, clock: Clock) -> None:
    short = svc.start_session("a", idle_timeout_secs=60)
    never = svc.start_session("a", idle_timeout_secs=0)
    default = svc.start_session("a")
    clock.now += 61
    assert not svc.get_session(short.id).active
    assert svc.get_session(default.id).active
    clock.now += 365 * 86_400
    assert svc.get_session(never.id).active
    assert svc.touch_session(never.id)[1] is None  # no deadline
    active, total = svc.list_sessions(agent_id="a", active_only=True)
    assert [s.id for s in active] == [never.id] and total == 1


def test_activity_keeps_a_session_open(svc: MemoryService, clock: Clock) -> None:
    session = svc.start_session("a")
    for _ in range(5):
        clock.now += 3000
        svc.store("a", "still talking", session_id=session.id)
    clock.now += 3000
    svc.recall("a", "talking", session_id=session.id)  # session-scoped recall is activity
    svc.store("a", "flush the writer queue")
    clock.now += 3000
    assert svc.get_session(session.id).active
    clock.now += 601
    assert svc.expire_idle_sessions() == 1
    assert svc.get_session(session.id).ended_reason == "idle"


def test_invalid_timeouts(svc: MemoryService) -> None:
    from app.errors import ValidationError

    for bad in (-1, 2_592_001, "60", True):
        with pytest.raises(ValidationError, match="idle_timeout_secs"):
            svc.start_session("a", idle_timeout_secs=bad)
