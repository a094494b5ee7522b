#!/usr/bin/env python3
"""Compare the JSON shapes two servers answer to the same requests: keys, their order, and
null or not, for every main route (values such as ids and times are ignored). For checking
that a change to the responses (e.g. to msgspec Structs) keeps what clients parse:

    python scripts/compare_shapes.py http://127.0.0.1:7821 http://127.0.0.1:7822

Run both servers without a key on empty data dirs with DAKERA_EMBEDDING_MODEL=hash and
DAKERA_DEDUP_MEMORY_TYPES=semantic (the script stores duplicates to see merged answers).
Exits 1 when an answer differs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx

Answer = tuple[str, str, int, Any, list[str] | None]


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:3]]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def run(url: str) -> list[Answer]:
    out: list[Answer] = []
    client = httpx.Client(base_url=url, timeout=60)

    def call(method: str, path: str, **kwargs: Any) -> Any:
        r = client.request(method, path, **kwargs)
        try:
            body = r.json()
        except ValueError:
            body = r.text[:50]
        keys = list(body) if isinstance(body, dict) else None
        out.append((method, path, r.status_code, shape(body), keys))
        return body

    sid = call("POST", "/v1/sessions/start", json={"agent_id": "cmp",
                                                   "metadata": {"a": 1}})["session"]["id"]
    mid = call("POST", "/v1/memory/store", json={
        "agent_id": "cmp", "content": "Ana keeps bees", "tags": ["b"],
        "session_id": sid})["memory"]["id"]
    call("POST", "/v1/memory/store", json={"agent_id": "cmp", "content": "plain one"})
    for _ in range(2):
        call("POST", "/v1/memory/store", json={"agent_id": "cmp", "content": "Ana keeps bees",
                                               "memory_type": "semantic"})
    call("POST", "/v1/memories/store/batch", json={"agent_id": "cmp", "memories": [
        {"content": "x one"}, {"content": "y two", "session_id": sid},
        {"content": "plain one", "memory_type": "semantic"},
        {"content": "plain one", "memory_type": "semantic"}]})
    call("POST", "/v1/memory/recall", json={"agent_id": "cmp", "query": "bees", "top_k": 3})
    call("POST", "/v1/memory/recall", json={"agent_id": "cmp", "query": "bees",
                                            "neighborhood_mode": "separate",
                                            "include_associated": True})
    call("POST", "/v1/memory/recall", json={"agent_id": "cmp", "query": "bees",
                                            "neighborhood_mode": "inline"})
    call("POST", "/v1/memory/search", json={"agent_id": "cmp", "query": "bees"})
    call("POST", "/v1/memories/recall/batch", json={"agent_id": "cmp",
                                                    "filter": {"tags": ["b"]}})
    call("GET", f"/v1/memory/get/{mid}")
    call("PUT", f"/v1/memory/update/{mid}?agent_id=cmp", json={"importance": 0.9})
    call("GET", "/v1/memory/deduplicated?agent_id=cmp")
    call("GET", f"/v1/sessions/{sid}")
    call("GET", "/v1/sessions?agent_id=cmp")
    call("GET", f"/v1/sessions/{sid}/memories?content_preview_chars=3")
    call("GET", f"/v1/sessions/{sid}/memories")
    call("POST", f"/v1/sessions/{sid}/touch")
    call("POST", f"/v1/sessions/{sid}/end", json={"summary": "s"})
    call("POST", "/v1/sessions/sess_unknown/end")
    call("GET", "/v1/agents")
    for _ in range(2):
        call("POST", "/v1/agents", json={"agent_id": "cmp2"})
    call("GET", "/v1/agents/cmp/memories?content_preview_chars=4")
    call("GET", "/v1/agents/cmp/stats")
    call("GET", "/v1/agents/cmp/wake-up")
    call("POST", "/v1/memory/feedback", json={"agent_id": "cmp", "memory_id": mid,
                                              "signal": "upvote"})
    call("POST", f"/v1/memories/{mid}/feedback", json={"agent_id": "cmp", "signal": "flag"})
    call("GET", f"/v1/memories/{mid}/feedback?agent_id=cmp")
    call("POST", "/v1/memory/importance", json={"agent_id": "cmp", "memory_id": mid,
                                                "importance": 0.4})
    call("PATCH", f"/v1/memories/{mid}/importance", json={"agent_id": "cmp",
                                                          "importance": 0.3})
    call("GET", "/v1/feedback/health?agent_id=cmp")
    call("GET", "/v1/agents/cmp/feedback/summary")
    for path in ("/v1/capabilities", "/health", "/health/ready", "/health/live",
                 "/v1/admin/decay/config", "/v1/admin/decay/stats",
                 "/v1/namespaces/_dakera_agent_cmp/memory_policy"):
        call("GET", path)
    call("PUT", "/v1/admin/decay/config", json={"half_life_hours": 100})
    call("POST", "/v1/admin/decay/run")
    call("PUT", "/v1/namespaces/_dakera_agent_cmp/memory_policy",
         json={"dedup_threshold": 0.9})
    call("POST", "/v1/memory/forget", json={"agent_id": "cmp", "memory_ids": [mid]})
    call("DELETE", "/v1/memories/forget/batch", json={"agent_id": "cmp",
                                                      "filter": {"tags": []}})
    call("GET", "/v1/memory/get/nope")
    call("POST", "/v1/memory/store", json={"agent_id": "cmp", "content": 5})
    client.close()
    return out


def main() -> int:
    first, second = run(sys.argv[1]), run(sys.argv[2])
    differ = 0
    for a, b in zip(first, second, strict=True):
        if a[2:] == b[2:]:
            continue
        differ += 1
        print(f"DIFF {a[0]} {a[1]}: {a[2]} / {b[2]}")
        print(f"  first:  {json.dumps(a[3])[:600]}")
        print(f"  second: {json.dumps(b[3])[:600]}")
        if a[4] != b[4]:
            print(f"  key order: {a[4]} / {b[4]}")
    print(f"{len(first)} requests, {differ} answers differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
