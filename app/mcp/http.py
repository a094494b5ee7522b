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
from mcp.server.transport_security import TransportSecuritySettings

from app.config import Settings
from app.mcp.backend import LocalBackend
from app.mcp.server import build_server
from app.service import Service


def transport_security(settings: Settings) -> TransportSecuritySettings | None:
    """With an API key, the Bearer check guards /mcp (a browser page cannot add the header).
    Without one the server listens on loopback only, where a web page could still reach it
    through DNS rebinding: then only loopback Host and Origin headers are accepted."""
    if settings.api_key:
        return None
    names = ["127.0.0.1", "localhost", "[::1]"]
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    if host not in names:
        names.append(host)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*names, *(f"{n}:*" for n in names)],
        allowed_origins=[f"{scheme}://{n}{port}" for scheme in ("http", "https")
                         for n in names for port in ("", ":*")],
    )


class McpEndpoint:
    """The SDK's session manager over our tools; app.mcp.mount routes /mcp to it and runs
    it for the life of the app."""

    def __init__(self, service: Service) -> None:
        settings = service.settings
        self.manager = StreamableHTTPSessionManager(
            app=build_server(LocalBackend(service), settings.mcp_profile),
            stateless=True,
            json_response=True,
            security_settings=transport_security(settings),
            max_request_body_size=settings.max_body_size,
        )
