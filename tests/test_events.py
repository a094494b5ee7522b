"""Live events: the bus (bounded buffers, stream_lagged), what the parts publish, and the
Server-Sent Events routes read by the real `dakera` SDK and by a client that reads nothing."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import ServiceUnavailableError
from app.service import Service
from app.service.events import MEMORY, NAMESPACE, Event, EventBus
from tests.conftest import API_KEY, LiveServer, MakeService

# -- the bus --------------------------------------------------------------------------------


def test_a_full_buffer_drops_and_counts_without_blocking_the_publisher() -> None:
    bus = EventBus(buffer=3, max_subscribers=2)
    woken: list[int] = []
    sub = bus.subscribe(lambda e: True, lambda: woken.append(1))
    for i in range(10):
        bus.publish(MEMORY, {"n": i})
    events, dropped = sub.take()
    assert [e.data["n"] for e in events] == [0, 1, 2]
    assert dropped == 7 and bus.dropped == 7
    assert woken == [1]  # woken once until it read
    bus.publish(MEMORY, {"n": 10})
    events, dropped = sub.take()
    assert [e.data["n"] for e in events] == [10] and dropped == 0
    assert len(woken) == 2
    assert [e.seq for e in events] == [11]  # the bus numbers every event it publishes


def test_subscribers_see_only_what_they_accept_and_the_bus_is_bounded() -> None:
    bus = EventBus(buffer=10, max_subscribers=2)
    bus.publish(MEMORY, {"n": 0})  # nobody listens: nothing kept, nothing counted
    assert bus.published == 0
    ns = bus.subscribe(lambda e: e.topic == NAMESPACE and e.namespace == "a", lambda: None)
    bus.subscribe(lambda e: True, lambda: None)
    with pytest.raises(ServiceUnavailableError):
        bus.subscribe(lambda e: True, lambda: None)
    bus.publish(NAMESPACE, {"type": "x"}, namespace="a")
    bus.publish(NAMESPACE, {"type": "y"}, namespace="b")
    bus.publish(MEMORY, {"event_type": "stored"}, namespace="a")
    assert [e.data["type"] for e in ns.take()[0]] == ["x"]
    bus.unsubscribe(ns)
    assert bus.subscribers == 1


# -- what the parts publish -------------------------------------------------------------------


def _collect(service: Service) -> Any:
    sub = service.events.subscribe(lambda e: True, lambda: None)

    def taken() -> list[Event]:
        events, dropped = sub.take()
        assert dropped == 0
        return events
    return taken


def _types(events: list[Event]) -> list[str]:
    return [e.data.get("event_type") or e.data["type"] for e in events]


def test_the_parts_publish_the_memory_lifecycle(make_service: MakeService, clock: Any) -> None:
    svc = make_service(dedup_memory_types="episodic,semantic", session_idle_timeout=60)
    taken = _collect(svc)
    stored = svc.memories.store("ann", "Ann moved to Lisbon in May", tags=["move"],
                                session_id="s1").memory
    events = taken()
    assert _types(events) == ["stored", "vectors_mutated"]
    frame = events[0].data
    assert frame == {"event_type": "stored", "timestamp": svc.now(), "agent_id": "ann",
                     "memory_id": stored.id, "content": "Ann moved to Lisbon in May",
                     "importance": 0.5, "tags": ["move"], "session_id": "s1", "reason": None}
    assert events[1].data == {"type": "vectors_mutated", "namespace": "_dakera_agent_ann",
                              "op": "upsert", "count": 1}

    svc.recall.recall("ann", "Lisbon")
    assert _types(taken()) == ["recalled"]
    svc.recall.search("ann", "Lisbon")  # search does not count as recalling
    assert taken() == []

    dup = svc.memories.store("ann", "Ann moved to Lisbon in May")
    [merged] = taken()
    assert merged.data["event_type"] == "deduplicated"
    assert merged.data["merged_into"] == stored.id
    assert merged.data["memory_id"] == dup.duplicates[0]
    svc.memories.restore_deduplicated("ann", dup.duplicates[0])
    assert _types(taken()) == ["restored", "vectors_mutated"]

    svc.feedback.give("ann", stored.id, "upvote")
    [up] = taken()
    assert up.data["event_type"] == "importance_updated" and up.data["importance"] > 0.5

    session = svc.sessions.start("ann")
    svc.sessions.end(session.id)
    assert [(e.data["event_type"], e.data["reason"]) for e in taken()] == [
        ("session_started", None), ("session_ended", "client")]

    clock.now += 120  # s1 idles out: found by the next sweep
    svc.sessions.expire_idle()
    [idle] = taken()
    assert (idle.data["event_type"], idle.data["session_id"], idle.data["reason"]) == (
        "session_ended", "s1", "idle")

    assert svc.memories.forget("ann", memory_ids=[stored.id]) == 1
    gone = taken()
    assert _types(gone) == ["forgotten", "vectors_mutated"]
    assert (gone[0].data["memory_id"], gone[0].data["reason"]) == (stored.id, "forget")


def test_a_decay_pass_reports_its_progress(make_service: MakeService) -> None:
    svc = make_service()
    svc.memories.store("ann", "one")
    taken = _collect(svc)
    svc.decay.run()
    progress = [e.data for e in taken() if e.data.get("type") == "operation_progress"]
    assert progress[0]["status"] == "running"
    assert progress[-1]["status"] == "completed" and progress[-1]["progress"] == 100
    assert progress[0]["op_type"] == "decay" and progress[0]["namespace"] is None
    assert len({p["operation_id"] for p in progress}) == 1


# -- over HTTP ----------------------------------------------------------------------------------


def subscribers(server: LiveServer) -> int:
    with server.http() as http:
        return int(http.get("/v1/ops/stats").json()["event_subscribers"])


def wait_subscribed(server: LiveServer, count: int) -> None:
    """Until the server holds `count` streams (a stream subscribes when its request is
    handled, which a client thread does not tell)."""
    deadline = time.monotonic() + 30
    while subscribers(server) < count:
        assert time.monotonic() < deadline, "the stream never subscribed"
        time.sleep(0.02)


class Subscriber:
    """A real SDK client following a stream in a thread; what it yields lands in a queue."""

    def __init__(self, server: LiveServer, kind: str, *args: str) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        self.client = server.client()
        before = subscribers(server)
        stream = getattr(self.client, kind)
        self._gen: Iterator[Any] = stream(*args, timeout=60)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_subscribed(server, before + 1)

    def _run(self) -> None:
        try:
            for event in self._gen:
                self.events.put(event)
        except Exception as exc:  # the connection closed under us at the end of a test
            self.events.put(exc)

    def next(self, timeout: float = 10.0) -> Any:
        event = self.events.get(timeout=timeout)
        assert not isinstance(event, Exception), event
        return event

    def close(self) -> None:
        self.client.close()


def test_a_subscriber_receives_stored_then_forgotten(live_server: LiveServer) -> None:
    sub = Subscriber(live_server, "stream_memory_events")
    try:
        assert sub.next().event_type == "connected"
        client = live_server.client()
        start = time.perf_counter()
        memory_id = client.store_memory("sse-agent", "the kettle is in the attic")["id"]
        stored = sub.next()
        client.forget("sse-agent", memory_id)
        forgotten = sub.next()
        elapsed = time.perf_counter() - start
        assert (stored.event_type, stored.memory_id, stored.agent_id) == (
            "stored", memory_id, "sse-agent")
        assert stored.content == "the kettle is in the attic"
        assert (forgotten.event_type, forgotten.memory_id) == ("forgotten", memory_id)
        print(f"store + forget + both events received in {elapsed * 1000:.0f} ms")
    finally:
        sub.close()


def test_a_namespace_stream_sees_only_its_namespace(live_server: LiveServer) -> None:
    sub = Subscriber(live_server, "stream_namespace_events", "_dakera_agent_ns-a")
    try:
        client = live_server.client()
        client.store_memory("ns-b", "not for this stream")
        client.store_memory("ns-a", "for this stream")
        event = sub.next()
        assert (event.type, event.namespace, event.op, event.count) == (
            "vectors_mutated", "_dakera_agent_ns-a", "upsert", 1)
        assert sub.events.empty()
    finally:
        sub.close()


def test_streams_need_the_key_and_send_keep_alives(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", extra_env={
        "DAKERA_EMBEDDING_MODEL": "hash", "DAKERA_EVENTS_KEEPALIVE_SECS": "1"}).start()
    try:
        with server.http(api_key="dk_wrong") as http:
            assert http.get("/v1/events/stream").status_code == 401
        with server.http() as http, http.stream("GET", "/ops/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            seen = b""
            for chunk in response.iter_raw():
                seen += chunk
                if b"keep-alive" in seen:
                    break
            assert seen.startswith(b": connected\n\n") and b": keep-alive\n\n" in seen
    finally:
        server.stop()


def _raw_subscribe(port: int) -> socket.socket:
    """A client that asks for the stream, then reads nothing (a tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
              b"Authorization: Bearer " + API_KEY.encode() + b"\r\n\r\n")
    return s


