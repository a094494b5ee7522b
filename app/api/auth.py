"""Bearer-key authentication as ASGI middleware; the health probes stay open."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.types import ASGIApp, Receive, Scope, Send

from app.errors import AuthenticationError

OPEN_PATHS = frozenset({"/health", "/health/ready", "/health/live"})


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
    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.api_key and scope["path"] not in OPEN_PATHS:
            header = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    header = value.decode("latin-1")
                    break
            try:
                check_key(header, self.api_key)
            except AuthenticationError as exc:
                await _send_error(send, exc)
                return
        await self.app(scope, receive, send)


async def _send_error(send: Send, exc: AuthenticationError) -> None:
    import msgspec

    body = msgspec.json.encode(exc.envelope())
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode()),
                          (b"www-authenticate", b"Bearer")]
    start: Any = {"type": "http.response.start", "status": exc.status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
