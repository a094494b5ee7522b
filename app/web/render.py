"""Pages from templates (Jinja2, autoescaped), the headers every page carries, and errors
as pages.

Every page is sent with a strict Content-Security-Policy (scripts, styles and images from
this server only, no frames), no caching, no referrer, and `Server-Timing: app;dur=<ms>`
(the time from routing to the rendered page).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.types import Scope, Send

from app.errors import (
    AuthenticationError,
    DakeraError,
    InternalError,
    RouteNotFoundError,
    ValidationError,
)
from app.web.session import PREFIX, login_url, wants_login
from app.web.static import ASSET_VERSION

log = logging.getLogger("dakera.web")

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Cache-Control": "no-store"}
HTML = "text/html; charset=utf-8"
_FIELD = re.compile(r"^'([A-Za-z_][\w.\[\]]*)'")


def field_of(error: DakeraError) -> str | None:
    """The field a validation message names first ("'importance' must be ...")."""
    found = _FIELD.match(error.message)
    return found.group(1) if found else None


def ago(ts: int | None, now: int | None = None) -> str:
    """A time as people say it: "3 min ago", "in 2 days"."""
    if ts is None:
        return "never"
    now = int(time.time()) if now is None else now
    delta = now - int(ts)
    future = delta < 0
    delta = abs(delta)
    for size, unit in ((86_400 * 365, "y"), (86_400 * 30, "mo"), (86_400, "d"),
                       (3600, "h"), (60, "min")):
        if delta >= size:
            n = delta // size
            return f"in {n} {unit}" if future else f"{n} {unit} ago"
    return "just now" if not future else "in a moment"


def stamp(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits:
        return f"{value:,.{digits}f}"
    return f"{round(value):,}".replace(",", "\u202f")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours = seconds / 3600
    if hours < 48:
        return f"{hours:.3g} h"
    return f"{hours / 24:.3g} days"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, auto_reload=False)
    env.filters.update(ago=ago, stamp=stamp, iso=iso, num=num, duration=duration)
    env.globals.update(prefix=PREFIX, assets=ASSET_VERSION, csrf="", user=None, nav="",
                       can_write=False, flash=None, errors={}, tab="")
    return env


ENV = _env()


def html(template: str, context: dict[str, Any], *, status: int = 200,
         cookie: str | None = None, headers: dict[str, str] | None = None) -> Response[str]:
    body = ENV.get_template(template).render(**context)
    out = dict(HEADERS)
    if headers:
        out.update(headers)
    if cookie:
        out["Set-Cookie"] = cookie
    return Response(body, status_code=status, media_type=HTML, headers=out)


def redirect(location: str, *, cookie: str | None = None, status: int = 303,
             htmx: bool = False) -> Response[str]:
    """To another page after a form (303: the browser GETs it); for htmx, HX-Redirect."""
    out = dict(HEADERS)
    if cookie:
        out["Set-Cookie"] = cookie
    if htmx:
        out["HX-Redirect"] = location
        return Response("", status_code=200, media_type=HTML, headers=out)
    out["Location"] = location
    return Response("", status_code=status, media_type=HTML, headers=out)


def error_page(error: DakeraError, request_id: str | None = None) -> str:
    return ENV.get_template("error.html").render(error=error, request_id=request_id)


def to_error(exc: Exception) -> DakeraError:
    if isinstance(exc, DakeraError):
        return exc
    if isinstance(exc, NotFoundException):
        return RouteNotFoundError("no such page")
    if isinstance(exc, HTTPException) and 400 <= exc.status_code < 500:
        err = DakeraError(exc.detail or "bad request", code="INVALID_REQUEST")
        err.status = exc.status_code
        return err
    return InternalError("internal error")


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    """Errors of the pages, as pages (the API's envelope is for the API)."""
    error = to_error(exc)
    request_id = (request.scope.get("state") or {}).get("request_id")
    if isinstance(error, InternalError):
        log.error("%s %s failed (request_id %s)", request.method, request.url.path,
                  request_id, exc_info=exc)
    if wants_login(error):
        return redirect(login_url(request.scope), htmx="hx-request" in request.headers)
    headers = dict(HEADERS)
    headers.update(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(int(error.retry_after))
    return Response(error_page(error, request_id), status_code=error.status, media_type=HTML,
                    headers=headers)


async def refuse(scope: Scope, send: Send, error: DakeraError) -> None:
    """The gate's refusals of a page: to the login form for a GET without a login, else an
    error page with the refusal's status."""
    htmx = any(k == b"hx-request" for k, _ in scope.get("headers", ()))
    request_id = (scope.get("state") or {}).get("request_id")
    headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()
                if k.lower() != "www-authenticate"]
    status = error.status
    body = b""
    if isinstance(error, AuthenticationError) and (
            scope.get("method") in ("GET", "HEAD") or htmx):
        location = login_url(scope).encode()
        if htmx:
            status = 200
            headers.append((b"hx-redirect", location))
        else:
            status = 303
            headers.append((b"location", location))
    else:
        body = error_page(error, request_id).encode()
        headers.append((b"content-type", HTML.encode()))
    if error.retry_after is not None:
        headers.append((b"retry-after", str(int(error.retry_after)).encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    start: Any = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


class ServerTiming:
    """ASGI middleware of the pages: `Server-Timing: app;dur=<ms>` on every answer, the
    time from routing to the response's start (guards, handler, rendering)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000
                message["headers"] = [*message.get("headers", ()),
                                      (b"server-timing", f"app;dur={ms:.1f}".encode())]
            await send(message)

        await self.app(scope, receive, timed)


def field_errors(error: ValidationError, fields: tuple[str, ...]) -> dict[str, str]:
    """{field: message} for a form showing `fields`: the field the message names, else the
    form as a whole."""
    field = field_of(error)
    return {field if field in fields else "_form": error.message}


__all__ = ["ENV", "HEADERS", "ServerTiming", "error_page", "field_errors", "field_of",
           "handle", "html", "redirect", "refuse"]
