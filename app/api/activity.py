"""Requests in flight, counted for the service: a restore lets them finish before it closes
the database under them. Not counted: the health probes, the restore requests themselves (a
restore request waits for the restore it started) and the MCP event stream (GET /mcp,
open for as long as a client listens)."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from app.service import Service

UNCOUNTED = ("/health", "/v1/admin/backups/restore", "/admin/backups/restore")


class Activity:
    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNCOUNTED) or (
                scope.get("method") == "GET" and scope["path"].startswith("/mcp")):
            await self.app(scope, receive, send)
            return
        with self.service.activity():
            await self.app(scope, receive, send)
