"""What each route needs, declared on the route, and the one guard that enforces it.

Every route handler declares its access in its `opt`:

    @post("/store", opt=need("write", agent=in_body("agent_id")))

`need(scope, ...)` names the scope (read < write < admin < super_admin) and how to find the
namespace the request touches: an agent (`in_body`, `in_path`, `in_query`: the agent's
namespace `_dakera_agent_<id>`), a namespace (`namespace=in_path("namespace")`), the agent
of a session or of a memory, or every namespace (`every_namespace=True`, global admin).
`open_paths` in a router's opt opens those of its routes (the OpenAPI document).
`listing=True` marks a route whose handler filters what it returns by the key's grants
(it takes `principal: Principal`). `upload=True` marks a route that reads a file upload
itself (multipart/form-data or a bare body): without an API key it is spared the refusal of
form bodies (the gate's Origin check still applies). `OPEN` marks the health probes. A
route of another adapter (the MCP mount, the web pages) declares the plain form
`opt={"scope": "write", "every_namespace": True}`, with `"agent": ("path" | "query", name)`
for the agent it touches (as in_path / in_query), `"listing": True`, or
`opt={"open": True}`. A route that declares
nothing is refused to every key but an unrestricted super_admin (tests/test_scopes.py
walks every route and fails on such a route).

The gate (app/api/gate.py) authenticates the request before this guard runs and leaves the
principal in the request's state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler

from app.errors import NotFoundError, UnsupportedMediaTypeError, ValidationError
from app.service import Service
from app.service.keys import (
    AUTH_DISABLED,
    PRINCIPAL_STATE,
    SCOPES,
    Principal,
    agent_namespace,
)

PRINCIPAL = PRINCIPAL_STATE  # key of the request's state holding the Principal

# (request, service) -> the namespaces the request touches
Locator = Callable[[ASGIConnection[Any, Any, Any, Any], Service], Awaitable[list[str]]]


@dataclass(frozen=True)
class Access:
    scope: str | None  # None: open to anyone (health probes)
    locate: Locator | None = None
    every_namespace: bool = False
    listing: bool = False
    describes: str = ""  # how the namespace is found, for docs and the route table
    upload: bool = False  # reads a file upload (multipart/form-data) itself


def need(scope: str, *, agent: tuple[str, Locator] | None = None,
         namespace: tuple[str, Locator] | None = None, every_namespace: bool = False,
         listing: bool = False, upload: bool = False) -> dict[str, Any]:
    """A route's `opt`: the scope it needs and the namespace it touches."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    where = agent or namespace
    return {"access": Access(scope, where[1] if where else None, every_namespace, listing,
                             where[0] if where else ("every namespace" if every_namespace
                                                      else ""), upload)}


OPEN: dict[str, Any] = {"access": Access(None, describes="open")}
UNDECLARED = Access("super_admin", every_namespace=True, describes="undeclared")


def access_of(handler: BaseRouteHandler) -> Access:
    """A route's declaration: `opt["access"]` (from need() or OPEN), or the plain form
    another adapter's route uses, `opt={"scope": ..., "every_namespace": ...}`."""
    open_paths = handler.opt.get("open_paths")
    if open_paths and set(handler.paths) & set(open_paths):
        return Access(None, describes="open")
    found = handler.opt.get("access")
    if isinstance(found, Access):
        return found
    if isinstance(handler, HTTPRouteHandler) and handler.http_methods == {"OPTIONS"}:
        return Access(None, describes="open (OPTIONS)")  # the router's own Allow answer
    if handler.opt.get("open") is True:
        return Access(None, describes="open")
    scope = handler.opt.get("scope")
    if scope in SCOPES:
        access = _plain(handler.opt, scope)
        handler.opt["access"] = access  # worked out once
        return access
    return UNDECLARED


def _plain(opt: dict[str, Any], scope: str) -> Access:
    """The Access of a route declared in the plain form."""
    every = bool(opt.get("every_namespace"))
    listing = bool(opt.get("listing"))
    where = opt.get("agent")
    if where is not None:
        kind, name = where
        described, locate = in_path(name) if kind == "path" else in_query(name)
        return Access(scope, locate, every, listing, described)
    return Access(scope, every_namespace=every, listing=listing,
                  describes="every namespace" if every else "")


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    found = connection.scope.get("state", {}).get(PRINCIPAL)
    return found if isinstance(found, Principal) else AUTH_DISABLED


# -- where the namespace is -----------------------------------------------------------------


class _AgentField(msgspec.Struct):
    agent_id: Any = None


async def _body_field(connection: ASGIConnection[Any, Any, Any, Any], name: str) -> Any:
    body = await connection.body() if hasattr(connection, "body") else b""
    if not body.strip():
        return None
    try:
        if name == "agent_id":  # the common case: decode that one field only
            return msgspec.json.decode(body, type=_AgentField).agent_id
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise ValidationError("malformed JSON body") from None
    return data.get(name) if isinstance(data, dict) else None


def _agent_ids(value: Any, where: str) -> list[str]:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"'agent_id' ({where}) is required")
    return [agent_namespace(value)]


def in_body(field: str = "agent_id") -> tuple[str, Locator]:
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: Service) -> list[str]:
        return _agent_ids(await _body_field(connection, field), f"body field {field!r}")
    return f"agent of body.{field}", locate


def in_path(param: str = "agent_id") -> tuple[str, Locator]:
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: Service) -> list[str]:
        return _agent_ids(connection.path_params.get(param), f"path {param}")
    return f"agent of path {{{param}}}", locate


