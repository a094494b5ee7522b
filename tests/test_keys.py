"""API keys, scopes and namespace grants through the real `dakera` SDK against a live server
(source tree and frozen binary), the key-less server's Host/Origin/Content-Type rules, the
rate limit, the request timeout and the `dakera keys` CLI. Expiry after a rotation's grace
period runs on the injectable clock, in a real HTTP server in this process."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dakera import DakeraClient, MemoryPolicy
from dakera.exceptions import (
    AuthenticationError,
    AuthorizationError,
    DakeraError,
    NotFoundError,
    RateLimitError,
    ValidationError,
)

from tests.conftest import API_KEY, Clock, LiveServer, free_port, make_settings

# live-server tests: the source tree and the binary; SQLite and PostgreSQL (for those on
# the module's shared server)
pytestmark = [pytest.mark.both_targets, pytest.mark.both_backends]


def client(server: LiveServer, key: str | None) -> DakeraClient:
    return DakeraClient(base_url=server.url, api_key=key, max_retries=1)


def code_of(exc: DakeraError) -> str:
    return exc.code.value if exc.code is not None else ""


# -- keys, scopes and grants -----------------------------------------------------------------

def test_read_key_for_one_agent(live_server: LiveServer) -> None:
    root = live_server.client()
    root.store_memory("kr-alice", "Alice keeps bees on the roof")
    root.store_memory("kr-bob", "Bob collects stamps from Peru")
    made = root.create_key("alice-reader", scope="read", namespaces=["_dakera_agent_kr-alice"])
    assert made["key"].startswith("dk_") and made["key_id"].startswith("dk_key_")
    assert made["scope"] == "read" and made["namespaces"] == ["_dakera_agent_kr-alice"]
    reader = client(live_server, made["key"])

    hits = reader.recall("kr-alice", "who keeps bees?").memories
    assert hits and "bees" in hits[0].content
    with pytest.raises(AuthorizationError) as stored:
        reader.store_memory("kr-alice", "a write from a read key")
    assert code_of(stored.value) == "INSUFFICIENT_SCOPE"
    with pytest.raises(AuthorizationError) as other:
        reader.recall("kr-bob", "stamps")
    assert code_of(other.value) == "NAMESPACE_ACCESS_DENIED"
    with pytest.raises(AuthorizationError):
        reader.agent_memories("kr-bob")
    with pytest.raises(AuthorizationError):
        reader.get_memory("kr-bob", "anything")

    who = reader.whoami()
    assert (who.key_id, who.name, who.scope, who.namespaces, who.unrestricted,
            who.auth_enabled) == (made["key_id"], "alice-reader", "read",
                                  ["_dakera_agent_kr-alice"], False, True)
    assert [a["agent_id"] for a in reader.list_agents()] == ["kr-alice"]
    with pytest.raises(AuthorizationError):
        reader.list_keys()
    # the root key sees the key, never its secret
    listed = root.list_keys()
    assert made["key_id"] in [k["key_id"] for k in listed["keys"]]
    assert made["key"] not in json.dumps(listed)
    assert root.get_key(made["key_id"])["name"] == "alice-reader"
    assert root.whoami().scope == "super_admin"
    # re-granted: it now reaches bob only, at once
    info = root.update_key(made["key_id"], name="bob-reader",
                           namespaces=["_dakera_agent_kr-bob"])
    assert (info.name, info.namespaces) == ("bob-reader", ["_dakera_agent_kr-bob"])
    assert reader.recall("kr-bob", "stamps").memories
    with pytest.raises(AuthorizationError):
        reader.recall("kr-alice", "bees")


def test_write_key_with_a_prefix_grant_and_sessions(live_server: LiveServer) -> None:
    root = live_server.client()
    made = root.create_key("team", scope="write", namespaces=["_dakera_agent_kw-team-*"])
    team = client(live_server, made["key"])
    team.store_memory("kw-team-a", "the team meets on Tuesdays")
    session = team.start_session("kw-team-b")
    team.touch_session(session["id"])
    root.start_session("kw-solo")
    assert {s["agent_id"] for s in team.list_sessions()["sessions"]} == {"kw-team-b"}
    with pytest.raises(AuthorizationError):
        team.list_sessions(agent_id="kw-solo")
    with pytest.raises(AuthorizationError):
        team.store_memory("kw-solo", "not mine")
    team.end_session(session["id"])
    solo = root.start_session("kw-solo")
    with pytest.raises(AuthorizationError):
        team.end_session(solo["id"])
    with pytest.raises(AuthorizationError):  # admin routes need more than write
        team.set_memory_policy("_dakera_agent_kw-team-a", MemoryPolicy())


def test_namespace_admin_keys(live_server: LiveServer) -> None:
    root = live_server.client()
    admin = client(live_server, root.create_key(
        "ns-admin", scope="admin", namespaces=["_dakera_agent_kn-*"])["key"])
    made = admin.create_namespace_key("_dakera_agent_kn-x", "x-writer", scope="write")
    assert made.namespaces == ["_dakera_agent_kn-x"] and made.scope == "write"
    client(live_server, made.key).store_memory("kn-x", "written by a namespace key")
    listed = admin.list_namespace_keys("_dakera_agent_kn-x")
    assert made.key_id in [k.key_id for k in listed.keys]  # (with the admin's own kn-* key)
    assert all(k.namespaces and all(g.startswith("_dakera_agent_kn-") for g in k.namespaces)
               for k in listed.keys)
    renamed = admin.update_namespace_key("_dakera_agent_kn-x", made.key_id, name="x2")
    assert renamed.name == "x2"
    usage = admin.get_namespace_key_usage("_dakera_agent_kn-x", made.key_id)
    assert usage.total_requests >= 1
    with pytest.raises(AuthorizationError):  # outside the admin's own grants
        admin.create_namespace_key("_dakera_agent_other", "nope")
    with pytest.raises(ValidationError):  # namespace keys are read, write or admin
        admin.create_namespace_key("_dakera_agent_kn-x", "up", scope="super_admin")
    admin.delete_namespace_key("_dakera_agent_kn-x", made.key_id)
    with pytest.raises(AuthenticationError):
        client(live_server, made.key).recall("kn-x", "anything")


def test_rotate_deactivate_delete(live_server: LiveServer) -> None:
    root = live_server.client()
    made = root.create_key("rotating", scope="read")
    rotated = root.rotate_key(made["key_id"], grace_secs=3600)
    assert rotated["old_key_id"] == made["key_id"] and rotated["key_id"] != made["key_id"]
    assert rotated["old_key_expires_at"] > time.time()
    assert client(live_server, made["key"]).whoami().key_id == made["key_id"]  # grace
    assert client(live_server, rotated["new_key"]).whoami().key_id == rotated["key_id"]
    again = root.rotate_key(rotated["key_id"])  # no grace: the old one stops now
    assert again["old_key_expires_at"] is None
    with pytest.raises(AuthenticationError):
        client(live_server, rotated["new_key"]).whoami()
    newest = client(live_server, again["new_key"])
    assert newest.whoami().name == "rotating"
    root.deactivate_key(again["key_id"])
    with pytest.raises(AuthenticationError):
        newest.whoami()
    deleted = root.create_key("deleted", scope="write")
    assert client(live_server, deleted["key"]).whoami().scope == "write"
    root.delete_key(deleted["key_id"])
    with pytest.raises(AuthenticationError) as gone:
        client(live_server, deleted["key"]).whoami()
    assert code_of(gone.value) == "INVALID_API_KEY"
    with pytest.raises(NotFoundError) as missing:
        root.get_key(deleted["key_id"])
    assert code_of(missing.value) == "API_KEY_NOT_FOUND"
    usage = root.key_usage(made["key_id"])
    assert usage["total_requests"] >= 1


def test_refusals_are_the_envelope(live_server: LiveServer) -> None:
    with live_server.http() as http:
        r = http.post("/admin/keys", json={"name": "x", "permissions": ["read"]})
        assert r.status_code == 422 and r.json()["code"] == "UNPROCESSABLE_CONTENT"
        r = http.post("/admin/keys", json={"name": "x", "namespaces": ["bad*name"]})
        assert r.status_code == 400 and "namespaces" in r.json()["error"]
        r = http.post("/admin/keys/dk_key_nope/rotate", json={"grace_secs": 604_801})
        assert r.status_code == 400
        assert http.get("/v1/admin/keys").status_code == 404  # only at /admin/keys
    r = httpx.get(live_server.url + "/v1/auth/whoami")
    assert r.status_code == 401 and r.json()["code"] == "AUTHENTICATION_REQUIRED"
    r = httpx.get(live_server.url + "/v1/agents", headers={"Authorization": "Bearer dk_bad"})
    assert r.status_code == 401 and r.json()["code"] == "INVALID_API_KEY"
    caps = live_server.client().capabilities()
    assert caps.auth.prefix_patterns and caps.auth.key_update and caps.auth.sessions_by_agent
    assert caps.auth.rotation_grace_max_secs == 604_800
    assert caps.raw["auth"]["scopes"] == ["read", "write", "admin", "super_admin"]


def test_metadata_size_is_capped(live_server: LiveServer) -> None:
    with live_server.http() as http:
        r = http.post("/v1/memory/store", json={"agent_id": "km-big", "content": "small",
                                                "metadata": {"blob": "x" * 200_000}})
        assert r.status_code == 400 and "DAKERA_MAX_METADATA_BYTES" in r.json()["error"]
        assert http.post("/v1/memory/store", json={
            "agent_id": "km-big", "content": "small", "metadata": {"ok": "y" * 1000}}
        ).status_code == 200


def test_cors_for_a_listed_origin_only(tmp_path: Path,
                                       dakera_command: tuple[list[str], dict[str, str]]
                                       ) -> None:
    server = LiveServer(tmp_path / "data", command=dakera_command, extra_env={
        "DAKERA_CORS_ORIGINS": "http://browser.example:5173"}).start()
    try:
        allowed = {"Origin": "http://browser.example:5173"}
        pre = httpx.options(server.url + "/v1/memory/recall", headers={
            **allowed, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "http://browser.example:5173"
        assert "authorization" in pre.headers["access-control-allow-headers"]
        with server.http() as http:
            r = http.get("/v1/agents", headers=allowed)
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == allowed["Origin"]
            r = http.get("/v1/agents", headers={"Origin": "http://evil.example"})
            assert r.status_code == 403
            assert r.json()["code"] == "CROSS_ORIGIN_REQUEST_REFUSED"
        refused = httpx.options(server.url + "/v1/memory/recall", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert refused.status_code == 403 and "error" in refused.json()
    finally:
        server.stop()


# -- without a key ----------------------------------------------------------------------------

def test_keyless_server_refuses_web_pages(tmp_path: Path,
                                          dakera_command: tuple[list[str], dict[str, str]]
                                          ) -> None:
    server = LiveServer(tmp_path / "data", api_key=None, command=dakera_command).start()
    try:
        body = json.dumps({"agent_id": "kl-victim", "content": "planted by a web page"})
        # the cross-site form POST of a web page the user visits
        r = httpx.post(server.url + "/v1/memory/store", content=body, headers={
            "Content-Type": "text/plain", "Host": "evil.example",
            "Origin": "http://evil.example"})
        assert r.status_code == 421 and r.json()["code"] == "HOST_NOT_ALLOWED"
        r = httpx.post(server.url + "/v1/memory/store", content=body, headers={
            "Content-Type": "text/plain", "Origin": "http://evil.example"})
        assert r.status_code == 403 and r.json()["code"] == "CROSS_ORIGIN_REQUEST_REFUSED"
        r = httpx.post(server.url + "/v1/memory/store", content=body,
                       headers={"Content-Type": "text/plain"})
        assert r.status_code == 415 and r.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
        r = httpx.post(server.url + "/v1/memory/store", content=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415
        r = httpx.get(server.url + "/v1/agents", headers={"Host": "rebound.example:7700"})
        assert r.status_code == 421  # DNS rebinding reads nothing either
        assert httpx.get(server.url + "/health").status_code == 200  # probes stay open

        sdk = client(server, None)
        assert sdk.list_agents() == []  # nothing was stored
        sdk.store_memory("kl-agent", "stored by the SDK on loopback")
        assert sdk.recall("kl-agent", "SDK").memories
        assert sdk.whoami().auth_enabled is False
        r = httpx.get(server.url + "/v1/agents", headers={"Host": f"localhost:{server.port}"})
        assert r.status_code == 200
        assert _mcp_store_and_recall(server.url) == "stored over MCP on loopback"
    finally:
        server.stop()


def _mcp_store_and_recall(url: str) -> str:
    """An MCP client over streamable HTTP on loopback: store, then recall."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def scenario() -> str:
        async with httpx2.AsyncClient(timeout=60) as http, Client(
                streamable_http_client(url + "/mcp", http_client=http), mode="legacy") as mcp:
            stored = await mcp.call_tool("dakera_store", {"agent_id": "kl-mcp",
                                                          "content": "stored over MCP on "
                                                                     "loopback"})
            assert not stored.is_error, stored.content
            found = await mcp.call_tool("dakera_recall", {"agent_id": "kl-mcp",
                                                          "query": "MCP loopback"})
            assert not found.is_error
            data = json.loads(found.content[0].text)  # type: ignore[union-attr]
            return str(data["memories"][0]["content"])

    return asyncio.run(scenario())