def _read_all(s: socket.socket, quiet: float = 2.0) -> bytes:
    s.settimeout(quiet)
    data = b""
    try:
        while chunk := s.recv(1 << 20):
            data += chunk
    except TimeoutError:
        pass
    return data


def _dropped(server: LiveServer) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with server.http() as http:
        text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "dakera_events_dropped":
            return sum(s.value for s in family.samples)
    raise AssertionError("no dakera_events_dropped in /metrics")


def test_a_client_that_reads_nothing_lags_alone_and_never_holds_up_a_store(
        tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", extra_env={
        "DAKERA_EMBEDDING_MODEL": "hash", "DAKERA_EVENTS_BUFFER": "64",
        "DAKERA_LOG_LEVEL": "warning"}).start()
    slow = _raw_subscribe(server.port)
    wait_subscribed(server, 1)
    fast = Subscriber(server, "stream_memory_events")
    try:
        assert fast.next().event_type == "connected"
        # Enough to fill the slow client's buffer (64 events) and every socket buffer in
        # between (a few MB) several times over.
        n, filler = 300, "x" * 50_000
        latencies = []
        with server.http() as http:
            for i in range(n):
                start = time.perf_counter()
                r = http.post("/v1/memory/store", json={"agent_id": "lag",
                                                        "content": f"memory {i} {filler}"})
                latencies.append(time.perf_counter() - start)
                assert r.status_code == 200, r.text
        # The writer was never held up: every store answered, and the slow stream's buffer
        # overflowed (its deliveries were dropped and counted) instead of growing.
        assert _dropped(server) > 0
        first, rest = sorted(latencies[:30]), sorted(latencies[-100:])
        print(f"store latency p50: first 30 {first[15] * 1000:.1f} ms, last 100 (slow "
              f"client lagging) {rest[50] * 1000:.1f} ms")
        # The reading subscriber got everything, in order, without a lag.
        got = [fast.next() for _ in range(n)]
        assert [e.event_type for e in got] == ["stored"] * n
        assert [e.content.split()[1] for e in got] == [str(i) for i in range(n)]
        # The slow one, once it reads, is told how many it missed.
        data = _read_all(slow)
        lagged = [json.loads(line[len(b"data: "):]) for line in data.split(b"\n")
                  if line.startswith(b"data: ") and b"stream_lagged" in line]
        assert lagged and all(f["dropped"] > 0 for f in lagged)
        assert lagged[0]["event_type"] == "stream_lagged" and "hint" in lagged[0]
        assert data.count(b'"event_type":"stored"') < n
    finally:
        slow.close()
        fast.close()
        server.stop()
