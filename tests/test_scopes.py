"""What each route needs, and the rules behind it: every registered route declares its scope
(health probes open); grants, scopes and key lifecycles on the injectable clock; the gate's
Host and Origin rules; health shows no internal error text to callers without a key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar.routes import ASGIRoute, HTTPRoute
from litestar.testing import TestClient

from app.api import create_app
from app.api.gate import host_allowed, same_origin
from app.api.scopes import access_of
from app.errors import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    KeyNotFoundError,
    NamespaceAccessDenied,
    ValidationError,
)
from app.mcp.mount import McpMount
from app.service import Service
from app.service.keys import ROOT, Principal, grant_matches
from tests.conftest import Clock, MakeService, make_settings

# "/" is the docs page's second path (the same handler as /docs)
OPEN_ROUTES = {"/health", "/health/live", "/health/ready", "/openapi.json", "/docs", "/"}


def routes(service: Service) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every route of the app the server runs (with /mcp)."""
    app = create_app(service, mounts=[McpMount(service)], manage_lifecycle=False)
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                for method in sorted(handler.http_methods - {"OPTIONS"}):
                    found.append((method, route.path, handler))
        elif isinstance(route, ASGIRoute):
            found.append(("ASGI", route.path, route.route_handler))
    return found


def test_every_route_declares_its_scope(tmp_path: Path) -> None:
    """A new route must say what it needs (app/api/scopes.py `need`); only the health
    probes and the OpenAPI document are open. This is the check a newly merged API
    section has to pass."""
    service = Service(make_settings(tmp_path, embedding_model="hash"))
    table = routes(service)
    assert len(table) > 50
    undeclared = [f"{m} {p}" for m, p, h in table if access_of(h).describes == "undeclared"]
    assert not undeclared, "routes without a declared scope (opt=need(...)): " + ", ".join(
        undeclared)
    open_routes = {p for m, p, h in table if access_of(h).scope is None}
    assert open_routes == OPEN_ROUTES
    by_route = {f"{m} {p}": access_of(h) for m, p, h in table}
    # a few that matter, spelled out
    assert by_route["POST /v1/memory/store"].scope == "write"
    assert by_route["POST /v1/memory/recall"].scope == "read"
    assert by_route["POST /v1/sessions/{session_id:str}/end"].scope == "write"
    assert by_route["POST /admin/keys"].scope == "super_admin"
    assert by_route["POST /admin/keys"].every_namespace
    assert by_route["ASGI /mcp"].scope == "write" and by_route["ASGI /mcp"].every_namespace
    assert by_route["GET /v1/agents"].listing
    # every route that names an agent, session or namespace says how to find it
    for label, access in by_route.items():
        if any(p in label for p in ("{agent_id", "{session_id", "{namespace")):
            assert access.locate is not None or access.every_namespace, label


def test_grants_exact_prefix_none_and_internal() -> None:
    assert grant_matches("_dakera_agent_bot", "_dakera_agent_bot")
    assert not grant_matches("_dakera_agent_bot", "_dakera_agent_bot2")
    assert grant_matches("_dakera_agent_team-*", "_dakera_agent_team-a")
    assert not grant_matches("_dakera_agent_team-*", "_dakera_agent_other")
    assert not grant_matches("_dakera_sessions", "_dakera_sessions")  # internal: inert
    p = Principal("k", "k", "write", ("_dakera_agent_team-*", "_dakera_sessions"))
    assert p.reaches_agent("team-a") and not p.reaches_agent("solo")
    assert p.covers("_dakera_agent_team-a*") and p.covers("_dakera_agent_team-x")
    assert not p.covers("_dakera_agent_t*") and not p.covers("*")
    assert p.inert_namespaces == ["_dakera_sessions"]
    none = Principal("k", "k", "admin", ())
    assert not none.reaches("anything") and not none.unrestricted
    star = Principal("k", "k", "read", ("*",))
    assert star.unrestricted and star.reaches("x")
    with pytest.raises(AuthorizationError) as exc:
        Principal("k", "k", "read", None).require("write")
    assert exc.value.code == "INSUFFICIENT_SCOPE"
    with pytest.raises(NamespaceAccessDenied) as denied:
        p.require_namespace("_dakera_agent_solo")
    assert denied.value.code == "NAMESPACE_ACCESS_DENIED" and denied.value.status == 403


