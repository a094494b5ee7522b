"""The published OpenAPI document describes what the server really answers: real responses
of the main routes validate against it (no field it does not declare), every error status
it documents is the envelope, and the response Structs serialise exactly as the shapes the
SDK has always parsed (nulls stay null, absent fields stay absent)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import jsonschema
import msgspec
import pytest

from app.api.recall import hit_out
from app.api.schemas import memory_out, session_out
from app.models import Memory, RecallHit, Session
from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def document(live_server: LiveServer) -> dict[str, Any]:
    response = httpx.get(live_server.url + "/openapi.json", timeout=30)  # open: no key
    assert response.status_code == 200
    return dict(response.json())


def _closed(components: dict[str, Any]) -> dict[str, Any]:
    """The components with every object schema closed: a response field the document does
    not declare fails validation."""
    closed = copy.deepcopy(components)
    for schema in closed.get("schemas", {}).values():
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    return closed


def check(document: dict[str, Any], method: str, path: str, response: httpx.Response
          ) -> None:
    """Validate a real response against the document's schema for its status."""
    operation = document["paths"][path][method.lower()]
    described = operation["responses"].get(str(response.status_code))
    assert described is not None, f"{method} {path}: status {response.status_code} undocumented"
    media = described["content"]["application/json"]
    schema = {**media["schema"], "components": _closed(document["components"])}
    jsonschema.Draft202012Validator(schema).validate(response.json())