# -- limits -----------------------------------------------------------------------------------

def test_rate_limit_per_key(tmp_path: Path,
                            dakera_command: tuple[list[str], dict[str, str]]) -> None:
    server = LiveServer(tmp_path / "data", command=dakera_command,
                        extra_env={"DAKERA_RATE_LIMIT_PER_MINUTE": "3"}).start()
    try:
        with server.http() as http:
            seen = [http.get("/v1/agents") for _ in range(3)]
            assert [r.status_code for r in seen] == [200, 200, 200]
            assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["2", "1", "0"]
            assert seen[0].headers["x-ratelimit-limit"] == "3"
            assert int(seen[0].headers["x-ratelimit-reset"]) > time.time() - 1
            over = http.get("/v1/agents")
            assert over.status_code == 429 and over.json()["code"] == "RATE_LIMIT_EXCEEDED"
            assert int(over.headers["retry-after"]) >= 1
            assert httpx.get(server.url + "/health/ready").status_code == 200  # probes: free
            # each key has its own budget
            key = server.client().create_key
        with pytest.raises(RateLimitError):
            key("other", scope="read")
    finally:
        server.stop()


def test_request_timeout_cuts_a_slow_body(tmp_path: Path,
                                          dakera_command: tuple[list[str], dict[str, str]]
                                          ) -> None:
    server = LiveServer(tmp_path / "data", command=dakera_command,
                        extra_env={"DAKERA_REQUEST_TIMEOUT": "1"}).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /v1/memory/store HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                         b'{"agent_id": "kt-slow", ')  # ... and the rest never comes
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"REQUEST_TIMEOUT" in answer
        assert server.client().list_agents() == []
    finally:
        server.stop()


