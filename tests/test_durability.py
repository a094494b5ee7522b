"""Start-up, shutdown and crashes: readiness, the data-dir lock, index recovery, kill -9."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.api import create_app
from app.errors import DataDirInUse
from app.index.hnsw import index_file, index_name
from app.service import Service
from app.store import SqliteStore
from app.store.db import connect
from tests.conftest import LiveServer, MakeService, make_settings

pytestmark = pytest.mark.both_targets  # live-server tests: the source tree and the binary

TEXTS = [f"Fact number {i}: the {w} is kept in drawer {i % 7}" for i, w in
         enumerate(["stapler", "passport", "charger", "torch", "receipt", "spare key"] * 5)]


def test_not_ready_until_the_model_is_loaded(tmp_path: Path) -> None:
    service = Service(make_settings(tmp_path))  # never started: still "loading"
    with TestClient(create_app(service, manage_lifecycle=False),
                    base_url="http://127.0.0.1:7700") as client:
        for path in ("/health", "/health/ready"):
            r = client.get(path)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert client.get("/health/ready").json()["starting"] is True
        live = client.get("/health/live").json()
        assert isinstance(live.pop("uptime_seconds"), int)  # no wall clock: a busy machine
        assert live == {"alive": True, "version": service.version,
                        "product_version": service.product_version, "starting": True}
        r = client.post("/v1/memory/store", json={"agent_id": "a", "content": "x"})
        assert r.status_code == 503 and r.json()["code"] == "SERVICE_UNAVAILABLE"
        assert "retry-after" in r.headers


def test_a_failed_start_is_reported(tmp_path: Path) -> None:
    service = Service(make_settings(tmp_path, models_dir=str(tmp_path / "no-models")))
    service.start()
    service.wait_ready_quietly()
    assert service.failure is not None and "make models" in str(service.failure)
    with TestClient(create_app(service, manage_lifecycle=False),
                    base_url="http://127.0.0.1:7700") as client:
        body = client.get("/health/ready").json()
        assert body["ready"] is False and "make models" in body["reason"]
    service.close()


def test_one_process_per_data_dir(tmp_path: Path) -> None:
    first = Service(make_settings(tmp_path, embedding_model="hash"))
    first.start(wait=True)
    second = Service(make_settings(tmp_path, embedding_model="hash"))
    with pytest.raises(DataDirInUse, match="in use"):
        second.start()
    first.close()
    second.start(wait=True)  # free again once the first closed
    second.close()


def test_a_failing_write_rolls_back_alone(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite", dimension=4, model_id="m")
    gate = threading.Event()
    blocker = store.writer.submit(lambda conn: gate.wait())  # queue the next jobs behind it

    def insert(agent: str):  # type: ignore[no-untyped-def]
        return lambda conn: conn.execute(
            "INSERT INTO agents (agent_id, created_at) VALUES (?, 0)", (agent,))

    def boom(conn):  # type: ignore[no-untyped-def]
        conn.execute("INSERT INTO agents (agent_id, created_at) VALUES ('half', 0)")
        raise RuntimeError("fails after writing")

    futures = [store.writer.submit(insert("x")), store.writer.submit(boom),
               store.writer.submit(insert("y"))]
    gate.set()
    blocker.result()
    futures[0].result()
    futures[2].result()
    with pytest.raises(RuntimeError):
        futures[1].result()
    agents = {r[0] for r in store.reader().execute("SELECT agent_id FROM agents")}
    assert agents == {"x", "y"}
    store.close()


def db_count(data_dir: Path) -> int:
    conn = connect(data_dir / "dakera.db", readonly=True)
    try:
        return int(conn.execute("SELECT count(*) FROM memories").fetchone()[0])
    finally:
        conn.close()


def test_kill_9_loses_no_acknowledged_write(fresh_server: LiveServer) -> None:
    fresh_server.start()
    client = fresh_server.client()
    ids = [client.store_memory("agent-crash", t)["id"] for t in TEXTS]
    client.forget("agent-crash", ids[0])
    fresh_server.kill()  # SIGKILL: no index save, no clean close

    fresh_server.start()
    assert "replayed" in fresh_server.log() or "rebuilt" in fresh_server.log()
    client = fresh_server.client()
    for mid, text in list(zip(ids, TEXTS, strict=True))[1:]:
        assert client.get_memory("agent-crash", mid)["content"] == text
        assert mid in [m.id for m in client.recall("agent-crash", text, top_k=3).memories]
    assert mid not in [m.id for m in client.recall("agent-crash", TEXTS[0], top_k=30).memories
                       if m.id == ids[0]]
    assert db_count(fresh_server.data_dir) == len(TEXTS) - 1
    fresh_server.stop()


@pytest.mark.parametrize("damage", ["garbage", "other-model", "missing"])
def test_a_damaged_index_is_rebuilt(fresh_server: LiveServer, damage: str) -> None:
    fresh_server.start()
    client = fresh_server.client()
    ids = [client.store_memory("agent-idx", t)["id"] for t in TEXTS]
    assert fresh_server.stop() == 0
    base = fresh_server.data_dir / "indexes" / index_name("agent-idx")
    if damage == "garbage":
        index_file(base.parent, "agent-idx").write_bytes(b"\x00garbage" * 100)
    elif damage == "other-model":
        meta = json.loads(base.with_suffix(".json").read_text())
        base.with_suffix(".json").write_text(json.dumps({**meta, "model_id": "another"}))
    else:
        index_file(base.parent, "agent-idx").unlink()

    before = fresh_server.log().count("rebuilt")
    fresh_server.start()
    assert fresh_server.log().count("rebuilt") == before + 1
    client = fresh_server.client()
    for mid, text in zip(ids, TEXTS, strict=True):
        assert mid in [m.id for m in client.recall("agent-idx", text, top_k=3).memories]
    fresh_server.stop()


def test_compaction_keeps_the_index_in_step(make_service: MakeService) -> None:
    svc = make_service(embedding_model="all-minilm-l6-v2")
    texts = [f"item {i} of the inventory: {w}" for i, w in
             enumerate(["bolt", "nut", "washer", "screw", "rivet"] * 600)]
    ids = [m.id for i in range(0, 3000, 1000) for m in
           svc.memories.store_batch("a", [{"content": t} for t in texts[i:i + 1000]]).memories]
    for i in range(0, 2500, 500):
        svc.memories.forget("a", memory_ids=ids[i:i + 500])
    assert svc.memories.compact_indexes() == 1
    assert svc.memories.compact_indexes() == 0
    svc.memories.store("a", "a new item stored after compaction: gasket")
    assert svc.parts().indexes.stats() == {"a": 501}
    hits = svc.recall.recall("a", texts[2999], top_k=1, routing="vector").hits
    assert hits[0].memory.content == texts[2999]
    assert svc.recall.recall("a", "gasket", top_k=1).hits[0].memory.content.endswith("gasket")