def test_keys_expire_rotate_and_revoke_on_the_clock(make_service: MakeService,
                                                    clock: Clock) -> None:
    keys = make_service().keys
    made = keys.create(ROOT, name="bot", scope="write", namespaces=["_dakera_agent_bot"],
                       expires_in_days=1)
    raw = made["key"]
    assert raw.startswith("dk_") and len(raw) == 35 and made["key_id"].startswith("dk_key_")
    assert raw not in str(keys.all()) and "key" not in keys.get(made["key_id"])
    who = keys.authenticate(raw)
    assert (who.key_id, who.scope, who.namespaces) == (made["key_id"], "write",
                                                       ("_dakera_agent_bot",))
    clock.now += 86_400  # expires_in_days=1
    with pytest.raises(AuthenticationError) as exc:
        keys.authenticate(raw)
    assert exc.value.code == "API_KEY_EXPIRED" and exc.value.status == 401
    assert keys.get(made["key_id"])["active"] is False

    made = keys.create(ROOT, name="svc", scope="read")
    rotated = keys.rotate(made["key_id"], 3600)
    assert rotated["old_key_id"] == made["key_id"]
    assert rotated["old_key_expires_at"] == int(clock.now) + 3600
    assert keys.authenticate(made["key"]).key_id == made["key_id"]  # in its grace period
    assert keys.authenticate(rotated["new_key"]).key_id == rotated["key_id"]
    clock.now += 3599
    keys.authenticate(made["key"])
    clock.now += 1
    with pytest.raises(AuthenticationError):
        keys.authenticate(made["key"])
    assert keys.authenticate(rotated["new_key"]).name == "svc"
    with pytest.raises(ConflictError):
        keys.rotate(made["key_id"])  # the old one is spent

    again = keys.rotate(rotated["key_id"])  # no grace: the old key stops at once
    assert again["old_key_expires_at"] is None
    with pytest.raises(AuthenticationError):
        keys.authenticate(rotated["new_key"])
    keys.deactivate(again["key_id"])
    with pytest.raises(AuthenticationError):
        keys.authenticate(again["new_key"])
    keys.delete(again["key_id"])
    with pytest.raises(KeyNotFoundError):
        keys.get(again["key_id"])
    with pytest.raises(AuthenticationError) as unknown:
        keys.authenticate(again["new_key"])
    assert unknown.value.code == "INVALID_API_KEY"


def test_key_input_is_checked(make_service: MakeService) -> None:
    keys = make_service().keys
    for bad in ({"name": ""}, {"name": "x", "scope": "owner"},
                {"name": "x", "namespaces": "all"}, {"name": "x", "namespaces": ["a*b"]},
                {"name": "x", "namespaces": ["x" * 300]},
                {"name": "x", "expires_in_days": 0}):
        with pytest.raises(ValidationError):
            keys.create(ROOT, **bad)
    made = keys.create(ROOT, name="x")
    with pytest.raises(ValidationError):
        keys.rotate(made["key_id"], 604_801)
    with pytest.raises(ValidationError):
        keys.update("root", name="y")
    # a namespace admin hands on only what it has, never a higher scope
    admin = Principal("a", "a", "admin", ("team-*",))
    made = keys.create_in(admin, "team-a", name="t", scope="write")
    assert made["namespaces"] == ["team-a"]
    with pytest.raises(AuthorizationError):
        keys.create_in(Principal("w", "w", "write", ("team-*",)), "team-a", name="t",
                       scope="admin")
    with pytest.raises(NamespaceAccessDenied):
        keys.create_in(admin, "team-a", name="t", extra_namespaces=["other"])
    with pytest.raises(KeyNotFoundError):  # a key outside its grants is not its to manage
        keys.delete_in(admin, "team-a", keys.create(ROOT, name="all")["key_id"])
    assert [k["key_id"] for k in keys.list_in(admin, "team-a")["keys"]] == [made["key_id"]]


