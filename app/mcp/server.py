"""The MCP server (the official SDK's low-level Server) over a Backend: tools/list and
tools/call. Failures come back as tool errors (isError) whose text is the REST API's error
envelope, so a model sees the same message a REST client would."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)

from app import __version__
from app.errors import DakeraError, InternalError
from app.mcp.backend import Backend, ToolFailure
from app.mcp.catalogue import BY_NAME, listed
from app.mcp.ops import CALLER
from app.mcp.tools import INSTRUCTIONS, ToolSpec

if TYPE_CHECKING:
    from app.service.keys import Principal

log = logging.getLogger("dakera.mcp")


def tool_definition(spec: ToolSpec) -> Tool:
    return Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.input_schema,
        annotations=ToolAnnotations(
            title=spec.title, read_only_hint=spec.read_only,
            destructive_hint=spec.destructive, idempotent_hint=spec.idempotent,
            open_world_hint=False),
    )


def _text(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


def error_result(envelope: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=_text(envelope))],
                          structured_content=envelope, is_error=True)


async def call_tool(backend: Backend, name: str, arguments: dict[str, Any] | None
                    ) -> CallToolResult:
    spec = BY_NAME.get(name)
    if spec is None:
        raise MCPError(code=INVALID_PARAMS, message=f"unknown tool: {name}")
    # Hosts and models send null for "not given"; the REST API treats null as absent too.
    args = {k: v for k, v in (arguments or {}).items() if v is not None}
    try:
        spec.check(args)
        result = await spec.handler(backend, args)
    except ToolFailure as exc:
        log.info("%s failed: %s", name, exc.envelope.get("error"))
        return error_result(exc.envelope)
    except DakeraError as exc:
        log.info("%s refused: %s", name, exc.message)
        return error_result(exc.envelope())
    except Exception:
        log.exception("%s crashed", name)
        return error_result(InternalError("internal error").envelope())
    return CallToolResult(content=[TextContent(type="text", text=_text(result))],
                          structured_content=result)


def caller_of(ctx: ServerRequestContext[Any, Any]) -> Principal | None:
    """The key of the HTTP request to the server's /mcp (the gate left it in the request's
    state); None over stdio."""
    scope = getattr(ctx.request, "scope", None)
    state = scope.get("state") if isinstance(scope, dict) else None
    if not isinstance(state, dict):
        return None
    # here only in the server's process, which has loaded the service already (the stdio
    # client of `dakera mcp --url` never does)
    from app.service.keys import PRINCIPAL_STATE, Principal
    found = state.get(PRINCIPAL_STATE)
    return found if isinstance(found, Principal) else None


def build_server(backend: Backend, profile: str = "core") -> Server[Any]:
    """An MCP server answering through `backend`, listing the tools of `profile` (every
    tool of the catalogue can be called)."""
    tools = [tool_definition(spec) for spec in listed(profile)]

    async def on_list_tools(ctx: ServerRequestContext[Any, Any],
                            params: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(tools=tools)

    async def on_call_tool(ctx: ServerRequestContext[Any, Any],
                           params: CallToolRequestParams) -> CallToolResult:
        token = CALLER.set(caller_of(ctx))
        try:
            return await call_tool(backend, params.name, params.arguments)
        finally:
            CALLER.reset(token)

    return Server(
        "dakera",
        version=__version__,
        title="dakera memory",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=lambda name: (BY_NAME[name].input_schema
                                            if name in BY_NAME else None),
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )
