"""Who a browser is: the login cookie, the CSRF token of its forms, and how the gate's
refusals look in a browser.

The cookie `dakera_ui` holds a random session id (never the key): the server maps it to
the key it was opened with (service.logins). Every browser gets one, logged in or not,
because the CSRF token of its forms is derived from it; a key-less server needs no login.
The cookie is HttpOnly, SameSite=Strict, limited to /ui, and Secure over https.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Scope

from app.errors import AuthenticationError, AuthorizationError, DakeraError
from app.service import Service
from app.service.keys import Principal

COOKIE = "dakera_ui"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
PREFIX = "/ui"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(AuthorizationError):
    code = "CSRF_TOKEN_INVALID"


def cookie_of(scope: Scope) -> str | None:
    """The session id in the request's Cookie header."""
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, val = part.strip().partition("=")
                if name == COOKIE and val:
                    return val
    return None


def set_cookie(session_id: str, *, secure: bool, max_age: int | None = None) -> str:
    """A Set-Cookie value for the session id (max_age 0 deletes it)."""
    parts = [f"{COOKIE}={session_id}", f"Path={PREFIX}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def authenticator(service: Service) -> Any:
    """The gate's `authenticate` hook for the pages (a request without Authorization)."""

    def authenticate(scope: Scope) -> Principal:
        return service.logins.principal(cookie_of(scope))

    return authenticate


@dataclass
class Browser:
    """The browser behind a request: its session id (new if it sent none), the token its
    forms carry, and whether the response must set the cookie."""

    session_id: str
    csrf: str
    new: bool
    secure: bool

    def cookie_header(self) -> str | None:
        return set_cookie(self.session_id, secure=self.secure) if self.new else None


def browser_of(scope: Scope, service: Service) -> Browser:
    found = cookie_of(scope)
    session_id = found or service.logins.new_id()
    return Browser(session_id, service.logins.csrf_token(session_id), found is None,
                   scope.get("scheme") == "https")


async def check_csrf(connection: ASGIConnection[Any, Any, Any, Any],
                     handler: BaseRouteHandler) -> None:
    """The pages' guard: a request that changes something carries the CSRF token of its
    session (a form field, or the X-CSRF-Token header of a script)."""
    if connection.scope.get("method") in SAFE_METHODS:
        return
    service: Service = connection.app.state["service"]
    token = connection.headers.get(CSRF_HEADER)
    if token is None and hasattr(connection, "form"):
        form = await connection.form()
        token = form.get(CSRF_FIELD)
    if not service.logins.csrf_ok(cookie_of(connection.scope), token):
        raise CsrfRefused("the form's CSRF token is missing or does not match this browser's "
                          "session: reload the page and try again")


def login_url(scope: Scope) -> str:
    """The login form, with the page to come back to."""
    target = scope.get("path", PREFIX)
    query = scope.get("query_string", b"").decode("latin-1")
    if scope.get("method") not in SAFE_METHODS:
        target = PREFIX
    elif query:
        target += "?" + query
    return f"{PREFIX}/login?next={quote(target, safe='')}"


def wants_login(error: DakeraError) -> bool:
    return isinstance(error, AuthenticationError)


__all__ = ["COOKIE", "CSRF_FIELD", "Browser", "CsrfRefused", "authenticator", "browser_of",
           "check_csrf", "cookie_of", "login_url", "set_cookie", "wants_login"]
