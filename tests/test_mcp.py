"""MCP through the official `mcp` client, as hosts use it: Streamable HTTP at /mcp of a live
server (with its Bearer key), and `dakera mcp` over stdio launched as a subprocess, with the
engine in-process (a temp data dir) and against a running server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from litestar.testing import TestClient
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from app.api import create_app
from app.locking import DataDirLock
from app.mcp.mount import McpMount
from app.service import Service
from tests.conftest import (
    API_KEY,
    ROOT,
    LiveServer,
    MakeService,
    free_port,
    make_settings,
    server_command,
)

pytestmark = pytest.mark.both_targets  # the HTTP tests: the source tree and the binary

T = TypeVar("T")

CORE_TOOLS = {
    "dakera_store", "dakera_recall", "dakera_search", "dakera_forget", "dakera_batch_recall",
    "dakera_batch_forget", "dakera_session_start", "dakera_session_end",
    "dakera_fulltext_search", "dakera_hybrid_search",
}


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(scenario)


@asynccontextmanager
async def over_http(url: str, api_key: str | None = API_KEY,
                    mode: str = "legacy") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
            Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode) as client:
        yield client


@asynccontextmanager
async def over_stdio(env: dict[str, str], log: Path) -> AsyncIterator[Client]:
    """`dakera mcp` launched the way a host launches it: command, args, env."""
    command = server_command()
    params = StdioServerParameters(
        command=command[0], args=[*command[1:], "mcp"], cwd=str(log.parent),
        env={"DAKERA_MODELS_DIR": str(ROOT / "models"), **env})
    with log.open("a") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            yield client


async def call(client: Client, tool: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    """(is_error, the JSON the tool answered); text and structured content agree."""
    result = await client.call_tool(tool, arguments)
    assert len(result.content) == 1 and result.content[0].type == "text"
    data = json.loads(result.content[0].text)
    assert result.structured_content == data
    return result.is_error, data


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    failed, data = await call(client, tool, **arguments)
    assert not failed, data
    return data


async def check_tools(client: Client) -> None:
    listed = (await client.list_tools()).tools
    assert {t.name for t in listed} == CORE_TOOLS
    by_name = {t.name: t for t in listed}
    for tool in listed:
        assert tool.input_schema["type"] == "object"
        assert tool.description and len(tool.description) > 100
        assert tool.annotations is not None
    store = by_name["dakera_store"]
    assert store.input_schema["required"] == ["agent_id", "content"]
    props = store.input_schema["properties"]
    assert {"agent_id", "content", "importance", "memory_type", "tags", "session_id",
            "metadata", "ttl_seconds", "expires_at"} <= set(props)
    assert props["importance"]["type"] == "number" and props["importance"]["default"] == 0.5
    for band in ("0.9-1.0", "0.7-0.8", "0.5", "0.3-0.4", "0.1-0.2"):
        assert band in store.description
    recall = by_name["dakera_recall"].input_schema
    assert recall["required"] == ["agent_id", "query"]
    assert recall["properties"]["top_k"]["default"] == 5
    assert {"min_importance", "tags", "memory_type", "session_id", "since", "until"} <= set(
        recall["properties"])
    assert by_name["dakera_search"].input_schema["properties"]["top_k"]["default"] == 10
    hybrid = by_name["dakera_hybrid_search"].input_schema
    assert hybrid["required"] == ["agent_id", "text"]
    assert hybrid["properties"]["vector_weight"]["default"] == 0.5
    assert by_name["dakera_fulltext_search"].input_schema["required"] == ["agent_id", "query"]
    assert by_name["dakera_session_end"].input_schema["required"] == ["session_id"]
    assert by_name["dakera_recall"].annotations.read_only_hint is True
    assert by_name["dakera_batch_forget"].annotations.destructive_hint is True


async def store_then_recall(client: Client, agent: str) -> str:
    facts = ["Alice prefers dark mode in every editor",
             "The billing service deploys every Tuesday at 10:00",
             "Bob is allergic to peanuts"]
    ids = []
    for i, fact in enumerate(facts):
        stored = await ok(client, "dakera_store", agent_id=agent, content=fact,
                          importance=0.9 if i == 2 else 0.6, tags=["t"], memory_type="semantic")
        assert stored["stored"] is True and stored["memory"]["content"] == fact
        assert stored["memory"]["memory_type"] == "semantic"
        ids.append(stored["memory"]["id"])
    recalled = await ok(client, "dakera_recall", agent_id=agent,
                        query="which colour theme does Alice like?")
    assert recalled["memories"][0]["id"] == ids[0]
    assert recalled["count"] == len(recalled["memories"]) <= 5
    scores = [m["score"] for m in recalled["memories"]]
    assert scores == sorted(scores, reverse=True)
    found = await ok(client, "dakera_search", agent_id=agent, query="food allergy", top_k=1)
    assert [m["id"] for m in found["memories"]] == [ids[2]]
    return ids[0]


async def sessions(client: Client, agent: str) -> None:
    started = await ok(client, "dakera_session_start", agent_id=agent,
                       metadata={"topic": "billing"})
    sid = started["session"]["id"]
    assert started["session"]["agent_id"] == agent and started["session"]["ended_at"] is None
    stored = await ok(client, "dakera_store", agent_id=agent, session_id=sid,
                      content="Decided to move billing to the new queue")
    assert stored["session_state"] == "active"
    ended = await ok(client, "dakera_session_end", session_id=sid, summary="billing plan")
    assert ended["memory_count"] == 1 and ended["ended_reason"] == "client"
    assert ended["session"]["summary"] == "billing plan"
    again = await ok(client, "dakera_session_end", session_id=sid)
    assert again["session"]["ended_at"] == ended["session"]["ended_at"]
    in_session = await ok(client, "dakera_batch_recall", agent_id=agent, session_id=sid)
    assert [m["content"] for m in in_session["memories"]] == [stored["memory"]["content"]]


async def bad_arguments(client: Client) -> dict[str, Any]:
    """Tool errors for bad arguments; returns the one for importance 1.5."""
    failed, error = await call(client, "dakera_store", agent_id="bad", content="x",
                               importance=1.5)
    assert failed and error["code"] == "INVALID_REQUEST" and error["status"] == 400
    assert "importance" in error["error"]
    failed, typed = await call(client, "dakera_store", agent_id="bad", content="x",
                               importance="high")
    assert failed and typed["code"] == "INVALID_REQUEST" and "'importance'" in typed["error"]
    failed, missing = await call(client, "dakera_recall", agent_id="bad")
    assert failed and "'query' is a required property" in missing["error"]
    failed, extra = await call(client, "dakera_recall", agent_id="bad", query="q", tag="x")
    assert failed and "'tag' was unexpected" in extra["error"]
    failed, agent = await call(client, "dakera_recall", agent_id="no spaces", query="q")
    assert failed and "'agent_id' must match" in agent["error"]
    with pytest.raises(MCPError, match="unknown tool"):
        await client.call_tool("dakera_nope", {})
    return error


# -- Streamable HTTP at /mcp --------------------------------------------------------------------

def test_http_needs_the_bearer_key(live_server: LiveServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    missing = httpx.post(live_server.url + "/mcp", json=body, headers=headers)
    assert missing.status_code == 401
    assert missing.json()["code"] == "AUTHENTICATION_REQUIRED"
    wrong = httpx.post(live_server.url + "/mcp", json=body,
                       headers={**headers, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "INVALID_API_KEY"

    get = httpx.get(live_server.url + "/mcp", headers={
        "Accept": "text/event-stream", "Authorization": f"Bearer {API_KEY}"})
    assert get.status_code == 405 and get.json()["code"] == "METHOD_NOT_ALLOWED"

    async def scenario() -> None:
        with pytest.raises(Exception):  # noqa: B017 - the client's own error type
            async with over_http(live_server.url, api_key="nope"):
                pass

    run(scenario)


def without_request_id(envelope: dict[str, Any]) -> dict[str, Any]:
    """An error envelope without what names its request (the REST answer's request id)."""
    body = dict(envelope)
    if "request_id" in body:
        assert body.pop("details") == f"request_id: {body.pop('request_id')}"
    return body


def test_http_tools(live_server: LiveServer) -> None:
    async def scenario() -> None:
        async with over_http(live_server.url) as client:
            assert client.server_info is not None and client.server_info.name == "dakera"
            assert "agent_id" in (client.session.instructions or "")
            await check_tools(client)
            first = await store_then_recall(client, "mcp-http")
            await sessions(client, "mcp-http-s")
            error = await bad_arguments(client)
        # The same engine as the REST API, and the same error message.
        with live_server.http() as http:
            assert http.get(f"/v1/memory/get/{first}", params={"agent_id": "mcp-http"}
                            ).json()["content"] == "Alice prefers dark mode in every editor"
            rest = http.post("/v1/memory/store", json={"agent_id": "bad", "content": "x",
                                                       "importance": 1.5})
            assert rest.status_code == 400 and without_request_id(rest.json()) == error

    run(scenario)


def test_http_forget_and_search_tools(live_server: LiveServer) -> None:
    agent = "mcp-forget"

    async def scenario() -> None:
        async with over_http(live_server.url) as client:
            ids = {}
            for name, text, tags in [
                    ("a", "Order 4417-XQ-93 shipped to Lisbon", ["orders"]),
                    ("b", "Order 4417-XQ-39 was cancelled by the customer", ["orders"]),
                    ("c", "The office plant needs water on Mondays", ["home"])]:
                stored = await ok(client, "dakera_store", agent_id=agent, content=text,
                                  tags=tags)
                ids[name] = stored["memory"]["id"]
            exact = await ok(client, "dakera_fulltext_search", agent_id=agent,
                             query="4417-XQ-39")
            assert exact["memories"][0]["id"] == ids["b"]
            for weight in (0.0, 0.5, 1.0):
                hybrid = await ok(client, "dakera_hybrid_search", agent_id=agent,
                                  text="when does the plant get watered", vector_weight=weight)
                assert hybrid["memories"], weight
            meaning = await ok(client, "dakera_hybrid_search", agent_id=agent,
                               text="watering houseplants", vector_weight=1.0, top_k=1)
            assert [m["id"] for m in meaning["memories"]] == [ids["c"]]
            failed, _ = await call(client, "dakera_hybrid_search", agent_id=agent, text="x",
                                   vector_weight=2)
            assert failed

            listed = await ok(client, "dakera_batch_recall", agent_id=agent, tags=["orders"])
            assert listed["filtered"] == 2 and listed["total"] == 3
            # Empty lists are "no filter", never "everything".
            failed, error = await call(client, "dakera_forget", agent_id=agent, tags=[])
            assert failed and error["code"] == "INVALID_REQUEST"
            failed, error = await call(client, "dakera_batch_forget", agent_id=agent, tags=[])
            assert failed and "at least one filter" in error["error"]
            assert (await ok(client, "dakera_forget", agent_id=agent,
                             memory_ids=[ids["a"]]))["deleted_count"] == 1
            assert (await ok(client, "dakera_batch_forget", agent_id=agent,
                             tags=["orders"]))["deleted_count"] == 1
            left = await ok(client, "dakera_batch_recall", agent_id=agent)
            assert [m["id"] for m in left["memories"]] == [ids["c"]]

    run(scenario)


def test_http_modern_protocol(live_server: LiveServer) -> None:
    """The SDK's default negotiation (server/discover, 2026 protocol) works too."""
    async def scenario() -> None:
        async with over_http(live_server.url, mode="auto") as client:
            assert {t.name for t in (await client.list_tools()).tools} == CORE_TOOLS
            stored = await ok(client, "dakera_store", agent_id="mcp-modern", content="hello")
            assert stored["memory"]["content"] == "hello"

    run(scenario)


def test_http_without_a_key_accepts_only_loopback_hosts(tmp_path: Path) -> None:
    """No key means loopback only; /mcp then refuses foreign Host and Origin headers (DNS
    rebinding), in-process through the app's real lifespan."""
    service = Service(make_settings(tmp_path, embedding_model="hash"))
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    with TestClient(create_app(service, mounts=[McpMount(service)]),
                    base_url="http://127.0.0.1:7700") as client:
        good = client.post("/mcp", json=body, headers=headers)
        assert good.status_code == 200, good.text
        assert good.json()["result"]["serverInfo"]["name"] == "dakera"
        assert client.post("/mcp", json=body,
                           headers={**headers, "Host": "evil.example"}).status_code == 421
        assert client.post("/mcp", json=body, headers={
            **headers, "Origin": "http://evil.example"}).status_code == 403


# -- stdio: `dakera mcp` --------------------------------------------------------------------------

def test_stdio_engine_in_process(tmp_path: Path, make_service: MakeService) -> None:
    data = tmp_path / "data"
    env = {"DAKERA_DATA_DIR": str(data), "DAKERA_PORT": str(free_port())}

    async def scenario() -> None:
        async with over_stdio(env, tmp_path / "mcp.log") as client:
            assert client.server_info is not None and client.server_info.name == "dakera"
            await check_tools(client)
            await store_then_recall(client, "stdio")
            await sessions(client, "stdio-s")
            await bad_arguments(client)

    run(scenario)
    log = (tmp_path / "mcp.log").read_text()
    assert "engine in this process" in log and "closed" in log, log
    # The host closed stdin: the engine closed cleanly and released the data dir.
    svc = make_service(data_dir=data, embedding_model="all-minilm-l6-v2")
    assert svc.memories.batch_recall("stdio")["total"] == 3


def test_stdio_sigterm_closes_the_engine(tmp_path: Path) -> None:
    """SIGTERM while the host still holds stdin open: writes finished, data dir released."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env.update(DAKERA_DATA_DIR=str(data), DAKERA_MODELS_DIR=str(ROOT / "models"))
    log = tmp_path / "mcp.log"
    with log.open("wb") as errlog:
        proc = subprocess.Popen([*server_command(), "mcp"], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errlog, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 60
            while "loaded in" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "closed" in log.read_text()
    assert proc.stdout is not None and proc.stdout.read() == b""
    lock = DataDirLock(data)
    lock.acquire()  # free again
    lock.release()


def test_stdio_refuses_a_data_dir_in_use(hash_service: Service) -> None:
    """The data dir is held (here by this test process) and nothing answers on the port:
    `dakera mcp` exits at once and says how to reach the owner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env.update(DAKERA_DATA_DIR=hash_service.settings.data_dir, DAKERA_PORT=str(free_port()))
    proc = subprocess.run([*server_command(), "mcp"], env=env, input="", capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "is in use by pid" in proc.stderr and "DAKERA_URL" in proc.stderr


def test_stdio_remote_mode(live_server: LiveServer, tmp_path: Path) -> None:
    """DAKERA_URL: the tools talk to the running server; the local data dir is not opened."""
    untouched = tmp_path / "not-opened"
    env = {"DAKERA_URL": live_server.url, "DAKERA_API_KEY": API_KEY,
           "DAKERA_DATA_DIR": str(untouched)}

    async def scenario() -> dict[str, Any]:
        async with over_stdio(env, tmp_path / "mcp.log") as client:
            await check_tools(client)
            await store_then_recall(client, "stdio-remote")
            await sessions(client, "stdio-remote-s")
            return await bad_arguments(client)

    error = run(scenario)
    assert not untouched.exists()
    with live_server.http() as http:
        listed = http.post("/v1/memories/recall/batch", json={"agent_id": "stdio-remote"})
        assert listed.json()["total"] == 3
        rest = http.post("/v1/memory/store", json={"agent_id": "bad", "content": "x",
                                                   "importance": 1.5})
        # (both went through the REST API: each names its own request)
        assert without_request_id(rest.json()) == without_request_id(error)


def test_stdio_uses_the_server_holding_the_data_dir(live_server: LiveServer,
                                                    tmp_path: Path) -> None:
    """No URL, but the data dir belongs to a running server on DAKERA_PORT: use it."""
    env = {"DAKERA_DATA_DIR": str(live_server.data_dir), "DAKERA_PORT": str(live_server.port),
           "DAKERA_API_KEY": API_KEY}

    async def scenario() -> None:
        async with over_stdio(env, tmp_path / "mcp.log") as client:
            await ok(client, "dakera_store", agent_id="stdio-fallback", content="via the server")

    run(scenario)
    assert "a dakera server answers at" in (tmp_path / "mcp.log").read_text()
    with live_server.http() as http:
        listed = http.post("/v1/memories/recall/batch", json={"agent_id": "stdio-fallback"})
        assert [m["content"] for m in listed.json()["memories"]] == ["via the server"]


def test_stdio_remote_with_a_wrong_key(live_server: LiveServer, tmp_path: Path) -> None:
    env = {"DAKERA_API_URL": live_server.url, "DAKERA_API_KEY": "wrong"}

    async def scenario() -> None:
        async with over_stdio(env, tmp_path / "mcp.log") as client:
            failed, error = await call(client, "dakera_recall", agent_id="x", query="q")
            assert failed and error["code"] == "INVALID_API_KEY" and error["status"] == 401

    run(scenario)
    assert "invalid API key" in (tmp_path / "mcp.log").read_text()