def test_usage_is_counted_and_kept(make_service: MakeService) -> None:
    service = make_service()
    made = service.keys.create(ROOT, name="u")
    service.keys.record(made["key_id"], False, 100, 2.0)
    service.keys.record(made["key_id"], True, 50, 4.0)
    usage = service.keys.usage(made["key_id"])
    assert (usage["total_requests"], usage["failed_requests"],
            usage["bytes_transferred"], usage["avg_latency_ms"]) == (2, 1, 150, 3.0)
    assert service.keys.flush_usage() == 1
    stored = service.keys.get(made["key_id"])
    assert stored["last_used_at"] is not None
    assert service.keys.usage(made["key_id"])["total_requests"] == 2


def test_host_and_origin_rules() -> None:
    for host in ("localhost:7700", "127.0.0.1", "[::1]:3000", "10.1.2.3:80",
                 "192.168.0.9", "172.16.5.5:1", "app.localhost:7700"):
        assert host_allowed(host, ()), host
    for host in ("evil.example", "8.8.8.8:7700", "localhost.evil.example", "[2606:4700::1]"):
        assert not host_allowed(host, ()), host
    assert host_allowed("Dakera.LAN:7700", ("dakera.lan",))
    assert host_allowed("anything", ("*",))
    assert same_origin("http://127.0.0.1:7700", "127.0.0.1:7700", "http")
    assert same_origin("http://localhost", "localhost:80", "http")
    assert not same_origin("http://localhost:3000", "localhost:7700", "http")
    assert not same_origin("null", "localhost:7700", "http")
    assert same_origin("https://dakera.example", "dakera.example:443", "http")  # TLS proxy
    assert not same_origin("http://127.0.0.1:7701", "127.0.0.1:7700", "http")


def test_health_hides_internal_errors_from_callers_without_a_key(tmp_path: Path) -> None:
    service = Service(make_settings(tmp_path, embedding_model="hash", api_key="root-key"))
    service._failed = RuntimeError("disk /secret/path is gone")  # as a failed start leaves it
    with TestClient(create_app(service, manage_lifecycle=False),
                    base_url="http://127.0.0.1:7700") as client:
        anonymous = client.get("/health/ready")
        assert anonymous.status_code == 503 and "/secret/path" not in anonymous.text
        wrong = client.get("/health/ready", headers={"Authorization": "Bearer nope"})
        assert "/secret/path" not in wrong.text
        keyed = client.get("/health/ready", headers={"Authorization": "Bearer root-key"})
        assert "/secret/path" in keyed.text
        assert "/secret/path" not in client.get("/health").text
        # a key other than the root key cannot be checked yet: no internal text either
        other = client.get("/v1/capabilities", headers={"Authorization": "Bearer dk_x"})
        assert other.status_code == 503 and "/secret/path" not in other.text


def test_settings_never_show_the_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_key="dk_supersecret_value")
    for shown in (repr(settings), str(settings), f"{settings}", str(dict(
            settings.__rich_repr__()))):
        assert "dk_supersecret_value" not in shown


def test_request_timeout_answers_504_for_a_slow_handler(tmp_path: Path) -> None:
    """The gate answers 504 when the handler has not started its response in time, and
    drops what the handler sends later (the body-arrival case, 408, runs live in
    tests/test_keys.py)."""
    from app.api.gate import Gate, RateLimiter
    from app.api.scopes import Access

    service = Service(make_settings(tmp_path, embedding_model="hash", request_timeout=1))
    late: list[bool] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await anyio.sleep(2)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})
        late.append(True)

    class Handler:
        opt = {"access": Access("read")}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/slow", "scheme": "http",
             "headers": [(b"host", b"127.0.0.1:7700")], "client": ("127.0.0.1", 1),
             "route_handler": Handler(), "state": {}}
    gate = Gate(slow_app, service, RateLimiter(0))  # type: ignore[arg-type]
    anyio.run(gate, scope, receive, send)
    assert late == [True]  # the handler ran to its end ...
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [504]
    body = json.loads(b"".join(m.get("body", b"") for m in sent
                               if m["type"] == "http.response.body"))
    assert body["code"] == "QUERY_TIMEOUT"  # ... but only the 504 went out
