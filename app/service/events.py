"""Events: an in-process bus that the parts publish to and live streams (SSE) read from.

The bus is generic: an event is a topic, the JSON frame a subscriber receives, and what it
concerns (agent, namespace) for filtering. The parts publish through it after their writes
(memory lifecycle on the "memory" topic, namespace changes and operation progress on the
"namespace" topic); any later part can publish its own topics the same way.

Publishing never blocks: each subscriber has a bounded buffer, and when a slow or vanished
subscriber's buffer is full, further events for it are dropped and counted. Its next read
starts with a `stream_lagged` frame saying how many it missed. The publisher takes only the
subscriber's own short lock (an append), never waits for a reader, and does nothing at all
when no one subscribes.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.errors import ServiceUnavailableError

MEMORY = "memory"  # GET /v1/events/stream: {event_type, timestamp, agent_id, memory_id, ...}
NAMESPACE = "namespace"  # GET /v1/namespaces/{ns}/events and GET /ops/events: {type, ...}

AGENT_NAMESPACE_PREFIX = "_dakera_agent_"


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    data: dict[str, Any]  # the frame as sent (JSON)
    seq: int = 0  # assigned by the bus: the order of publication (the SSE id)
    agent_id: str | None = None
    namespace: str | None = None


Accept = Callable[[Event], bool]
# (topic, frame, agent_id, namespace): an event as it travels between servers
Relay = Callable[[str, dict[str, Any], str | None, str | None], None]


@dataclass(eq=False)
class Subscription:
    """One reader's bounded buffer. `take` returns what arrived since the last take and how
    many events were dropped meanwhile because the buffer was full."""

    accept: Accept
    limit: int
    wake: Callable[[], object]  # called (from the publisher's thread) when events arrive
    _buffer: deque[Event] = field(default_factory=deque)
    _dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _woken: bool = False
    closed: bool = False  # the bus closed: the reader ends its stream

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            self.wake()

    def offer(self, event: Event) -> bool:
        """Add an event unless the buffer is full (then count it as dropped). Never blocks
        on the reader."""
        with self._lock:
            if len(self._buffer) >= self.limit:
                self._dropped += 1
                kept = False
            else:
                self._buffer.append(event)
                kept = True
            wake = not self._woken
            self._woken = True
        if wake:
            with contextlib.suppress(Exception):  # the reader's loop is gone: it unsubscribes
                self.wake()
        return kept

    def take(self) -> tuple[list[Event], int]:
        with self._lock:
            events = list(self._buffer)
            self._buffer.clear()
            dropped, self._dropped = self._dropped, 0
            self._woken = False
        return events, dropped


class EventBus:
    def __init__(self, *, buffer: int = 1024, max_subscribers: int = 100) -> None:
        self.buffer = buffer
        self.max_subscribers = max_subscribers
        self._subscribers: tuple[Subscription, ...] = ()  # replaced, never mutated
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._counts = threading.Lock()
        self.closed = False
        self.published = 0  # events published while someone subscribed
        self.dropped = 0  # deliveries dropped because a subscriber lagged
        # Where this server's events also go when servers share a database (PostgreSQL):
        # the other servers deliver them to their own subscribers (`deliver`).
        self.relay: Relay | None = None

    def close(self) -> None:
        """End every stream (shutdown: an open stream would hold the server up), and refuse
        new ones."""
        with self._lock:
            subscribers, self._subscribers = self._subscribers, ()
            self.closed = True
        for sub in subscribers:
            sub.close()

    @property
    def listening(self) -> bool:
        """Whether anyone subscribes (here, or on another server sharing the database):
        publishers may skip building events otherwise."""
        return bool(self._subscribers) or self.relay is not None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, accept: Accept, wake: Callable[[], object]) -> Subscription:
        sub = Subscription(accept=accept, limit=self.buffer, wake=wake)
        with self._lock:
            if self.closed:
                raise ServiceUnavailableError("the server is shutting down", retry_after=5)
            if len(self._subscribers) >= self.max_subscribers:
                raise ServiceUnavailableError(
                    f"too many event streams open (DAKERA_EVENTS_MAX_SUBSCRIBERS="
                    f"{self.max_subscribers})", retry_after=5)
            self._subscribers = (*self._subscribers, sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not sub)

    def publish(self, topic: str, data: dict[str, Any], *, agent_id: str | None = None,
                namespace: str | None = None) -> None:
        relay = self.relay
        if relay is not None:
            relay(topic, data, agent_id, namespace)
        self.deliver(topic, data, agent_id, namespace)

    def deliver(self, topic: str, data: dict[str, Any], agent_id: str | None = None,
                namespace: str | None = None) -> None:
        """Hand an event to this server's subscribers (one published here, or relayed from
        another server)."""
        subscribers = self._subscribers
        if not subscribers:
            return
        event = Event(topic, data, next(self._seq), agent_id, namespace)
        dropped = sum(1 for sub in subscribers if sub.accept(event) and not sub.offer(event))
        with self._counts:
            self.published += 1
            self.dropped += dropped


class Publisher:
    """What a part is given to publish with: the bus, the clock, and the frame shapes of
    the contract (§2.8), so that every part sends the same fields."""

    def __init__(self, bus: EventBus, now: Callable[[], int]) -> None:
        self.bus = bus
        self.now = now

    @property
    def listening(self) -> bool:
        return self.bus.listening

    def memory(self, event_type: str, agent_id: str, *, memory_id: str | None = None,
               content: str | None = None, importance: float | None = None,
               tags: list[str] | None = None, session_id: str | None = None,
               reason: str | None = None, **extra: Any) -> None:
        """A memory lifecycle event (stored, recalled, forgotten, deduplicated, restored,
        importance_updated, session_started, session_ended)."""
        if not self.bus.listening:
            return
        data = {"event_type": event_type, "timestamp": self.now(), "agent_id": agent_id,
                "memory_id": memory_id, "content": content,
                "importance": None if importance is None else round(importance, 6),
                "tags": tags, "session_id": session_id, "reason": reason, **extra}
        self.bus.publish(MEMORY, data, agent_id=agent_id,
                         namespace=AGENT_NAMESPACE_PREFIX + agent_id)

    def namespace(self, event_type: str, namespace: str | None, **fields: Any) -> None:
        """A namespace-stream event (namespace_created, namespace_deleted, vectors_mutated,
        operation_progress, job_progress); namespace None: server-wide (only /ops/events)."""
        if not self.bus.listening:
            return
        data = {"type": event_type, "namespace": namespace, **fields}
        self.bus.publish(NAMESPACE, data, namespace=namespace)

    def vectors_mutated(self, agent_id: str, op: str, count: int) -> None:
        if count:
            self.namespace("vectors_mutated", AGENT_NAMESPACE_PREFIX + agent_id, op=op,
                           count=count)


__all__ = ["MEMORY", "NAMESPACE", "Event", "EventBus", "Publisher", "Subscription"]
