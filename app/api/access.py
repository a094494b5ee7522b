"""Around every HTTP request: a request id (taken from a sane `X-Request-Id` header, else
made), returned in the `X-Request-Id` response header and kept in the scope state for error
bodies; the request counted and timed for the metrics (by route template, never the raw
path); and one access-log line (method, route, status, duration, request id, key id; never
the key) on the `dakera.access` logger.

It wraps the app's whole ASGI handler, outside routing, so unknown routes and refusals by
the auth middleware are seen too.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.service import Service

log = logging.getLogger("dakera.access")

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state")
    return state.get("request_id") if isinstance(state, dict) else None


def _incoming_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


class AccessMiddleware:
    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.metrics = service.metrics
        self.log_requests = service.settings.access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _incoming_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        streaming = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER, request_id.encode("ascii")))
                streaming = any(k == b"content-type" and v.startswith(b"text/event-stream")
                                for k, v in headers)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("path_template") if "route_handler" in scope else None
            method = str(scope.get("method", "GET"))
            # An event stream lasts as long as its client: counted, not timed.
            self.metrics.observe_request(method, route, status,
                                         None if streaming else seconds)
            if self.log_requests:
                key_id = state.get("key_id") or "-"
                log.info("%s %s %d %.1fms request_id=%s key_id=%s", method,
                         route or scope["path"], status, seconds * 1000, request_id, key_id,
                         extra={"method": method, "route": route, "path": scope["path"],
                                "status": status, "duration_ms": round(seconds * 1000, 3),
                                "request_id": request_id, "key_id": key_id,
                                "client": (scope.get("client") or ("", 0))[0]})


__all__ = ["AccessMiddleware", "request_id_of"]
