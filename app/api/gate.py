"""The gate every routed request passes before its handler: where it may come from, who it
is, how often it may ask and how long it may take.

* Host (no API key only): a loopback or private-address Host (any port), `localhost`, or a
  name in DAKERA_ALLOWED_HOSTS; anything else is 421 HOST_NOT_ALLOWED, which is what stops
  DNS rebinding from turning a web page into a client of a key-less server.
* Origin: a browser request from another origin is 403 CROSS_ORIGIN_REQUEST_REFUSED unless
  DAKERA_CORS_ORIGINS lists it; for listed origins CORS preflights are answered and
  responses carry the CORS headers.
* Key: `Authorization: Bearer <key>` when the server has a root key (DAKERA_API_KEY); the
  principal goes into the request's state for the route guard (app/api/scopes.py).
* Rate: DAKERA_RATE_LIMIT_PER_MINUTE per key (per client address without keys), a sliding
  window from the `limits` library; 429 RATE_LIMIT_EXCEEDED with Retry-After, and the
  X-RateLimit-* headers on every answer.
* Time: DAKERA_REQUEST_TIMEOUT seconds until the response starts (408 while the body is
  still arriving, 504 after); streams that have started are not cut. A file upload (a route
  declared with `upload=True`: imports, backup uploads) may take as long as it needs while
  its chunks keep coming (408 after DAKERA_REQUEST_TIMEOUT without one), and its response
  must start within DAKERA_REQUEST_TIMEOUT of its last chunk.

Open routes (the health probes) skip all but the Host check. Every refusal is the Dakera
envelope, unless the route is another adapter's that says otherwise: a route (the web
pages) may name in its opt an `authenticate(scope) -> Principal` used when the request
carries no Authorization header (the pages' login cookie), and a `refuse(scope, send,
error)` that answers the gate's refusals its own way (a page, a redirect to the login).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import time
from typing import Any

import anyio
import msgspec
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from app.api.access import request_id_of
from app.api.errors import envelope
from app.api.scopes import PRINCIPAL, access_of
from app.errors import (
    AuthenticationError,
    CrossOriginRefused,
    DakeraError,
    HostNotAllowedError,
    QueryTimeoutError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
)
from app.service import Service
from app.service.keys import AUTH_DISABLED, ROOT, Principal, is_root

CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_HEADERS = frozenset({"authorization", "content-type", "accept", "accept-language",
                          "content-language", "user-agent", "x-requested-with",
                          "cache-control", "last-event-id"})
EXPOSED = ("Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
           "Content-Disposition")
DEFAULT_PORTS = {"http": "80", "https": "443"}
# Who reads /metrics from loopback when DAKERA_METRICS_OPEN_ON_LOOPBACK is set.
LOOPBACK_SCRAPER = Principal("loopback-scraper", "loopback-scraper", "admin", None)


def split_host(value: str) -> str:
    """The host name of a Host header value (port and IPv6 brackets removed), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def host_allowed(value: str, allowed: tuple[str, ...]) -> bool:
    name = split_host(value)
    if "*" in allowed or name in allowed:
        return True
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def origin_of(value: str) -> tuple[str, str] | None:
    """(scheme, host[:port]) of an Origin header, the scheme's default port dropped."""
    scheme, sep, rest = value.strip().lower().partition("://")
    rest = rest.rstrip("/")
    if not sep or not rest or "/" in rest:
        return None
    default = DEFAULT_PORTS.get(scheme)
    if default and rest.endswith(":" + default):
        rest = rest[: -len(default) - 1]
    return scheme, rest


def same_origin(origin: str, host: str | None, scheme: str) -> bool:
    """Whether a browser's Origin is this server as the request names it (Host). The scheme
    is not compared: behind a TLS proxy the page is https while the request is http."""
    parsed = origin_of(origin)
    if parsed is None or host is None:
        return False
    host = host.strip().lower()
    for default in (DEFAULT_PORTS.get(scheme), DEFAULT_PORTS.get(parsed[0])):
        if default and host.endswith(":" + default):
            host = host[: -len(default) - 1]
    return parsed[1] == host


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class RateLimiter:
    """One per app, shared by the gates of all its routes (Litestar makes one gate per
    route handler)."""

    def __init__(self, per_minute: int) -> None:
        self.limit = RateLimitItemPerMinute(per_minute) if per_minute else None
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage()) if self.limit else None