def in_query(param: str = "agent_id", *, optional: bool = False) -> tuple[str, Locator]:
    """The agent named by a query parameter; with optional=True an absent one touches no
    namespace (the route is then a listing that filters by grants)."""
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: Service) -> list[str]:
        value = connection.query_params.get(param)
        if value is None and optional:
            return []
        return _agent_ids(value, f"query {param}")
    return f"agent of ?{param}" + (" (else filtered)" if optional else ""), locate


def namespace_in_path(param: str = "namespace") -> tuple[str, Locator]:
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: Service) -> list[str]:
        value = connection.path_params.get(param)
        if not isinstance(value, str) or not value:
            raise ValidationError(f"the namespace ({param}) is required")
        return [value]
    return f"namespace {{{param}}}", locate


def target_in_body() -> tuple[str, Locator]:
    """The namespace of body.namespace, else the agent of body.agent_id, else none (the
    route then touches no namespace: POST /v1/extract reads a namespace's config only
    when one is named)."""
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: Service) -> list[str]:
        namespace = await _body_field(connection, "namespace")
        if isinstance(namespace, str) and namespace:
            return [namespace]
        agent = await _body_field(connection, "agent_id")
        return _agent_ids(agent, "body field 'agent_id'") if agent is not None else []
    return "namespace of body.namespace or agent of body.agent_id (else none)", locate
def namespace_in_body(*fields: str) -> tuple[str, Locator]:
    """The namespace named by the first of these body fields present (creating one)."""
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: Service) -> list[str]:
        for field in fields:
            value = await _body_field(connection, field)
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise ValidationError(f"'{field}' must be a namespace name")
                return [value]
        raise ValidationError(f"'{fields[0]}' (the namespace) is required")
    return "namespace of body." + " or body.".join(fields), locate


def session_in_path(param: str = "session_id") -> tuple[str, Locator]:
    """The agent of the session named in the path (an unknown session touches nothing:
    the handler answers for it as it would)."""
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: Service) -> list[str]:
        session_id = connection.path_params.get(param)
        try:
            session = await anyio.to_thread.run_sync(lambda: service.sessions.get(session_id))
        except NotFoundError:
            return []
        return [agent_namespace(session.agent_id)] if session.agent_id else []
    return f"agent of session {{{param}}}", locate


def memory_in_path(param: str = "memory_id", query: str = "agent_id") -> tuple[str, Locator]:
    """The agent of ?agent_id, or else of the memory named in the path."""
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: Service) -> list[str]:
        agent = connection.query_params.get(query)
        if agent is not None:
            return _agent_ids(agent, f"query {query}")
        memory_id = connection.path_params.get(param)
        try:
            memory = await anyio.to_thread.run_sync(lambda: service.memories.get(memory_id))
        except ValidationError:  # held by several agents: do not name them
            raise ValidationError(f"pass the '{query}' query parameter") from None
        return [agent_namespace(memory.agent_id)]
    return f"agent of ?{query} or of memory {{{param}}}", locate


# -- the guard ------------------------------------------------------------------------------

def takes_json(handler: BaseRouteHandler) -> bool:
    """Whether the handler reads a JSON body (its `data` parameter)."""
    if not isinstance(handler, HTTPRouteHandler):
        return False
    param = handler.parsed_fn_signature.parameters.get("data")
    if param is None:
        return False
    return getattr(param.kwarg_definition, "media_type", None) in (None,
                                                                   RequestEncodingType.JSON)


def _check_json(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A JSON route takes only application/json (or +json): a web page cannot send that
    cross-site without a preflight, which the gate refuses."""
    ctype = connection.headers.get("content-type")
    if ctype is None:
        length = connection.headers.get("content-length")
        if connection.headers.get("transfer-encoding") is None and length in (None, "0"):
            return  # no body
    media = (ctype or "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"this route takes a JSON body: send 'Content-Type: application/json' (got "
            f"{ctype or 'none'}; with curl use --json or -H 'Content-Type: "
            "application/json')")


def _has_data(handler: BaseRouteHandler) -> bool:
    return (isinstance(handler, HTTPRouteHandler)
            and "data" in handler.parsed_fn_signature.parameters)


FORM_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded",
                        "multipart/form-data"})


def _check_no_form(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A route without a body still refuses what an HTML form sends."""
    media = (connection.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media in FORM_TYPES:
        raise UnsupportedMediaTypeError(f"this route takes no {media} body: send none, or "
                                        "'Content-Type: application/json'")


async def authorize(connection: ASGIConnection[Any, Any, Any, Any],
                    handler: BaseRouteHandler) -> None:
    """The app's one guard: the route's declared scope and namespace, for the principal
    the gate found (and, without an API key, a JSON content type on JSON routes)."""
    access = access_of(handler)
    if access.scope is None:
        return
    service: Service = connection.app.state["service"]
    if not service.settings.api_key:
        if takes_json(handler):
            _check_json(connection)
        elif (connection.scope.get("method") not in ("GET", "HEAD")
              and not _has_data(handler) and not access.upload):
            _check_no_form(connection)
    principal = principal_of(connection)
    principal.require(access.scope)
    if access.every_namespace:
        principal.require_every_namespace()
    if access.locate is not None and not principal.unrestricted:
        for namespace in await access.locate(connection, service):
            principal.require_namespace(namespace)


__all__ = ["OPEN", "PRINCIPAL", "Access", "access_of", "authorize", "in_body", "in_path",
           "in_query", "memory_in_path", "namespace_in_body", "namespace_in_path", "need",
           "principal_of", "session_in_path", "target_in_body"]
