"""Limits and hostile clients: what tests/test_bad_input.py does not cover. Every refusal is a
clean 4xx in the envelope, nothing is half-stored, and the server keeps answering others
while slow clients hold connections open."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.conftest import counts_of as counts
from tests.test_bad_input import assert_envelope

AGENT = "agent-limits"


def post_raw(server: LiveServer, path: str, body: bytes) -> httpx.Response:
    with server.http() as http:
        return http.post(path, content=body, headers={"Content-Type": "application/json"})


def test_deeply_nested_json_is_a_400(live_server: LiveServer) -> None:
    """msgspec raises RecursionError past its depth limit; that was a 500 (and a logged
    traceback) before it was recognised as a malformed body."""
    before = counts(live_server.data_dir)
    deep_object = b'{"a": ' * 5000 + b"1" + b"}" * 5000
    deep_list = b"[" * 10000 + b"]" * 10000
    for path, body in [
        ("/v1/memory/store",
         b'{"agent_id": "%s", "content": "x", "metadata": %s}' % (AGENT.encode(),
                                                                  deep_object)),
        ("/v1/memory/recall", b'{"agent_id": "a", "query": "x", "tags": %s}' % deep_list),
        ("/v1/memories/store/batch", b'{"agent_id": "a", "memories": %s}' % deep_list),
        ("/v1/memory/forget", deep_object),
    ]:
        error = assert_envelope(post_raw(live_server, path, body), 400, "INVALID_REQUEST")
        assert "nested" in error["error"]
    assert counts(live_server.data_dir) == before
    assert "Traceback" not in live_server.log()


def test_moderately_nested_metadata_is_kept(live_server: LiveServer) -> None:
    nested: Any = "leaf"
    for _ in range(50):
        nested = {"k": nested}
    with live_server.http() as http:
        r = http.post("/v1/memory/store", json={"agent_id": AGENT, "content": "deep but fine",
                                               "metadata": {"n": nested}})
        assert r.status_code == 200, r.text
        mid = r.json()["memory"]["id"]
        got = http.get(f"/v1/memory/get/{mid}", params={"agent_id": AGENT}).json()
    assert got["metadata"]["n"] == nested


def test_batch_over_1000_items_is_refused_whole(live_server: LiveServer) -> None:
    before = counts(live_server.data_dir)
    with live_server.http() as http:
        items = [{"content": f"item {i}"} for i in range(1001)]
        error = assert_envelope(http.post("/v1/memories/store/batch",
                                          json={"agent_id": AGENT, "memories": items}),
                                400, "INVALID_REQUEST")
        assert "1000" in error["error"]
        assert_envelope(http.post("/v1/memories/store/batch",
                                  json={"agent_id": AGENT, "memories": []}), 400)
        # one bad item refuses the whole batch
        items = [{"content": f"item {i}"} for i in range(10)]
        items[7]["metadata"] = {f"k{i}": i for i in range(101)}  # type: ignore[assignment]
        error = assert_envelope(http.post("/v1/memories/store/batch",
                                          json={"agent_id": AGENT, "memories": items}), 400)
        assert "memories[7]" in error["error"] and "metadata" in error["error"]
    assert counts(live_server.data_dir) == before


def test_huge_numbers_and_limits(live_server: LiveServer) -> None:
    with live_server.http() as http:
        for body in (b'{"agent_id": "a", "query": "x", "top_k": 100000000000000000000000}',
                     b'{"agent_id": "a", "query": "x", "top_k": 1001}',
                     b'{"agent_id": "a", "query": "x", "top_k": -1}',
                     b'{"agent_id": "a", "query": "x", "min_importance": 1e999}',
                     b'{"agent_id": "a", "query": "x", "vector_weight": NaN}'):
            r = http.post("/v1/memory/recall", content=body,
                          headers={"Content-Type": "application/json"})
            assert_envelope(r, 400, "INVALID_REQUEST")
        r = http.post("/v1/memories/recall/batch",
                      json={"agent_id": "a", "limit": 10**12})
        assert_envelope(r, 400, "INVALID_REQUEST")
        r = http.post("/v1/memory/store", json={"agent_id": AGENT, "content": "x",
                                               "ttl_seconds": 10**30})
        assert_envelope(r, 400, "INVALID_REQUEST")


def test_oversized_update_and_query(live_server: LiveServer) -> None:
    with live_server.http() as http:
        mid = http.post("/v1/memory/store", json={"agent_id": AGENT, "content": "small"}
                        ).json()["memory"]["id"]
        error = assert_envelope(http.put(f"/v1/memory/update/{mid}", params={"agent_id": AGENT},
                                         json={"content": "x" * 100_001}), 400)
        assert "content" in error["error"]
        error = assert_envelope(http.post("/v1/memory/recall", json={
            "agent_id": AGENT, "query": "q" * 100_001}), 400)
        assert "query" in error["error"]
        assert http.get(f"/v1/memory/get/{mid}", params={"agent_id": AGENT}
                        ).json()["content"] == "small"


def test_invalid_utf8_everywhere(live_server: LiveServer) -> None:
    with live_server.http() as http:
        for path in ("/v1/memory/recall", "/v1/memory/search", "/v1/memories/store/batch",
                     "/v1/memory/forget", "/v1/memories/recall/batch"):
            r = http.post(path, content=b'{"agent_id": "a\xff", "query": "\xc3\x28"}',
                          headers={"Content-Type": "application/json"})
            assert_envelope(r, 400, "INVALID_REQUEST")
        r = http.put("/v1/memory/update/x", params={"agent_id": AGENT},
                     content=b'{"content": "\xed\xa0\x80"}',
                     headers={"Content-Type": "application/json"})
        assert_envelope(r, 400, "INVALID_REQUEST")


class SlowClient(threading.Thread):
    """Sends a request a byte at a time, or stops half-way through its body."""

    def __init__(self, port: int, mode: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.mode, self.stop = port, mode, stop

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
                body = b'{"agent_id": "slow", "query": "' + b"x" * 1000 + b'"}'
                head = (b"POST /v1/memory/recall HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body))
                if self.mode == "headers":
                    for byte in head:
                        if self.stop.wait(0.2):
                            return
                        sock.sendall(bytes([byte]))
                else:  # the headers, half the body, then silence
                    sock.sendall(head + body[:len(body) // 2])
                    self.stop.wait(60)
        except OSError:
            pass  # the server may close slow connections: that is fine


def test_slow_clients_do_not_stop_the_server(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data").start()
    stop = threading.Event()
    slow = [SlowClient(server.port, mode, stop) for mode in ("headers", "body") * 100]
    try:
        for s in slow:
            s.start()
        time.sleep(1)  # let them all connect and stall
        with server.http() as http:
            for i in range(20):
                r = http.post("/v1/memory/store",
                              json={"agent_id": "fast", "content": f"still answering {i}"})
                assert r.status_code == 200, r.text
                r = http.post("/v1/memory/recall", json={"agent_id": "fast",
                                                         "query": "still answering"})
                assert r.status_code == 200
            assert http.get("/health/ready").status_code == 200
    finally:
        stop.set()
        for s in slow:
            s.join(10)
        assert server.stop() == 0
    assert "Traceback" not in server.log()