class Gate:
    def __init__(self, app: ASGIApp, service: Service, rate: RateLimiter) -> None:
        self.app = app
        self.service = service
        s = service.settings
        self.keyed = bool(s.api_key)
        self.cors = s.cors_origins
        self.timeout = s.request_timeout
        self.limit = rate.limit
        self.limiter = rate.limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            send = await self._admit(scope, send)
        except DakeraError as exc:
            handler = scope.get("route_handler")
            refuse = handler.opt.get("refuse") if handler is not None else None
            await (refuse or _send_error)(scope, send, exc)
            return
        if send is None:  # answered here (a CORS preflight)
            return
        await self._run(scope, receive, send)

    async def _admit(self, scope: Scope, send: Send) -> Any:
        """Check the request; the `send` to answer it with (None once answered)."""
        s = self.service.settings
        host = _header(scope, b"host")
        if not self.keyed and host is not None and not host_allowed(host, s.allowed_hosts):
            raise HostNotAllowedError(
                f"Host {host!r} is not allowed: without an API key this server answers "
                "only loopback and private-address hosts; add the name to "
                "DAKERA_ALLOWED_HOSTS or set DAKERA_API_KEY")
        origin = _header(scope, b"origin")
        listed = origin is not None and ("*" in self.cors or origin.lower().rstrip("/")
                                         in self.cors)
        if (origin is not None and not listed
                and not same_origin(origin, host, scope.get("scheme", "http"))):
            raise CrossOriginRefused(
                f"cross-origin request from {origin!r} refused: list the origin in "
                "DAKERA_CORS_ORIGINS to let its pages call this server")
        if (listed and scope.get("method") == "OPTIONS"
                and _header(scope, b"access-control-request-method")):
            await self._preflight(scope, send, origin or "")
            return None
        if listed:
            send = _with_cors(send, origin or "")
        handler = scope["route_handler"]
        access = access_of(handler)
        if (handler.opt.get("open_on_loopback") and s.metrics_open_on_loopback
                and _loopback_client(scope)):  # /metrics for a local scraper
            scope.setdefault("state", {})[PRINCIPAL] = LOOPBACK_SCRAPER
            scope["state"]["key_id"] = LOOPBACK_SCRAPER.key_id
            return send
        if access.scope is None:  # open: a key, if any, only widens what health shows
            principal = self._try_authenticate(scope)
            if principal is not None:
                scope.setdefault("state", {})[PRINCIPAL] = principal
            return send
        principal = self._authenticate(scope)
        state = scope.setdefault("state", {})
        state[PRINCIPAL] = principal
        state["key_id"] = principal.key_id  # for the access log (never the key)
        return self._rate_limit(scope, send, principal)

    def _authenticate(self, scope: Scope) -> Principal:
        if not self.keyed:
            return AUTH_DISABLED
        header = _header(scope, b"authorization")
        own = scope["route_handler"].opt.get("authenticate")
        if not header and own is not None:  # the web pages' login cookie
            principal: Principal = own(scope)
            return principal
        if not header:
            raise AuthenticationError("missing Authorization: Bearer <key> header",
                                      code="AUTHENTICATION_REQUIRED",
                                      headers={"WWW-Authenticate": "Bearer"})
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("the Authorization header must be 'Bearer <key>'",
                                      code="AUTHENTICATION_REQUIRED",
                                      headers={"WWW-Authenticate": "Bearer"})
        if is_root(token, self.service.settings):
            return ROOT
        try:
            return self.service.keys.authenticate(token)
        except AuthenticationError as exc:
            exc.headers.setdefault("WWW-Authenticate", "Bearer")
            raise
        except ServiceUnavailableError as exc:  # keys are read once the store is open
            raise ServiceUnavailableError(
                "the server is starting: only the root key is accepted until it is ready",
                retry_after=exc.retry_after or 1) from None

    def _try_authenticate(self, scope: Scope) -> Principal | None:
        if not self.keyed:
            return AUTH_DISABLED
        if _header(scope, b"authorization") is None:
            return None
        try:
            return self._authenticate(scope)
        except DakeraError:
            return None

    def _rate_limit(self, scope: Scope, send: Send, principal: Principal) -> Send:
        if self.limiter is None or self.limit is None:
            return send
        if principal.auth_enabled:
            who = "key:" + principal.key_id
        else:
            client = scope.get("client")
            who = "addr:" + (client[0] if client else "?")
        allowed = self.limiter.hit(self.limit, who)
        reset, remaining = self.limiter.get_window_stats(self.limit, who)
        headers = {"X-RateLimit-Limit": str(self.limit.amount),
                   "X-RateLimit-Remaining": str(max(0, remaining)),
                   "X-RateLimit-Reset": str(math.ceil(reset))}
        if not allowed:
            wait = max(1, math.ceil(reset - time.time()))
            raise RateLimitError(
                f"rate limit exceeded: {self.limit.amount} requests per minute for "
                f"{principal.key_id if principal.auth_enabled else 'this client'}; retry in "
                f"{wait}s", retry_after=wait, headers=headers)
        return _with_headers(send, headers)

    async def _preflight(self, scope: Scope, send: Send, origin: str) -> None:
        requested = _header(scope, b"access-control-request-headers") or ""
        names = [h.strip().lower() for h in requested.split(",") if h.strip()]
        refused = [n for n in names if n not in CORS_HEADERS]
        if refused:
            raise CrossOriginRefused(f"CORS preflight refused: header(s) "
                                     f"{', '.join(refused)} are not allowed")
        headers = [(b"access-control-allow-origin", origin.encode()),
                   (b"access-control-allow-methods", CORS_METHODS.encode()),
                   (b"access-control-allow-headers",
                    (", ".join(names) or "authorization, content-type").encode()),
                   (b"access-control-max-age", b"600"), (b"vary", b"Origin"),
                   (b"content-length", b"0")]
        start: Any = {"type": "http.response.start", "status": 204, "headers": headers}
        await send(start)
        end: Any = {"type": "http.response.body", "body": b""}
        await send(end)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The handler, within the timeout, with the key's usage counted.

        The timeout is a timer, not a task per request: a body still arriving when it
        fires makes the pending receive fail with 408 (rendered by the app); otherwise a
        504 is sent at once and what the handler sends later is dropped (a sync handler's
        thread cannot be stopped, so a write may still complete)."""
        principal = scope.get("state", {}).get(PRINCIPAL)
        counted = (principal.key_id if isinstance(principal, Principal)
                   and principal.auth_enabled and principal.key_id != ROOT.key_id else None)
        started = time.perf_counter()
        state = {"status": 0, "bytes": 0, "receiving": False, "answered": False}
        loop = asyncio.get_running_loop()
        limit = self.timeout
        deadline = loop.time() + limit
        answers: list[asyncio.Task[None]] = []
        upload = access_of(scope["route_handler"]).upload
        timer: asyncio.TimerHandle | None = None

        async def receive_tracked() -> ReceiveMessage:
            nonlocal timer
            if not limit:
                return await receive()
            state["receiving"] = True
            try:
                with anyio.fail_after(limit if upload else max(0.0, deadline - loop.time())):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeoutError(
                    f"no chunk of the upload arrived within {limit}s (DAKERA_REQUEST_TIMEOUT)"
                    if upload else f"the request body did not arrive within {limit}s "
                    "(DAKERA_REQUEST_TIMEOUT)") from None
            finally:
                state["receiving"] = False
            if upload and timer is None and not message.get("more_body", False):
                timer = loop.call_later(limit, give_up)  # the answer's time starts now
            return message

        async def send_tracked(message: Message) -> None:
            if state["answered"]:
                return
            if message["type"] == "http.response.start":
                state["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        def give_up() -> None:
            if state["status"] or state["receiving"]:
                return  # answering already, or the receive itself times out (408)
            state["answered"] = True
            answers.append(loop.create_task(_send_error(scope, send, QueryTimeoutError(
                f"no answer within {limit}s (DAKERA_REQUEST_TIMEOUT); a write may still "
                "complete", retry_after=1))))

        if limit and not upload:
            timer = loop.call_later(limit, give_up)
        try:
            await self.app(scope, receive_tracked, send_tracked)
        finally:
            if timer is not None:
                timer.cancel()
            for answer in answers:
                await answer
            if counted:
                status = 504 if state["answered"] else int(state["status"]) or 500
                with contextlib.suppress(DakeraError):
                    self.service.keys.record(counted, status >= 400,
                                             int(state["bytes"]),
                                             (time.perf_counter() - started) * 1000)


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            mutable = MutableScopeHeaders.from_message(message)
            for key, value in headers.items():
                mutable[key] = value
        await send(message)
    return wrapped


def _with_cors(send: Send, origin: str) -> Send:
    return _with_headers(send, {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                                "Access-Control-Expose-Headers": EXPOSED})


def _loopback_client(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


async def _send_error(scope: Scope, send: Send, error: DakeraError) -> None:
    body = msgspec.json.encode(envelope(error, request_id_of(scope)))
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if error.retry_after is not None:
        headers.append((b"retry-after", str(int(error.retry_after)).encode()))
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in error.headers.items()]
    start: Any = {"type": "http.response.start", "status": error.status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


__all__ = ["Gate", "RateLimiter", "host_allowed", "same_origin", "split_host"]
