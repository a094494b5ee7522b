"""Access logs: one line per request (method, route template, status, duration, request id,
key id, never the key), JSON with DAKERA_LOG_FORMAT=json and text otherwise; the request id
comes back in a header and in error bodies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, LiveServer

pytestmark = pytest.mark.both_targets


def _lines(server: LiveServer, predicate: Any, count: int) -> list[Any]:
    """Wait for `count` log lines matching (the log is written as requests finish)."""
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in server.log().splitlines() if predicate(line)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_json_access_log(tmp_path: Path,
                         dakera_command: tuple[list[str], dict[str, str]]) -> None:
    server = LiveServer(tmp_path / "data", command=dakera_command, extra_env={
        "DAKERA_LOG_FORMAT": "json", "DAKERA_EMBEDDING_MODEL": "hash"}).start()
    try:
        with server.http() as http:
            stored = http.post("/v1/memory/store", json={"agent_id": "log", "content": "x"})
            memory_id = stored.json()["memory"]["id"]
            missing = http.get("/v1/memory/get/nope", headers={"X-Request-Id": "trace-42"})
        with server.http(api_key="dk_wrong") as http:
            refused = http.get("/v1/agents")
        assert missing.headers["x-request-id"] == "trace-42"  # a sane incoming id is kept
        assert missing.json()["details"] == "request_id: trace-42"
        assert refused.status_code == 401
        assert refused.json()["request_id"] == refused.headers["x-request-id"]

        records = [json.loads(line) for line in _lines(
            server, lambda line: '"dakera.access"' in line, 4)]
        by_id = {r["request_id"]: r for r in records}
        store = by_id[stored.headers["x-request-id"]]
        assert (store["method"], store["route"], store["status"]) == (
            "POST", "/v1/memory/store", 200)
        assert store["duration_ms"] > 0 and store["key_id"] == "root"
        assert store["level"] == "INFO" and store["logger"] == "dakera.access"
        assert "time" in store and "message" in store
        assert by_id["trace-42"]["route"] == "/v1/memory/get/{memory_id}"
        assert by_id["trace-42"]["status"] == 404
        assert by_id[refused.headers["x-request-id"]]["status"] == 401
        assert by_id[refused.headers["x-request-id"]]["key_id"] == "-"
        log = server.log()
        assert API_KEY not in log and "dk_wrong" not in log
        assert memory_id not in json.dumps(store["route"])
        # every line of the log is JSON, start-up lines too
        for line in log.splitlines():
            if line.strip():
                json.loads(line)
    finally:
        server.stop()


def test_text_access_log_and_made_up_request_ids(
        tmp_path: Path, dakera_command: tuple[list[str], dict[str, str]]) -> None:
    server = LiveServer(tmp_path / "data", command=dakera_command,
                        extra_env={"DAKERA_EMBEDDING_MODEL": "hash"}).start()
    try:
        with server.http() as http:
            r = http.get("/v1/agents", headers={"X-Request-Id": "bad id with spaces"})
        rid = r.headers["x-request-id"]
        assert rid != "bad id with spaces" and len(rid) == 32
        [line] = _lines(server, lambda line: f"request_id={rid}" in line, 1)
        assert " INFO dakera.access: GET /v1/agents 200 " in line
        assert "key_id=root" in line
    finally:
        server.stop()