# -- the CLI ----------------------------------------------------------------------------------

def test_keys_cli(live_server: LiveServer,
                  dakera_command: tuple[list[str], dict[str, str]]) -> None:
    command, target_env = dakera_command
    env = {**{k: v for k, v in __import__("os").environ.items()
              if not k.startswith("DAKERA_")}, **target_env,
           "DAKERA_API_KEY": API_KEY}

    def run(*args: str, key: str | None = API_KEY) -> subprocess.CompletedProcess[str]:
        e = dict(env)
        if key is None:
            e.pop("DAKERA_API_KEY")
        return subprocess.run([*command, "keys", "--url", live_server.url, *args], env=e,
                              capture_output=True, text=True, timeout=120)

    made = run("create", "cli-bot", "--scope", "write", "--agent", "cli-bot")
    assert made.returncode == 0, made.stderr
    raw = made.stdout.strip()
    assert raw.startswith("dk_") and "\n" not in raw and "Save the key" in made.stderr
    assert client(live_server, raw).whoami().namespaces == ["_dakera_agent_cli-bot"]
    listed = run("list")
    assert listed.returncode == 0 and "cli-bot" in listed.stdout and raw not in listed.stdout
    key_id = next(line.split()[0] for line in listed.stdout.splitlines()
                  if "cli-bot" in line)
    rotated = run("rotate", key_id, "--grace-secs", "60")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert client(live_server, new).whoami().name == "cli-bot"
    assert client(live_server, raw).whoami().name == "cli-bot"  # grace
    new_id = client(live_server, new).whoami().key_id
    assert run("revoke", new_id).returncode == 0
    with pytest.raises(AuthenticationError):
        client(live_server, new).whoami()
    assert run("revoke", new_id, "--delete").returncode == 0
    refused = run("revoke", new_id)
    assert refused.returncode == 1 and "API_KEY_NOT_FOUND" in refused.stderr
    assert run("list", key=None).returncode == 1
    unreachable = subprocess.run([*command, "keys", "--url", f"http://127.0.0.1:{free_port()}",
                                  "list"], env=env, capture_output=True, text=True,
                                 timeout=120)
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr
    for sub in ("create", "list", "revoke", "rotate"):
        helped = run(sub, "--help")
        assert helped.returncode == 0 and "Usage:" in helped.stdout


