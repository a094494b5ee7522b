"""Events between the servers that share one database: each server NOTIFYs its events on a
channel and LISTENs to the others', so that a live stream (SSE) on any server sees what
every server did.

Sending never blocks the publisher (the writer's after-commit callbacks publish): events are
queued and sent by a thread of their own. A NOTIFY payload holds at most 8,000 bytes: an
event larger than that is sent without its `content` (the frame says `content_omitted`).
NOTIFY is delivered once its transaction commits and only to connections listening then:
a server that is (re)connecting misses what was sent meanwhile, as a stream that lags does.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import psycopg

from app.store.postgres.conn import connect

log = logging.getLogger("dakera.store")
CHANNEL = "dakera_events"
MAX_PAYLOAD = 7900
RECONNECT_AFTER = 2.0

Deliver = Callable[[str, dict[str, Any], str | None, str | None], None]


class EventRelay:
    def __init__(self, url: str, deliver: Deliver) -> None:
        self.url = url
        self.deliver = deliver
        self.node = uuid.uuid4().hex[:16]  # this server: its own events come back too
        self._outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=10_000)
        self._closed = threading.Event()
        self.dropped = 0
        self._sender = threading.Thread(target=self._send_loop, name="dakera-pg-notify",
                                        daemon=True)
        self._listener = threading.Thread(target=self._listen_loop, name="dakera-pg-listen",
                                          daemon=True)
        self._listening = threading.Event()
        self._sender.start()
        self._listener.start()
        self._listening.wait(10)

    def send(self, topic: str, data: dict[str, Any], agent_id: str | None,
             namespace: str | None) -> None:
        """Queue one of this server's events for the others (never blocks)."""
        payload = msgspec.json.encode({"n": self.node, "t": topic, "d": data, "a": agent_id,
                                       "s": namespace})
        if len(payload) > MAX_PAYLOAD and "content" in data:
            payload = msgspec.json.encode({
                "n": self.node, "t": topic, "a": agent_id, "s": namespace,
                "d": {**data, "content": None, "content_omitted": True}})
        if len(payload) > MAX_PAYLOAD:
            self.dropped += 1
            return
        try:
            self._outbox.put_nowait(payload)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        self._closed.set()
        self._outbox.put(None)
        self._sender.join(5)
        self._listener.join(5)

    def _send_loop(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while True:
            payload = self._outbox.get()
            if payload is None:
                break
            try:
                if conn is None or conn.closed:
                    conn = connect(self.url)
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload.decode()))
            except psycopg.Error as exc:
                self.dropped += 1
                log.warning("an event was not sent to the other servers: %s", exc)
                conn = None
                self._closed.wait(RECONNECT_AFTER)
        if conn is not None:
            conn.close()

    def _listen_loop(self) -> None:
        while not self._closed.is_set():
            try:
                with connect(self.url) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._receive(note.payload)
            except psycopg.Error as exc:
                if self._closed.is_set():
                    return
                log.warning("not receiving the other servers' events (%s): reconnecting", exc)
                self._closed.wait(RECONNECT_AFTER)

    def _receive(self, payload: str) -> None:
        try:
            event = msgspec.json.decode(payload)
            if event["n"] == self.node:
                return  # delivered here already, when it was published
            self.deliver(event["t"], event["d"], event["a"], event["s"])
        except Exception:
            log.exception("an event from another server could not be delivered")