def test_the_document_and_the_docs_page_are_served_openly(live_server: LiveServer,
                                                          document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert "bearer" in document["components"]["securitySchemes"]
    docs = httpx.get(live_server.url + "/docs", timeout=30)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert httpx.get(live_server.url + "/openapi", timeout=30).status_code == 401


def test_every_operation_describes_its_answers(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert ok, where
            for status in ok:
                content = op["responses"][status].get("content", {})
                for media, body in content.items():
                    if media == "application/json":
                        assert body["schema"] not in ({}, {"type": "object"}), where
            for status, described in op["responses"].items():
                if int(status) >= 400 and not path.startswith("/health"):
                    schema = described["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, where
            if not path.startswith("/health"):
                assert {"400", "401", "500", "503"} <= set(op["responses"]), where


def test_real_answers_of_the_main_routes_validate(live_server: LiveServer,
                                                  document: dict[str, Any]) -> None:
    with live_server.http() as http:
        def call(method: str, path: str, template: str | None = None,
                 **kwargs: Any) -> httpx.Response:
            response = http.request(method, path, **kwargs)
            check(document, method, template or path, response)
            return response

        session = call("POST", "/v1/sessions/start", json={"agent_id": "oa"}).json()["session"]
        sid = session["id"]
        stored = call("POST", "/v1/memory/store", json={
            "agent_id": "oa", "content": "Ana keeps bees on the roof", "tags": ["bees"],
            "session_id": sid, "metadata": {"k": 1}}).json()
        assert stored["session_state"] == "active"
        memory_id = stored["memory"]["id"]
        call("POST", "/v1/memory/store", json={"agent_id": "oa", "content": "plain"})
        call("POST", "/v1/memory/store", json={  # merged: the deduplicated fields
            "agent_id": "oa", "content": "Ana keeps bees on the roof",
            "memory_type": "semantic"})
        call("POST", "/v1/memories/store/batch", json={"agent_id": "oa", "memories": [
            {"content": "first of a batch"}, {"content": "second", "session_id": sid}]})
        recalled = call("POST", "/v1/memory/recall", json={
            "agent_id": "oa", "query": "who keeps bees", "top_k": 3}).json()
        assert recalled["memories"]
        call("POST", "/v1/memory/recall", json={
            "agent_id": "oa", "query": "bees", "neighborhood_mode": "separate",
            "include_associated": True})
        call("POST", "/v1/memory/search", json={"agent_id": "oa", "query": "bees"})
        call("POST", "/v1/memories/recall/batch", json={"agent_id": "oa"})
        call("GET", f"/v1/memory/get/{memory_id}", "/v1/memory/get/{memory_id}")
        call("PUT", f"/v1/memory/update/{memory_id}?agent_id=oa",
             "/v1/memory/update/{memory_id}", json={"importance": 0.9})
        call("GET", f"/v1/sessions/{sid}", "/v1/sessions/{session_id}")
        call("GET", "/v1/sessions?agent_id=oa", "/v1/sessions")
        call("GET", f"/v1/sessions/{sid}/memories?content_preview_chars=5",
             "/v1/sessions/{session_id}/memories")
        call("POST", f"/v1/sessions/{sid}/touch", "/v1/sessions/{session_id}/touch")
        call("POST", f"/v1/sessions/{sid}/end", "/v1/sessions/{session_id}/end")
        call("GET", "/v1/agents")
        call("POST", "/v1/agents", json={"agent_id": "oa-new"})
        call("POST", "/v1/agents", json={"agent_id": "oa-new"})  # 200: existed
        call("GET", "/v1/agents/oa/memories", "/v1/agents/{agent_id}/memories")
        call("GET", "/v1/agents/oa/stats", "/v1/agents/{agent_id}/stats")
        call("GET", "/v1/agents/oa/wake-up", "/v1/agents/{agent_id}/wake-up")
        call("POST", "/v1/memory/feedback", json={"agent_id": "oa", "memory_id": memory_id,
                                                  "signal": "upvote"})
        call("GET", "/v1/capabilities")
        call("GET", "/v1/ops/stats")
        call("GET", "/ops/diagnostics")
        call("GET", "/v1/kpis")
        call("GET", "/health")
        call("GET", "/health/ready")
        call("GET", "/health/live")
        call("GET", "/v1/admin/decay/stats")
        call("GET", "/v1/namespaces/_dakera_agent_oa/memory_policy",
             "/v1/namespaces/{namespace}/memory_policy")
        call("POST", "/v1/memory/forget", json={"agent_id": "oa", "memory_ids": [memory_id]})
        # errors: the envelope, with the request id
        missing = call("GET", "/v1/memory/get/nope", "/v1/memory/get/{memory_id}")
        assert missing.status_code == 404
        assert missing.json()["request_id"] == missing.headers["x-request-id"]
        bad = call("POST", "/v1/memory/store", json={"agent_id": "oa", "content": 5})
        assert bad.status_code == 400
    with live_server.http(api_key="dk_wrong") as http:
        refused = http.get("/v1/agents")
        check(document, "GET", "/v1/agents", refused)
        assert refused.status_code == 401


# -- the response Structs serialise as the dicts they replaced ---------------------------------


def _memory(**changes: Any) -> Memory:
    m = Memory(id="mem_1", agent_id="a", content="hello world", memory_type="episodic",
               importance=0.123456789, tags=["t"], metadata={"x": None}, session_id=None,
               created_at=1, updated_at=2, last_accessed_at=3, access_count=0,
               ttl_seconds=None, expires_at=None)
    for key, value in changes.items():
        setattr(m, key, value)
    return m


@pytest.mark.parametrize("preview", [None, 5, 50])
def test_memory_structs_encode_like_memory_to_dict(preview: int | None) -> None:
    for m in (_memory(), _memory(session_id="s", ttl_seconds=60, expires_at=99)):
        assert msgspec.json.encode(memory_out(m, preview)) == msgspec.json.encode(
            m.to_dict(preview))


def test_session_and_hit_structs_encode_like_their_dicts() -> None:
    for s in (Session(id="s", agent_id="a", started_at=1, last_activity_at=2),
              Session(id="s", agent_id="a", started_at=1, last_activity_at=2, ended_at=5,
                      ended_reason="idle", idle_timeout_secs=0, metadata={"a": 1},
                      summary="x", memory_count=3)):
        assert msgspec.json.encode(session_out(s)) == msgspec.json.encode(s.to_dict())
    for h in (RecallHit(_memory(), 0.5, 0.25, vector_score=0.7, text_score=None),
              RecallHit(_memory(), 0.5, 0.25, vector_score=None, text_score=3.2),
              RecallHit(_memory(), 0.5, 0.5, vector_score=0.5, context_of="mem_0")):
        assert msgspec.json.encode(hit_out(h)) == msgspec.json.encode(h.to_dict())
