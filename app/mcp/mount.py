"""/mcp in the server's ASGI app, loaded on first use.

Importing the MCP SDK costs about a second of start-up and 40 MB of memory, which a server
whose clients never speak MCP should not pay: the route answers the first MCP request by
importing app.mcp.http, starting its session manager in a background task, and handing the
request over. The app's lifespan stops the manager at shutdown.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.types import Receive, Scope, Send

from app.errors import MethodNotAllowedError
from app.service import Service

PATH = "/mcp"


class McpMount:
    def __init__(self, service: Service) -> None:
        self.service = service
        self._endpoint: Any = None
        self._lock: asyncio.Lock | None = None
        self._stop: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None

        async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("method") == "GET":
                # The server has nothing to push: no SSE stream (the spec's answer is 405),
                # rather than a stream that stays open and empty.
                await _refuse_get(send)
                return
            endpoint = await self._ensure_started()
            await endpoint.manager.handle_request(scope, receive, send)

        # The tools store, recall and forget for any agent: a key for every namespace with
        # the write scope (app/api/scopes.py reads this opt). A key limited to some agents
        # uses `dakera mcp --url`, whose tools go through the REST routes and their checks.
        self.route_handler: ASGIRouteHandler = asgi(
            PATH, copy_scope=True,
            opt={"scope": "write", "every_namespace": True})(mcp_endpoint)

    async def _ensure_started(self) -> Any:
        if self._endpoint is not None:
            return self._endpoint
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._endpoint is None:
                http = await asyncio.to_thread(importlib.import_module, "app.mcp.http")
                endpoint = http.McpEndpoint(self.service)
                started, self._stop = asyncio.Event(), asyncio.Event()
                stop = self._stop

                async def run() -> None:
                    async with endpoint.manager.run():
                        started.set()
                        await stop.wait()

                self._runner = asyncio.create_task(run())
                await started.wait()
                self._endpoint = endpoint
        return self._endpoint

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if self._runner is not None and self._stop is not None:
                self._stop.set()
                await self._runner


async def _refuse_get(send: Send) -> None:
    error = MethodNotAllowedError("GET /mcp: this server offers no SSE stream; POST JSON-RPC "
                                  "messages instead")
    body = json.dumps(error.envelope()).encode()
    start: Any = {"type": "http.response.start", "status": error.status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"allow", b"POST, DELETE")]}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
