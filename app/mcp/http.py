"""Streamable HTTP MCP at /mcp, in the server's own ASGI app and port.

Stateless mode with JSON responses: every POST carries one JSON-RPC message and gets its
answer as one JSON body. The tools are request/response (no server-initiated requests, no
streamed progress), so nothing needs a session: no per-client state lives in the server, a
restart does not break connected hosts (no "session not found" after it), and no long-lived
SSE stream holds up a graceful shutdown (GET /mcp is refused with 405). The SDK's session
manager still needs its task group running: app.mcp.mount starts it on the first request
and stops it with the app.
"""

from __future__ import annotations

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from app.mcp.backend import LocalBackend
from app.mcp.server import build_server
from app.service import Service


class McpEndpoint:
    """The SDK's session manager over our tools; app.mcp.mount routes /mcp to it and runs
    it for the life of the app."""

    def __init__(self, service: Service) -> None:
        settings = service.settings
        self.manager = StreamableHTTPSessionManager(
            app=build_server(LocalBackend(service)),
            stateless=True,
            json_response=True,
            # Host, Origin and the key are checked by the HTTP app's gate before /mcp is
            # reached (app/api/gate.py), the same way as for every REST route.
            security_settings=None,
            max_request_body_size=settings.max_body_size,
        )
