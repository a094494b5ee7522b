"""Server-Sent Events (contract §2.8) over the service's event bus: the memory lifecycle
(/v1/events/stream), one namespace's events (/v1/namespaces/{ns}/events) and every
namespace and operation event (/ops/events).

One `data:` line of JSON per event (with its bus sequence number as the SSE `id:`), `:`
comment lines as keep-alives. A client that reads too slowly is never waited for: its
buffer fills, later events are dropped, and its next read starts with a `stream_lagged`
frame giving how many it missed (reconnect to catch up from the store).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import Stream

from app.api.deps import Principal, Service
from app.api.schemas import error_responses
from app.api.scopes import namespace_in_path, need
from app.service.events import MEMORY, NAMESPACE, Accept, Event, EventBus

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
LAG_HINT = "events were dropped because this client read too slowly: reconnect to resume"
_encode = msgspec.json.Encoder().encode


def _frame(data: dict[str, Any], seq: int | None = None) -> bytes:
    head = b"id: %d\n" % seq if seq is not None else b""
    return head + b"data: " + _encode(data) + b"\n\n"


async def _frames(bus: EventBus, accept: Accept, hello: bytes, keepalive: float,
                  lagged: Any) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    sub = bus.subscribe(accept, lambda: loop.call_soon_threadsafe(woken.set))
    try:
        yield hello
        while not sub.closed:
            try:
                await asyncio.wait_for(woken.wait(), keepalive)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            woken.clear()  # before take(): an event offered after it wakes us again
            events, dropped = sub.take()
            if dropped:
                yield _frame(lagged(dropped))
            for event in events:
                yield _frame(event.data, event.seq)
    finally:
        bus.unsubscribe(sub)


def _stream(service: Service, accept: Accept, hello: bytes, lagged: Any) -> Stream:
    frames = _frames(service.events, accept, hello, service.settings.events_keepalive,
                     lagged)
    return Stream(frames, media_type="text/event-stream", headers=SSE_HEADERS)


# TODO(keys): once keys carry scopes and namespace grants (issue 12), each stream's accept
# predicate also drops events of namespaces the key is not granted (events carry their
# namespace: _dakera_agent_<agent_id> for memory events).


def _memory_events(event: Event) -> bool:
    return event.topic == MEMORY


def _all_namespace_events(event: Event) -> bool:
    return event.topic == NAMESPACE


STREAM_DOC: dict[str, Any] = {"media_type": "text/event-stream",
                              "responses": error_responses(503)}


class EventController(Controller):
    @get("/v1/events/stream", **STREAM_DOC, opt=need("read", listing=True))
    async def memory_stream(self, service: Service, principal: Principal) -> Stream:
        """Memory lifecycle events: first `{type: "connected"}`, then one frame `{event_type,
        timestamp, agent_id, memory_id, content, importance, tags, session_id, reason}` per
        event; event_type is stored, recalled, forgotten, deduplicated, restored,
        importance_updated, session_started, session_ended or stream_lagged."""
        now = service.now

        def lagged(dropped: int) -> dict[str, Any]:
            return {"type": "stream_lagged", "event_type": "stream_lagged",
                    "timestamp": now(), "agent_id": "", "dropped": dropped, "hint": LAG_HINT}

        hello = _frame({"type": "connected", "event_type": "connected",
                        "timestamp": now(), "agent_id": ""})
        def accept(event: Event) -> bool:  # a key limited to some agents sees theirs
            return _memory_events(event) and (principal.unrestricted or (
                event.agent_id is not None and principal.reaches_agent(event.agent_id)))

        return _stream(service, accept, hello, lagged)

    @get("/v1/namespaces/{namespace:str}/events", **STREAM_DOC,
         opt=need("read", namespace=namespace_in_path()))
    async def namespace_stream(self, namespace: FromPath[str], service: Service) -> Stream:
        """One namespace's events `{type, namespace, ...}`: namespace_created,
        namespace_deleted, vectors_mutated (op, count), operation_progress, job_progress,
        stream_lagged. An agent's memories live in the namespace _dakera_agent_<agent_id>."""

        def accept(event: Event) -> bool:
            return event.topic == NAMESPACE and event.namespace == namespace

        return _stream(service, accept, b": connected\n\n", _namespace_lag)

    @get("/ops/events", **STREAM_DOC, opt=need("admin", every_namespace=True))
    async def ops_stream(self, service: Service) -> Stream:
        """Every namespace's events and server operations (decay passes as
        operation_progress), `{type, ...}` as on the namespace streams."""
        return _stream(service, _all_namespace_events, b": connected\n\n", _namespace_lag)


def _namespace_lag(dropped: int) -> dict[str, Any]:
    return {"type": "stream_lagged", "dropped": dropped, "hint": LAG_HINT}


__all__ = ["EventController"]
