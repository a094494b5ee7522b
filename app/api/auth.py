"""Bearer-key authentication as ASGI middleware; the health probes and the API's own
description (/openapi.json, /docs) stay open, and /metrics too for loopback clients when
DAKERA_METRICS_OPEN_ON_LOOPBACK is set. The key's id (never the key) goes into the scope
state for the access log."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from litestar.types import ASGIApp, Receive, Scope, Send

from app.api.access import request_id_of
from app.api.errors import envelope
from app.errors import AuthenticationError

OPEN_PATHS = frozenset({"/health", "/health/ready", "/health/live", "/openapi.json",
                        "/docs"})
METRICS_PATH = "/metrics"
# The key's id in logs. TODO(keys): one id per key once keys and scopes exist (issue 12).
ROOT_KEY_ID = "root"
NO_AUTH_KEY_ID = "auth-disabled"


def is_loopback_client(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def check_key(header: str | None, expected: str) -> None:
    """Raise AuthenticationError unless `header` is `Bearer <expected>` (constant time)."""
    if not header:
        raise AuthenticationError("missing Authorization: Bearer <key> header",
                                  code="AUTHENTICATION_REQUIRED")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <key>'",
                                  code="AUTHENTICATION_REQUIRED")
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise AuthenticationError("invalid API key")


class BearerAuth:
    def __init__(self, app: ASGIApp, api_key: str | None,
                 metrics_open_on_loopback: bool = False) -> None:
        self.app = app
        self.api_key = api_key
        self.metrics_open_on_loopback = metrics_open_on_loopback

    def _open(self, scope: Scope) -> bool:
        path = scope["path"]
        return path in OPEN_PATHS or (path == METRICS_PATH and self.metrics_open_on_loopback
                                      and is_loopback_client(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope.setdefault("state", {})
            if not self.api_key:
                state["key_id"] = NO_AUTH_KEY_ID
            elif not self._open(scope):
                header = None
                for name, value in scope["headers"]:
                    if name == b"authorization":
                        header = value.decode("latin-1")
                        break
                try:
                    check_key(header, self.api_key)
                except AuthenticationError as exc:
                    await _send_error(send, exc, request_id_of(scope))
                    return
                state["key_id"] = ROOT_KEY_ID
        await self.app(scope, receive, send)


async def _send_error(send: Send, exc: AuthenticationError, request_id: str | None) -> None:
    import msgspec

    body = msgspec.json.encode(envelope(exc, request_id))
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode()),
                          (b"www-authenticate", b"Bearer")]
    start: Any = {"type": "http.response.start", "status": exc.status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
