"""Metrics and ops: /metrics moves with a store and a recall and parses with the Prometheus
client's own parser; labels stay bounded (route templates, top agents); stats, diagnostics
and KPIs read through the SDK; the metrics switch and the loopback opening."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.service import Service
from tests.conftest import LiveServer, MakeService

pytestmark = pytest.mark.both_targets


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with server.http() as http:
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def test_a_store_and_a_recall_move_the_metrics(live_server: LiveServer) -> None:
    client = live_server.client()
    before = scrape(live_server)
    memory_id = client.store_memory("metrics-agent", "the spare key is under the blue pot")["id"]
    client.recall("metrics-agent", "where is the spare key")
    with live_server.http() as http:
        http.get(f"/v1/memory/get/{memory_id}")
        http.get("/v1/no/such/route")
    after = scrape(live_server)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    store = {"method": "POST", "route": "/v1/memory/store"}
    recall = {"method": "POST", "route": "/v1/memory/recall"}
    assert moved("dakera_http_requests_total", status="200", **store) == 1
    assert moved("dakera_http_requests_total", status="200", **recall) == 1
    assert moved("dakera_http_request_duration_seconds_count", **store) == 1
    assert moved("dakera_http_request_duration_seconds_count", **recall) == 1
    # raw paths never become labels: the route template does
    assert moved("dakera_http_requests_total", method="GET", status="200",
                 route="/v1/memory/get/{memory_id}") == 1
    assert moved("dakera_http_requests_total", method="GET", status="404",
                 route="unmatched") == 1
    assert not any(memory_id in str(labels) for _, labels in after)
    for stage in ("embed", "vector", "bm25", "fusion", "load", "neighbourhood"):
        assert moved("dakera_recall_stage_duration_seconds_count", stage=stage) == 1, stage
    assert moved("dakera_recalls_total", kind="recall") == 1
    assert moved("dakera_memories_stored_total", kind="single") == 1
    assert moved("dakera_writer_jobs_total") >= 1
    assert moved("dakera_writer_commit_duration_seconds_count") >= 1
    assert sample(after, "dakera_memories") >= 1
    assert sample(after, "dakera_top_agent_memories", agent_id="metrics-agent") >= 1
    assert sample(after, "dakera_index_vectors") >= 1
    assert sample(after, "dakera_ready") == 1
    assert sample(after, "dakera_uptime_seconds") >= 0
    assert sample(after, "process_resident_memory_bytes") > 0
    assert sample(after, "process_open_fds") > 0
    assert any(name == "dakera_build_info" for name, _ in after)
    # the same text on the SDK's route
    assert "dakera_http_requests_total" in client.ops_metrics()


def test_stats_diagnostics_and_kpis_through_the_sdk(live_server: LiveServer) -> None:
    client = live_server.client()
    client.store_memory("ops-agent", "one memory")
    client.recall("ops-agent", "memory")
    stats = client.ops_stats()
    assert stats["state"] == "healthy" and stats["total_vectors"] >= 1
    assert stats["namespace_count"] >= 1 and stats["uptime_seconds"] >= 0
    diagnostics = client.ops_diagnostics()
    assert diagnostics["status"] == "healthy"
    assert diagnostics["storage"]["backend"] == "sqlite"
    assert diagnostics["model"]["dimension"] == 384
    kpis = client.get_kpis()  # the SDK's KpiSnapshot: all 8 fields
    assert kpis.recall_latency_p50_ms > 0 and kpis.store_latency_p50_ms > 0
    assert kpis.recall_latency_p99_ms >= kpis.recall_latency_p50_ms
    assert kpis.active_agents_count >= 1
    assert 0 < kpis.memory_retention_7d_pct <= 100


def test_per_agent_series_only_for_the_top_agents(make_service: MakeService) -> None:
    svc: Service = make_service(metrics_top_agents=2)
    for agent, n in (("a", 3), ("b", 2), ("c", 1)):
        for i in range(n):
            svc.memories.store(agent, f"{agent} memory number {i}")
    samples = parse(svc.metrics.exposition().decode())
    top = {dict(labels)["agent_id"]: value for (name, labels), value in samples.items()
           if name == "dakera_top_agent_memories"}
    assert top == {"a": 3, "b": 2}
    assert sample(samples, "dakera_memories") == 6
    assert sample(samples, "dakera_agents") == 3


def test_metrics_can_be_turned_off(tmp_path: Path,
                                   dakera_command: tuple[list[str], dict[str, str]]) -> None:
    server = LiveServer(tmp_path / "data", command=dakera_command, extra_env={
        "DAKERA_METRICS": "false", "DAKERA_EMBEDDING_MODEL": "hash"}).start()
    try:
        with server.http() as http:
            for path in ("/metrics", "/v1/ops/metrics", "/v1/kpis"):
                response = http.get(path)
                assert response.status_code == 501, path
                assert response.json()["code"] == "FEATURE_DISABLED"
                assert "DAKERA_METRICS" in response.json()["details"]
            assert http.get("/v1/ops/stats").status_code == 200
    finally:
        server.stop()


def test_metrics_open_to_loopback_only_when_asked(
        tmp_path: Path, dakera_command: tuple[list[str], dict[str, str]]) -> None:
    import httpx

    server = LiveServer(tmp_path / "data", command=dakera_command, extra_env={
        "DAKERA_METRICS_OPEN_ON_LOOPBACK": "true", "DAKERA_EMBEDDING_MODEL": "hash"}).start()
    try:
        assert httpx.get(server.url + "/metrics").status_code == 200  # no key, loopback
        assert httpx.get(server.url + "/v1/ops/metrics").status_code == 401
    finally:
        server.stop()
    closed = LiveServer(tmp_path / "data2", command=dakera_command,
                        extra_env={"DAKERA_EMBEDDING_MODEL": "hash"}).start()
    try:
        assert httpx.get(closed.url + "/metrics").status_code == 401
    finally:
        closed.stop()
