"""The forms (POST): log in and out, edit a memory, forget it and undo. Each carries the
CSRF token of the browser's session (the router's guard checks it) and the changes need
the write scope on the memory's agent, as through the API; bad input is shown next to its
field with the API's own validation messages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Response, get, post
from litestar.params import FromPath

from app.errors import AuthenticationError, ValidationError
from app.web.context import (
    AnyRequest,
    Form,
    Principal,
    Service,
    context,
    htmx,
    number,
    query,
    tag_list,
)
from app.web.pages import memory_context
from app.web.render import field_errors, html, redirect
from app.web.session import PREFIX, cookie_of, set_cookie

WRITE_IN_QUERY = {"scope": "write", "agent": ("query", "agent_id")}
WRITE_IN_PATH = {"scope": "write", "agent": ("path", "agent_id")}
EDIT_FIELDS = ("content", "importance", "tags")


def _fragment(request: AnyRequest, service: Any, principal: Any, **values: Any
              ) -> Response[str]:
    ctx, browser = context(request, service, principal, **values)
    return html("_fragment.html", ctx, cookie=browser.cookie_header())


def memory_url(agent_id: str, memory_id: str, **flags: str) -> str:
    extra = "".join(f"&{k}={quote(v, safe='')}" for k, v in flags.items())
    return (f"{PREFIX}/memories/{quote(memory_id, safe='')}?agent_id="
            f"{quote(agent_id, safe='')}{extra}")


@post("/memories/{memory_id:str}/edit", opt=WRITE_IN_QUERY, sync_to_thread=True,
      include_in_schema=False)
def edit_memory(request: AnyRequest, service: Service, principal: Principal,
                memory_id: FromPath[str], data: Form) -> Response[str]:
    """Change content, importance and tags (only what differs from the memory: new
    content is embedded again)."""
    agent_id = query(request, "agent_id")
    current = service.memories.get(memory_id, agent_id)
    content = data.get("content")
    importance = number(data.get("importance"))
    tags = tag_list(data.get("tags"))
    changes: dict[str, Any] = {}
    if isinstance(content, str):
        content = content.replace("\r\n", "\n")
        if content != current.content:
            changes["content"] = content
    if importance is not None and importance != round(current.importance, 3):
        changes["importance"] = importance
    if tags != current.tags:
        changes["tags"] = tags
    try:
        if changes:
            service.memories.update(agent_id, memory_id, **changes)
    except ValidationError as exc:
        form = {"content": content if isinstance(content, str) else "",
                "importance": data.get("importance", ""), "tags": data.get("tags", "")}
        ctx, browser = memory_context(request, service, principal, agent_id, memory_id,
                                      form=form, errors=field_errors(exc, EDIT_FIELDS))
        return html("memory.html", ctx, status=400, cookie=browser.cookie_header())
    return redirect(memory_url(agent_id, memory_id, saved="1"), htmx=htmx(request))


@post("/memories/{memory_id:str}/forget", opt=WRITE_IN_QUERY, sync_to_thread=True,
      include_in_schema=False)
def forget_memory(request: AnyRequest, service: Service, principal: Principal,
                  memory_id: FromPath[str], data: Form) -> Response[str]:
    """Forget a memory, keeping it in the agent's trash (undo restores it as it was)."""
    agent_id = query(request, "agent_id")
    service.memories.discard(agent_id, memory_id)
    if htmx(request):
        return _fragment(request, service, principal, kind="forgotten", memory_id=memory_id,
                         agent_id=agent_id)
    return redirect(f"{PREFIX}/agents/{quote(agent_id, safe='')}?forgotten="
                    f"{quote(memory_id, safe='')}")


@post("/agents/{agent_id:str}/trash/{memory_id:str}/restore", opt=WRITE_IN_PATH,
      sync_to_thread=True, include_in_schema=False)
def restore_memory(request: AnyRequest, service: Service, principal: Principal,
                   agent_id: FromPath[str], memory_id: FromPath[str], data: Form
                   ) -> Response[str]:
    """Undo: a forgotten memory comes back as it was; a merged duplicate as a memory of
    its own."""
    memory = service.memories.restore_deduplicated(agent_id, memory_id)
    if htmx(request):
        return _fragment(request, service, principal, kind="memory", m=memory,
                         agent_id=agent_id)
    return redirect(memory_url(agent_id, memory.id, restored=memory.id))


@post("/login", opt={"open": True}, sync_to_thread=True, include_in_schema=False)
def login(request: AnyRequest, service: Service, data: Form) -> Response[str]:
    """Check the key once; the browser gets a new session id (never the key)."""
    target = safe_next(data.get("next"))
    if not service.settings.api_key:
        return redirect(target)
    try:
        session_id, _, expires = service.logins.open(data.get("api_key"))
    except (ValidationError, AuthenticationError) as exc:
        ctx, browser = context(request, service, None, next=target,
                               errors={"api_key": exc.message})
        status = 400 if isinstance(exc, ValidationError) else 401
        return html("login.html", ctx, status=status, cookie=browser.cookie_header())
    service.logins.close(cookie_of(request.scope))
    secure = request.scope.get("scheme") == "https"
    return redirect(target, cookie=set_cookie(session_id, secure=secure,
                                              max_age=max(1, expires - service.now())))


@post("/logout", opt={"open": True}, sync_to_thread=True, include_in_schema=False)
def logout(request: AnyRequest, service: Service, data: Form) -> Response[str]:
    service.logins.close(cookie_of(request.scope))
    secure = request.scope.get("scheme") == "https"
    return redirect(f"{PREFIX}/login", cookie=set_cookie("", secure=secure, max_age=0))


def safe_next(value: Any) -> str:
    """Where to go after logging in: a page of ours, never another site."""
    if (isinstance(value, str) and value.startswith(PREFIX)
            and not value.startswith("//") and "\\" not in value):
        return value
    return f"{PREFIX}/"


@get("/login", opt={"open": True}, sync_to_thread=True, include_in_schema=False)
def login_page(request: AnyRequest, service: Service) -> Response[str]:
    """The login form (a key-less server needs none; a logged-in browser goes on)."""
    target = safe_next(query(request, "next"))
    if not service.settings.api_key:
        return redirect(target)
    try:
        service.logins.principal(cookie_of(request.scope))
        return redirect(target)
    except AuthenticationError:
        pass
    ctx, browser = context(request, service, None, next=target)
    return html("login.html", ctx, cookie=browser.cookie_header())


__all__ = ["edit_memory", "forget_memory", "login", "login_page", "logout", "restore_memory",
           "safe_next"]
