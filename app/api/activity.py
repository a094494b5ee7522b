"""Requests in flight, counted for the service: a restore lets them finish before it closes
the database under them. The health probes and the restore requests themselves are not
counted (a restore request waits for the restore it started)."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from app.service import Service

UNCOUNTED = ("/health", "/v1/admin/backups/restore", "/admin/backups/restore")


class Activity:
    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNCOUNTED):
            await self.app(scope, receive, send)
            return
        with self.service.activity():
            await self.app(scope, receive, send)