# -- expiry after the grace period, on the injectable clock -----------------------------------

class ClockedServer:
    """The app over a Service on the test's clock, served by Granian in this process."""

    def __init__(self, data_dir: Path, clock: Clock) -> None:
        from app.api import create_app
        from app.service import Service

        self.service = Service(make_settings(data_dir, embedding_model="hash",
                                             decay_interval=0, api_key=API_KEY), clock=clock)
        self.service.start(wait=True)
        self.app = create_app(self.service, manage_lifecycle=False)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from granian.constants import Interfaces
        from granian.server.embed import Server

        asyncio.set_event_loop(self._loop)
        self._server = Server(self.app, address="127.0.0.1", port=self.port,
                              interface=Interfaces.ASGI, log_enabled=False, websockets=False)
        self._loop.run_until_complete(self._server.serve())

    def __enter__(self) -> ClockedServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health/live", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the in-process server did not start")

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._server.stop)
        self._thread.join(30)
        self.service.close()


@pytest.fixture
def clocked_server(tmp_path: Path, clock: Clock, dakera_target: str
                   ) -> Iterator[ClockedServer]:
    if dakera_target != "source":
        pytest.skip("the injectable clock lives in this process: source target only")
    with ClockedServer(tmp_path / "data", clock) as server:
        yield server


def test_rotated_key_fails_after_its_grace_period(clocked_server: ClockedServer,
                                                  clock: Clock) -> None:
    root = DakeraClient(base_url=clocked_server.url, api_key=API_KEY, max_retries=1)
    made = root.create_key("graceful", scope="read", namespaces=["_dakera_agent_g"],
                           expires_in_days=30)
    old = DakeraClient(base_url=clocked_server.url, api_key=made["key"], max_retries=1)
    rotated = root.rotate_key(made["key_id"], grace_secs=600)
    assert rotated["old_key_expires_at"] == int(clock.now) + 600
    new = DakeraClient(base_url=clocked_server.url, api_key=rotated["new_key"], max_retries=1)
    clock.now += 599
    assert old.whoami().key_id == made["key_id"]
    clock.now += 1
    with pytest.raises(AuthenticationError) as expired:
        old.whoami()
    assert code_of(expired.value) == "API_KEY_EXPIRED"
    assert new.whoami().expires_at == made["expires_at"]  # the expiry carries over
    clock.now += 30 * 86_400
    with pytest.raises(AuthenticationError):
        new.whoami()
