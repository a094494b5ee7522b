"""Litestar: create_app(service) assembles controllers, auth and error rendering."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig

from app import __version__
from app.api.agents import AgentController
from app.api.auth import BearerAuth
from app.api.batch import BatchController
from app.api.errors import handle
from app.api.health import CapabilitiesController, HealthController
from app.api.lifecycle import FeedbackController, admin_routers
from app.api.memory import MemoryController
from app.api.sessions import SessionController
from app.mcp.mount import McpMount
from app.service import MemoryService


def create_app(service: MemoryService, *, manage_lifecycle: bool = True) -> Litestar:
    """The ASGI app over a service. With manage_lifecycle the app starts the service on
    start-up and closes it on shutdown (saving the indexes)."""

    def provide_service() -> MemoryService:
        return service

    on_startup: list[Any] = []
    on_shutdown: list[Any] = []
    if manage_lifecycle:
        on_startup.append(lambda: service.start())
        on_shutdown.append(lambda: service.close())

    mcp = McpMount(service)  # the MCP tools at /mcp, behind the same Bearer auth

    return Litestar(
        route_handlers=[HealthController, CapabilitiesController, MemoryController,
                        BatchController, SessionController, AgentController,
                        FeedbackController, *admin_routers, mcp.route_handler],
        dependencies={"service": Provide(provide_service, sync_to_thread=False)},
        middleware=[DefineMiddleware(BearerAuth, api_key=service.settings.api_key)],
        exception_handlers={Exception: handle},
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        lifespan=[mcp.lifespan],
        request_max_body_size=service.settings.max_body_size,
        openapi_config=OpenAPIConfig(title="dakera", version=__version__, path="/openapi"),
        logging_config=None,
        debug=False,
    )
