"""Litestar: create_app(service) assembles controllers, the gate (where a request may come
from, its key, its rate and its time), the scope guard (what each route needs), error
rendering, the access log and request metrics, and the OpenAPI document (/openapi.json,
/docs)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from litestar import Litestar, Request, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import ASGIRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import PluginProtocol

from app import __version__
from app.api import consolidation, extraction, graph
from app.api.access import AccessMiddleware
from app.api.activity import Activity
from app.api.agents import AgentController
from app.api.aliases import AgentMemoryAliasController, GuideAliasController
from app.api.backups import BackupAdminController
from app.api.contract import DisabledRoutes, registered
from app.api.decay import DecayAdminController
from app.api.errors import handle
from app.api.events import EventController
from app.api.feedback import FeedbackController
from app.api.gate import Gate, RateLimiter
from app.api.health import CapabilitiesController, HealthController
from app.api.keys import KeyAdminController, NamespaceKeyController, WhoamiController
from app.api.memories import BatchController, MemoryController
from app.api.namespaces import (
    IndexAdminController,
    NamespaceController,
    TextController,
    VectorController,
)
from app.api.ops import OpsController
from app.api.policies import PolicyController
from app.api.recall import RecallController
from app.api.scopes import authorize, need, principal_of
from app.api.sessions import SessionController
from app.api.transfer import TransferController
from app.service import Service
from app.service.keys import Principal


class _Litestar(Litestar):
    """Litestar without the plugins it adds for pydantic and attrs models when those
    libraries are installed (the MCP library brings pydantic): no route here takes or
    returns one, and loading them cost every start about 0.15 s and every route's
    registration a few more checks. (A private hook of the pinned Litestar version.)"""

    @staticmethod
    def _get_default_plugins(plugins: list[PluginProtocol]) -> list[PluginProtocol]:
        from litestar.plugins.core import MsgspecDIPlugin

        return [*plugins, MsgspecDIPlugin()]


# Admin routes live at both /v1/admin/... and /admin/..., as in the contract.
admin_routers = [Router(path=prefix, route_handlers=[DecayAdminController,
                                                    IndexAdminController,
                                                    BackupAdminController])
                 for prefix in ("/v1/admin", "/admin")]


class Mount(Protocol):
    """An ASGI endpoint from another adapter (the MCP server at /mcp), handed in by whoever
    assembles the process, with the lifespan that stops it."""

    route_handler: ASGIRouteHandler

    def lifespan(self, app: Litestar) -> AbstractAsyncContextManager[None]: ...


def create_app(service: Service, *, mounts: Sequence[Mount] = (),
               routers: Sequence[Router] = (), manage_lifecycle: bool = True) -> Litestar:
    """The ASGI app over a service. `mounts` and `routers` are other adapters' endpoints
    (the MCP server, the web pages), handed in by whoever assembles the process; their
    routes declare their access like ours (app/api/scopes.py). With manage_lifecycle the
    app starts the service on start-up and closes it on shutdown (saving the indexes)."""

    def provide_service() -> Service:
        return service

    def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        return principal_of(request)

    on_startup: list[Any] = []
    on_shutdown: list[Any] = []
    if manage_lifecycle:
        on_startup.append(lambda: service.start())
        on_shutdown.append(lambda: service.close())

    settings = service.settings
    handlers: list[Any] = [
        HealthController, CapabilitiesController, MemoryController, RecallController,
        BatchController, SessionController, AgentController, FeedbackController,
        PolicyController, OpsController, EventController, NamespaceController,
        VectorController, TextController, AgentMemoryAliasController, GuideAliasController,
        TransferController, *admin_routers, KeyAdminController, NamespaceKeyController,
        WhoamiController, *graph.controllers, *extraction.controllers,
        *consolidation.controllers, *(m.route_handler for m in mounts), *routers]
    app = _Litestar(
        route_handlers=handlers,
        dependencies={"service": Provide(provide_service, sync_to_thread=False),
                      "principal": Provide(provide_principal, sync_to_thread=False)},
        middleware=[DefineMiddleware(Gate, service=service,
                                     rate=RateLimiter(settings.rate_limit)),
                    DefineMiddleware(Activity, service=service)],
        guards=[authorize],
        state=State({"service": service}),
        exception_handlers={Exception: handle},
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        lifespan=[m.lifespan for m in mounts],
        request_max_body_size=settings.max_body_size,
        openapi_config=openapi_config(),
        logging_config=None,
        debug=False,
    )
    # Contract routes no controller serves answer 501 FEATURE_DISABLED (app/api/contract.py).
    app.state.disabled = DisabledRoutes(registered(app))
    # Outside routing, so that unknown routes and auth refusals are logged and counted.
    app.asgi_handler = AccessMiddleware(app.asgi_handler, service)
    return app


def openapi_config() -> OpenAPIConfig:
    """The document at /openapi.json, a browsable page at /docs (Swagger UI, whose scripts
    the browser loads from a CDN)."""
    return OpenAPIConfig(
        title="dakera", version=__version__,
        description="A self-hosted memory server for AI agents, wire-compatible with the "
                    "Dakera clients. Every route but the health probes and this document "
                    "takes `Authorization: Bearer <key>` (the root key DAKERA_API_KEY or a key "
                    "it made) when DAKERA_API_KEY is set. Errors "
                    "are the envelope {error, code, status, details?, resource?}.",
        render_plugins=[JsonRenderPlugin(path="/openapi.json"), SwaggerRenderPlugin(path="/docs")],
        # the document and its page are open, like the health probes; the router's other
        # routes (its catch-all) take a key (app/api/scopes.py)
        openapi_router=Router(path="/", route_handlers=[], include_in_schema=False, opt={
            **need("read"), "open_paths": ("/openapi.json", "/docs")}),
        components=Components(security_schemes={
            "bearer": SecurityScheme(type="http", scheme="bearer",
                                     description="DAKERA_API_KEY")}),
        security=[{"bearer": []}])


__all__ = ["Mount", "create_app"]
