"""Every route of the contract answers: served by a controller, or 501 FEATURE_DISABLED
naming its feature; never 404 ROUTE_NOT_FOUND (clients degrade on 501, break on 404)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from app.api import create_app
from app.api.contract import FEATURES, registered, routes, shape
from app.service import Service
from app.service.capabilities import CONTRACT_VERSION
from tests.conftest import ROOT, MakeService

CONTRACT = ROOT.parent / "shared" / "design" / "dakera-api.md"


@pytest.fixture
def client(make_service: MakeService) -> Any:
    service: Service = make_service()
    # a local Host: the gate refuses others without a key (421)
    with TestClient(create_app(service, manage_lifecycle=False),
                    base_url="http://127.0.0.1:7700") as c:
        yield c


def concrete(path: str) -> str:
    return path.replace("{}", "x1")


def test_no_contract_route_is_404(client: Any) -> None:
    statuses: dict[str, list[str]] = {}
    served = registered(client.app)
    for r in routes():
        if r.feature == "events" and (r.method, r.path) in served:
            continue  # an endless event stream (tests/test_events.py reads them)
        body = {} if r.method in ("POST", "PUT", "PATCH", "DELETE") else None
        resp = client.request(r.method, concrete(r.path), json=body)
        payload = resp.json() if resp.headers.get("content-type", "").startswith(
            "application/json") else {}
        code = payload.get("code") if isinstance(payload, dict) else None
        assert not (resp.status_code == 404 and code in (None, "ROUTE_NOT_FOUND")), (
            f"{r.method} {r.path}: {resp.status_code} {resp.text[:200]}")
        assert resp.status_code != 405, f"{r.method} {r.path}: 405"
        assert resp.status_code < 500 or resp.status_code == 501, (
            f"{r.method} {r.path}: {resp.status_code} {resp.text[:200]}")
        if resp.status_code == 501:
            assert code == "FEATURE_DISABLED"
            if (r.method, r.path) in served:  # a served route that refuses by itself
                continue  # (summarize, compress: no language model here)
            assert payload["resource"] == r.feature and r.feature in payload["details"]
            statuses.setdefault(r.feature, []).append(f"{r.method} {r.path}")
    # what this issue built is served, not stubbed
    assert "namespaces" not in statuses and "core" not in statuses
    assert "aliases" not in statuses


def test_capabilities_list_the_disabled_features(client: Any) -> None:
    caps = client.get("/v1/capabilities").json()
    disabled = set(caps["disabled_features"])
    assert {"attachments", "documents"} <= disabled
    assert not disabled & {"core", "namespaces", "policies", "feedback", "decay", "aliases",
                           "autopilot", "api-keys", "knowledge-graph"}
    assert caps["features"]["attachments"]["enabled"] is False
    assert caps["features"]["namespaces"]["enabled"] is True
    assert set(caps["features"]) == set(FEATURES)
    assert caps["server_version"] == CONTRACT_VERSION
    assert "dot_product" in caps["distance_metrics"]


def test_health_reports_the_contract_level(client: Any) -> None:
    from app import __version__

    health = client.get("/health").json()
    assert health["version"] == CONTRACT_VERSION and health["product_version"] == __version__
    status = client.get("/v1/admin/autopilot/status").json()
    assert status["enabled"] is False and status["config"]["dedup_mode"] == "off"


def test_an_unknown_route_is_still_404(client: Any) -> None:
    resp = client.get("/v1/no-such-thing")
    assert resp.status_code == 404 and resp.json()["code"] == "ROUTE_NOT_FOUND"


def test_store_reports_truncation_and_unknown_fields(client: Any) -> None:
    long = " ".join(f"word{i}" for i in range(400))  # the hash model's window is 256
    out = client.post("/v1/memory/store", json={"agent_id": "t", "content": long,
                                                "when": "yesterday"}).json()
    assert out["truncated"] is True and out["max_tokens"] == 256
    assert out["content_tokens"] == 402 and out["embedded_tokens"] == 256
    assert out["warnings"] == ["unknown field 'when' ignored"]
    short = client.post("/v1/memory/store", json={"agent_id": "t", "content": "hi"}).json()
    assert "truncated" not in short and "warnings" not in short
    batch = client.post("/v1/memories/store/batch", json={"agent_id": "t", "memories": [
        {"content": "short one"}, {"content": long, "colour": "red"}]}).json()
    assert [t["content_tokens"] for t in batch["truncated"]] == [402]
    assert batch["warnings"] == ["memories[1]: unknown field 'colour' ignored"]


@pytest.mark.skipif(not CONTRACT.exists(), reason="the contract is not beside this checkout")
def test_the_route_list_covers_the_contract_tables() -> None:
    listed = {(r.method, r.path) for r in routes()}
    text = Path(CONTRACT).read_text()
    missing = []
    for m in re.finditer(r"`((?:(?:GET|POST|PUT|PATCH|DELETE)`?/?`?)+) (/[^`?]+)", text):
        methods = re.findall(r"GET|POST|PUT|PATCH|DELETE", m.group(1))
        raw = m.group(2).strip()
        if ("…" in raw or "[" in raw or raw.startswith("/internal") or "{ode_url}" in raw
                or raw == "/"):
            continue  # prose ("GET /", optional parts) or not a client route
        if raw.startswith("/{ns}"):  # the §2.1 table's shorthand
            raw = "/v1/namespaces" + raw
        path = shape(raw)
        for method in methods:
            if (method, path) not in listed:
                missing.append(f"{method} {path}")
    assert not missing, sorted(set(missing))
