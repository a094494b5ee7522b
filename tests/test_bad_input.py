"""Bad input gets the Dakera error envelope with the right status, and loses nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, counts_of

pytestmark = pytest.mark.both_targets  # live-server tests: the source tree and the binary

AGENT = "agent-bad-input"


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("code"), str) and body["code"]
    if code is not None:
        assert body["code"] == code, body
    assert "Traceback" not in response.text
    return body


STORE_CASES: list[tuple[str, Any, str]] = [
    ("empty content", {"agent_id": AGENT, "content": ""}, "content"),
    ("blank content", {"agent_id": AGENT, "content": "   \n"}, "content"),
    ("content over 100000 bytes", {"agent_id": AGENT, "content": "é" * 50_001}, "content"),
    ("missing content", {"agent_id": AGENT}, "content"),
    ("content not a string", {"agent_id": AGENT, "content": 42}, "content"),
    ("importance not a number", {"agent_id": AGENT, "content": "x", "importance": "high"},
     "importance"),
    ("importance out of range", {"agent_id": AGENT, "content": "x", "importance": 1.5},
     "importance"),
    ("tags not a list", {"agent_id": AGENT, "content": "x", "tags": "a,b"}, "tags"),
    ("metadata not an object", {"agent_id": AGENT, "content": "x", "metadata": [1]},
     "metadata"),
    ("metadata over 100 fields",
     {"agent_id": AGENT, "content": "x", "metadata": {f"k{i}": i for i in range(101)}},
     "metadata"),
    ("reserved metadata key", {"agent_id": AGENT, "content": "x",
                               "metadata": {"_dakera_secret": 1}}, "metadata"),
    ("reserved tag", {"agent_id": AGENT, "content": "x", "tags": ["dakera-curated"]}, "tags"),
    ("bad memory type", {"agent_id": AGENT, "content": "x", "memory_type": "dream"},
     "memory_type"),
    ("bad agent id", {"agent_id": "-no/slashes", "content": "x"}, "agent_id"),
    ("agent id too long", {"agent_id": "a" * 242, "content": "x"}, "agent_id"),
    ("ttl over 100 years", {"agent_id": AGENT, "content": "x", "ttl_seconds": 10**10},
     "ttl_seconds"),
    ("event_time out of range", {"agent_id": AGENT, "content": "x", "event_time": -5},
     "event_time"),
    ("event_time not a date", {"agent_id": AGENT, "content": "x", "event_time": "yesterday"},
     "event_time"),
    ("body is a list", [{"agent_id": AGENT, "content": "x"}], ""),
]


@pytest.mark.parametrize("case, body, field", STORE_CASES, ids=[c[0] for c in STORE_CASES])
def test_bad_store_is_refused_whole(live_server: LiveServer, case: str, body: Any,
                                    field: str) -> None:
    before = counts_of(live_server)
    with live_server.http() as http:
        error = assert_envelope(http.post("/v1/memory/store", json=body), 400, "INVALID_REQUEST")
    assert field in error["error"], error
    assert counts_of(live_server) == before


def test_malformed_json_and_invalid_utf8(live_server: LiveServer) -> None:
    before = counts_of(live_server)
    with live_server.http() as http:
        for raw in (b'{"agent_id": "a", "content": ', b"not json", b"",
                    b'{"agent_id": "a", "content": "\xff\xfe bad utf-8"}'):
            r = http.post("/v1/memory/store", content=raw,
                          headers={"Content-Type": "application/json"})
            assert_envelope(r, 400, "INVALID_REQUEST")
    assert counts_of(live_server) == before


@pytest.mark.parametrize("query", [
    '"unbalanced', "AND OR NOT", "NEAR(a b, 3)", "content: secret", "col:*", "a* OR -b",
    "^start", "(((", "🙄🔥", "!!!???", "'; DROP TABLE memories; --", "\\x00", "x" * 5000,
])
def test_any_text_is_a_valid_query(live_server: LiveServer, query: str) -> None:
    with live_server.http() as http:
        http.post("/v1/memory/store", json={"agent_id": AGENT, "content": "a plain memory"})
        for path in ("/v1/memory/recall", "/v1/memory/search"):
            r = http.post(path, json={"agent_id": AGENT, "query": query, "top_k": 5})
            assert r.status_code == 200, r.text
            assert isinstance(r.json()["memories"], list)


@pytest.mark.parametrize("body, field", [
    ({"agent_id": AGENT, "query": ""}, "query"),
    ({"agent_id": AGENT}, "query"),
    ({"agent_id": AGENT, "query": "x", "top_k": 0}, "top_k"),
    ({"agent_id": AGENT, "query": "x", "top_k": 10**9}, "top_k"),
    ({"agent_id": AGENT, "query": "x", "top_k": "five"}, "top_k"),
    ({"agent_id": AGENT, "query": "x", "since": "last tuesday"}, "since"),
    ({"agent_id": AGENT, "query": "x", "min_importance": 3}, "min_importance"),
    ({"agent_id": AGENT, "query": "x", "routing": "telepathy"}, "routing"),
    ({"agent_id": AGENT, "query": "x", "rerank_candidates": 0}, "rerank_candidates"),
    ({"agent_id": AGENT, "query": "x", "neighborhood_mode": "sideways"}, "neighborhood_mode"),
    ({"agent_id": AGENT, "query": "x", "fusion": "average"}, "fusion"),
])
def test_bad_recall(live_server: LiveServer, body: dict, field: str) -> None:
    with live_server.http() as http:
        error = assert_envelope(http.post("/v1/memory/recall", json=body), 400,
                                "INVALID_REQUEST")
    assert field in error["error"]


def test_update_and_forget_errors(live_server: LiveServer) -> None:
    with live_server.http() as http:
        mid = http.post("/v1/memory/store", json={"agent_id": AGENT, "content": "keep me"}
                        ).json()["memory"]["id"]
        before = counts_of(live_server)
        assert_envelope(http.put(f"/v1/memory/update/{mid}", json={"content": "x"}), 400)
        assert_envelope(http.put(f"/v1/memory/update/{mid}", params={"agent_id": AGENT},
                                 json={"content": ""}), 400)
        assert_envelope(http.put("/v1/memory/update/mem_missing", params={"agent_id": AGENT},
                                 json={"content": "x"}), 404, "VECTOR_NOT_FOUND")
        assert_envelope(http.post("/v1/memory/forget", json={"agent_id": AGENT}), 400)
        assert_envelope(http.post("/v1/memory/forget",
                                  json={"agent_id": AGENT, "memory_ids": "all"}), 400)
        assert counts_of(live_server) == before
        assert http.get(f"/v1/memory/get/{mid}", params={"agent_id": AGENT}
                        ).json()["content"] == "keep me"


def test_routing_and_auth_errors(live_server: LiveServer) -> None:
    with live_server.http() as http:
        assert_envelope(http.get("/v1/no/such/route"), 404, "ROUTE_NOT_FOUND")
        assert_envelope(http.delete("/v1/memory/store"), 405, "METHOD_NOT_ALLOWED")
        assert_envelope(http.get("/v1/memory/get/nope"), 404, "VECTOR_NOT_FOUND")
    with live_server.http(api_key="dk_wrong") as http:
        assert_envelope(http.post("/v1/memory/recall", json={"agent_id": "a", "query": "x"}),
                        401, "INVALID_API_KEY")
    with httpx.Client(base_url=live_server.url) as http:
        assert_envelope(http.get("/v1/memory/get/x"), 401, "AUTHENTICATION_REQUIRED")
        r = http.get("/v1/memory/get/x", headers={"Authorization": "Basic abc"})
        assert_envelope(r, 401, "AUTHENTICATION_REQUIRED")
        assert http.get("/health").status_code == 200
        assert http.get("/health/live").json()["alive"] is True


def test_body_over_the_limit(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", extra_env={"DAKERA_MAX_BODY_SIZE": "2000"}).start()
    try:
        with server.http() as http:
            body = json.dumps({"agent_id": AGENT, "content": "y" * 5000})
            r = http.post("/v1/memory/store", content=body,
                          headers={"Content-Type": "application/json"})
            assert_envelope(r, 413, "PAYLOAD_TOO_LARGE")
            assert http.get("/health").status_code == 200
    finally:
        server.stop()
