"""Export and import through the service (the deterministic test embedder, real temp
databases): what a round trip keeps, idempotence, every format and tool, bad input."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.errors import PayloadTooLargeError, ValidationError
from app.service import Service
from app.service.formats import MAX_LINE_BYTES
from tests import importer_fixtures as fx
from tests.conftest import Clock, MakeService

AGENT = "agent-1"


def run_import(svc: Service, agent: str, path: Path, fmt: str | None = None,
               data: bytes | str | None = None) -> dict[str, Any]:
    """Import a file (written from `data` when given) and wait for the job to end."""
    if data is not None:
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    job = svc.transfer.submit(agent, path, fmt, owned=False)
    job = svc.transfer.wait(job["job_id"], 60)
    assert job["status"] not in ("queued", "running"), job
    return job


def export(svc: Service, agent: str, fmt: str = "jsonl", **kw: bool) -> bytes:
    return b"".join(svc.transfer.export(agent, fmt, **kw).chunks)


def lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(x) for x in data.splitlines() if x.strip()]


def fill(svc: Service, agent: str = AGENT, n: int = 40) -> list[str]:
    """Memories with every field an export carries: sessions, tags, metadata, event times,
    TTLs, types and importances; some recalled (access statistics)."""
    session = svc.sessions.start(agent, metadata={"topic": "trip"})
    ids = []
    for i in range(n):
        result = svc.memories.store(
            agent, f"note {i}: {['Lisbon', 'Porto', 'Faro', 'Braga'][i % 4]} trip day {i} "
                   f"with {['Ana', 'Bo', 'Cy'][i % 3]}",
            memory_type=["episodic", "semantic", "procedural", "working"][i % 4],
            importance=round(0.1 + (i % 9) / 10, 3) + 0.0001234, tags=[f"t{i % 5}", "trip"],
            metadata={"i": i, "nested": {"k": [i, "x"]}}, session_id=session.id if i % 2 else None,
            ttl_seconds=86_400 * 30 if i % 7 == 0 else None,
            event_time=1_700_000_000 + i * 3600 if i % 3 == 0 else None)
        ids.append(result.memory.id)
    svc.sessions.end(session.id, summary="went well")
    svc.recall.recall(agent, "Lisbon trip", top_k=5)
    svc.flush_access()
    return ids


def snapshot(svc: Service, agent: str) -> dict[str, dict[str, Any]]:
    """Every live memory of the agent, all fields, by id."""
    return {m["id"]: m for m in lines(export(svc, agent))}


def test_the_knowledge_graph_survives_a_round_trip(make_service: MakeService,
                                                   tmp_path: Path) -> None:
    a = make_service(data_dir=tmp_path / "a")
    ids = fill(a)
    a.graph.link(ids[0], ids[7], AGENT, label="same trip")
    a.graph.link(ids[3], ids[0], AGENT)
    edges = {(e["from_id"], e["to_id"], e["edge_type"], e["weight"], e.get("label"))
             for e in a.graph.edges_of(AGENT)}
    assert len(edges) >= 2
    data = export(a, AGENT, include_vectors=True, include_edges=True)
    assert sum(line.get("record") == "edge" for line in lines(data)) == len(edges)
    assert not any(line.get("record") == "edge" for line in lines(export(a, AGENT)))
    bad = (b'{"record": "edge", "from_id": "nobody", "to_id": "%s", "edge_type": "linked_by"}\n'
           % ids[0].encode() + b'{"record": "edge", "from_id": "%s", "to_id": "%s", '
           b'"edge_type": "likes"}\n' % (ids[0].encode(), ids[1].encode()))
    b = make_service(data_dir=tmp_path / "b", graph_on_store=False)
    job = run_import(b, AGENT, tmp_path / "g.jsonl", data=data + bad)
    assert job["status"] == "done" and job["imported"] == 40 and job["edges"] == len(edges)
    assert job["invalid"] == 2 and len(job["errors"]) == 2
    assert any("does not hold" in e for e in job["errors"])
    assert any("unknown edge type" in e for e in job["errors"])
    assert {(e["from_id"], e["to_id"], e["edge_type"], e["weight"], e.get("label"))
            for e in b.graph.edges_of(AGENT)} == edges
    again = run_import(b, AGENT, tmp_path / "g2.jsonl", data=data)  # idempotent
    assert again["existing"] == 40 and len(b.graph.edges_of(AGENT)) == len(edges)


def test_a_jsonl_round_trip_keeps_every_field_and_the_vectors(make_service: MakeService,
                                                              tmp_path: Path) -> None:
    a = make_service(data_dir=tmp_path / "a")
    fill(a)
    data = export(a, AGENT, include_vectors=True, include_sessions=True)
    b = make_service(data_dir=tmp_path / "b")
    job = run_import(b, AGENT, tmp_path / "f.jsonl", data=data)
    assert job["status"] == "done" and job["imported"] == 40 and job["invalid"] == 0
    assert job["sessions"] == 1 and job["reembedded"] == 0  # same model: vectors kept
    assert snapshot(b, AGENT) == snapshot(a, AGENT)
    vec_a = {m["id"]: m["vector"] for m in lines(export(a, AGENT, include_vectors=True))}
    vec_b = {m["id"]: m["vector"] for m in lines(export(b, AGENT, include_vectors=True))}
    assert vec_a == vec_b
    [sa], [sb] = (s.sessions.find(agent_id=AGENT)[0] for s in (a, b))
    assert sa.to_dict() == sb.to_dict()
    assert sb.summary == "went well" and sb.memory_count == 20
    for query in ("Lisbon trip", "Ana in Porto", "day 12", "Braga"):
        hits_a = a.recall.recall(AGENT, query, top_k=8, reinforce=False).hits
        hits_b = b.recall.recall(AGENT, query, top_k=8, reinforce=False).hits
        assert [(h.memory.id, round(h.rank_score, 6)) for h in hits_a] == \
            [(h.memory.id, round(h.rank_score, 6)) for h in hits_b]


def test_without_vectors_the_same_memories_are_embedded_again(make_service: MakeService,
                                                              tmp_path: Path) -> None:
    a = make_service(data_dir=tmp_path / "a")
    fill(a, n=12)
    b = make_service(data_dir=tmp_path / "b")
    job = run_import(b, AGENT, tmp_path / "f.jsonl", data=export(a, AGENT))
    assert (job["imported"], job["reembedded"]) == (12, 12)
    assert snapshot(b, AGENT) == snapshot(a, AGENT)


def test_vectors_of_another_model_are_not_trusted(make_service: MakeService,
                                                  tmp_path: Path) -> None:
    a = make_service(data_dir=tmp_path / "a")
    fill(a, n=5)
    rows = lines(export(a, AGENT, include_vectors=True))
    for row in rows:
        row["vector_model"] = "some-other-model"
    b = make_service(data_dir=tmp_path / "b")
    job = run_import(b, AGENT, tmp_path / "f.jsonl",
                     data="\n".join(json.dumps(r) for r in rows))
    assert (job["imported"], job["reembedded"]) == (5, 5)


def test_importing_again_adds_nothing_twice(make_service: MakeService, tmp_path: Path) -> None:
    svc = make_service()
    path = tmp_path / "f.jsonl"
    data = "\n".join(json.dumps({"content": f"line {i} of a file without ids"})
                     for i in range(30)) + "\n" + json.dumps({"content": "line 0 of a file "
                                                                         "without ids"})
    first = run_import(svc, AGENT, path, data=data)
    assert (first["imported"], first["existing"]) == (31, 0)  # the repeated line is kept
    second = run_import(svc, AGENT, path)
    assert (second["status"], second["imported"], second["existing"]) == ("done", 0, 31)
    assert svc.agents.stats(AGENT)["total_memories"] == 31


def test_expired_memories_are_not_exported(make_service: MakeService, clock: Clock) -> None:
    svc = make_service()
    svc.memories.store(AGENT, "short lived", ttl_seconds=60)
    svc.memories.store(AGENT, "kept")
    clock.now += 120
    assert [m["content"] for m in lines(export(svc, AGENT))] == ["kept"]
    assert export(svc, "nobody") == b""


@pytest.mark.parametrize("fmt", ["csv", "mem0", "zep"])
def test_other_export_formats_import_back(make_service: MakeService, tmp_path: Path,
                                          fmt: str) -> None:
    a = make_service(data_dir=tmp_path / "a")
    fill(a, n=9)
    data = export(a, AGENT, fmt, include_vectors=True)
    b = make_service(data_dir=tmp_path / "b")
    job = run_import(b, AGENT, tmp_path / "f", data=data)  # format detected
    assert (job["status"], job["format"], job["imported"], job["invalid"]) == \
        ("done", fmt, 9, 0), job["errors"]
    before, after = snapshot(a, AGENT), snapshot(b, AGENT)
    assert before.keys() == after.keys()
    for mid, m in before.items():
        got = after[mid]
        assert (got["content"], got["memory_type"], got["tags"], got["created_at"]) == \
            (m["content"], m["memory_type"], m["tags"], m["created_at"])
        assert got["importance"] == pytest.approx(m["importance"])
        if fmt == "csv":
            assert got == m


def test_export_streams_page_by_page(make_service: MakeService) -> None:
    svc = make_service()
    for start in range(0, 2500, 500):
        svc.memories.store_batch(AGENT, [{"content": f"m {i}"}
                                         for i in range(start, start + 500)])
    chunks = list(svc.transfer.export(AGENT, "jsonl").chunks)
    assert len(chunks) == 3  # pages of 1000: memory held is one page, not the agent
    assert sum(c.count(b"\n") for c in chunks) == 2500


# -- other tools --------------------------------------------------------------------------

def test_an_mcp_memory_service_database(make_service: MakeService, tmp_path: Path) -> None:
    svc = make_service()
    db = tmp_path / "sqlite_vec.db"
    fx.mcp_memory_service_db(db)
    job = run_import(svc, AGENT, db)
    assert (job["status"], job["format"], job["imported"], job["invalid"]) == \
        ("done", "mcp-memory-service", 6, 0)  # the soft-deleted row is not a memory
    got = {m["content"]: m for m in lines(export(svc, AGENT))}
    assert set(got) == {r[0] for r in fx.MMS_LIVE}
    deploy = got[fx.MMS_ROWS[0][0]]
    assert deploy["tags"] == ["project:dakera", "deploy", "ops"]
    assert deploy["created_at"] == 1717243200 and deploy["updated_at"] == 1717243260
    assert deploy["memory_type"] == "episodic"
    assert deploy["metadata"] == {"source": "chat", "agent_id": "claude-code",
                                  "source_memory_type": "note",
                                  "content_hash": fx.content_hash(fx.MMS_ROWS[0][0]),
                                  "mms_store": "default"}
    assert deploy["id"] == "mms_" + fx.content_hash(fx.MMS_ROWS[0][0])
    assert got[fx.MMS_ROWS[1][0]]["memory_type"] == "semantic"  # a decision
    assert got[fx.MMS_ROWS[3][0]]["tags"] == []  # "untagged" is a placeholder
    assert got[fx.MMS_ROWS[5][0]]["metadata"]["mms_store"] == "personal"
    again = run_import(svc, AGENT, db)
    assert (again["imported"], again["existing"]) == (0, 6)


def test_an_mcp_memory_service_json_export(make_service: MakeService, tmp_path: Path) -> None:
    svc = make_service()
    path = tmp_path / "mms_export.json"
    fx.mcp_memory_service_export(path)
    job = run_import(svc, AGENT, path)
    assert (job["format"], job["imported"]) == ("mcp-memory-service", 6)
    db = tmp_path / "sqlite_vec.db"
    fx.mcp_memory_service_db(db)
    # the same memories by the same ids, whether from its database or its export
    assert run_import(svc, AGENT, db)["existing"] == 6


def test_a_mem0_export(make_service: MakeService, tmp_path: Path) -> None:
    svc = make_service()
    path = tmp_path / "mem0.json"
    fx.mem0_export(path, extra=3)
    job = run_import(svc, AGENT, path)
    assert (job["status"], job["format"], job["imported"], job["invalid"]) == \
        ("done", "mem0", 7, 0), job["errors"]
    got = {m["id"]: m for m in lines(export(svc, AGENT))}
    lisbon = got["8bd4d07a-698e-4afa-9098-17f0300c2368"]
    assert lisbon["content"] == "My favourite city is Lisbon."
    assert lisbon["session_id"] == "trip-2024" and lisbon["memory_type"] == "semantic"
    assert lisbon["metadata"] == {"mem0_user_id": "alice", "mem0_run_id": "trip-2024",
                                  "mem0_actor_id": "Alice", "mem0_role": "user",
                                  "mem0_hash": "bce06f1a47a2434ddb8cb364a13db9ce"}
    assert lisbon["created_at"] == 1795796358
    deploys = got["96453cc3-2aee-4adf-9d28-7473655f17e9"]
    assert deploys["tags"] == ["deploy", "schedule"]  # Mem0 users keep tags in metadata
    assert deploys["metadata"]["mem0_agent_id"] == "ops-bot"
    generated = got["00000000-0000-4000-8000-000000000000"]
    assert generated["memory_type"] == "procedural"
    assert generated["created_at"] == int(datetime(2026, 11, 1, 18, tzinfo=UTC).timestamp())
    old = tmp_path / "mem0_old.json"
    fx.mem0_v01_export(old)
    assert run_import(svc, "carol", old)["imported"] == 1


@pytest.mark.parametrize("doc, speaker, role", [
    (fx.ZEP_V2, "Alice", "user"), (fx.ZEP_V3, "Alice", "user"), (fx.ZEP_V4, "Alice", "user")])
def test_zep_messages(make_service: MakeService, tmp_path: Path, doc: dict[str, Any],
                      speaker: str, role: str) -> None:
    svc = make_service()
    job = run_import(svc, AGENT, tmp_path / "zep.json", data=json.dumps(doc))
    assert (job["status"], job["format"], job["invalid"]) == ("done", "zep", 0)
    first = lines(export(svc, AGENT))[0]
    assert first["content"] == "I'm moving to Lisbon in September."
    assert first["metadata"]["speaker"] == speaker and first["metadata"]["role"] == role
    assert first["memory_type"] == "episodic"
    items = doc.get("messages") or doc["items"]
    assert first["id"] == items[0]["uuid"]


# -- bad input ----------------------------------------------------------------------------

def test_bad_records_are_reported_by_line_and_the_rest_imported(make_service: MakeService,
                                                                 tmp_path: Path) -> None:
    svc = make_service()
    data = b"\n".join([
        b'{"content": "fine one"}',
        b'this is not json',
        b'{"no_content": true}',
        b'{"content": "bad type", "memory_type": "dream"}',
        b'{"content": "bad utf8 \xff\xfe"}',
        b'{"content": "bad vector", "vector": "!!", "vector_model": "x"}',
        b'',
        b'{"content": "truncated line',
        b'{"content": "fine two", "importance": 0.9}',
    ])
    job = run_import(svc, AGENT, tmp_path / "f.jsonl", data=data)
    assert (job["status"], job["imported"], job["invalid"]) == ("done", 3, 5)
    errors = "\n".join(job["errors"])
    for line in (2, 3, 4, 5, 8):
        assert f"line {line}:" in errors
    assert "line 6:" not in errors  # another model's vector: embedded again, not an error
    assert job["total"] == 8 and job["skipped"] == 5


def test_a_line_too_long_is_skipped_without_holding_it(make_service: MakeService,
                                                       tmp_path: Path) -> None:
    svc = make_service()
    path = tmp_path / "f.jsonl"
    with path.open("wb") as f:
        f.write(b'{"content": "before"}\n{"content": "')
        f.write(b"x" * (MAX_LINE_BYTES + 10))
        f.write(b'"}\n{"content": "after"}\n')
    job = run_import(svc, AGENT, path)
    assert (job["imported"], job["invalid"]) == (2, 1)
    assert "line 2: the line is longer than" in job["errors"][0]


def test_csv_rows(make_service: MakeService, tmp_path: Path) -> None:
    svc = make_service()
    data = ("content,importance,tags,created_at\n"
            "hello,0.5,\"a,b\",1700000000\n"
            "\"multi\nline\",0.7,[\"x\"],\n"
            "short row\n"
            "bad number,lots,,\n"
            ",0.1,,\n")
    job = run_import(svc, AGENT, tmp_path / "f.csv", data=data)
    assert (job["format"], job["imported"], job["invalid"]) == ("csv", 2, 3), job
    errors = "\n".join(job["errors"])
    assert "line 5: it has 1 fields where the header names 4" in errors
    assert "line 6: 'importance' is not a number" in errors
    assert "line 7: 'content' is required" in errors
    got = {m["content"]: m for m in lines(export(svc, AGENT))}
    assert got["hello"]["tags"] == ["a", "b"] and got["hello"]["created_at"] == 1700000000
    assert got["multi\nline"]["tags"] == ["x"]


@pytest.mark.parametrize("data, fmt, message", [
    (b"name,importance\nx,0.5\n", None, "no 'content' column"),
    (b'{"memories": [{"memory": "a"}', None, "not valid JSON"),
    (b"", None, "the file is empty"),
    (b"\x00\x01\x02binary", None, "binary"),
    (b'{"content": "a"}\n', "csv", "format=csv but the file holds JSON lines"),
    (b"content\nhello\n", "mem0", "format=mem0 but the file is neither JSON"),
    (b'{"content": "a"}\n', "yaml", "'format' must be one of"),
    (b'{\n  "nothing": []\n}', None, "holds no list of records"),
])
def test_a_file_that_cannot_be_read_is_refused_whole(make_service: MakeService, tmp_path: Path,
                                                     data: bytes, fmt: str | None,
                                                     message: str) -> None:
    svc = make_service()
    path = tmp_path / "f"
    path.write_bytes(data)
    with pytest.raises(ValidationError, match=message):
        svc.transfer.submit(AGENT, path, fmt, owned=True)
    assert not path.exists()  # a refused upload is not kept
    assert svc.agents.stats(AGENT)["total_memories"] == 0


def test_an_sqlite_file_that_is_not_a_tool_database(make_service: MakeService,
                                                    tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    svc = make_service()
    with pytest.raises(ValidationError, match=r"not an mcp-memory-service one.*backup"):
        svc.transfer.submit(AGENT, path, None, owned=False)


def test_a_huge_json_document_is_refused(make_service: MakeService, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from app.service import formats

    monkeypatch.setattr(formats, "MAX_DOCUMENT_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"memories": [{"memory": "x" * 50}] * 40}))
    with pytest.raises(PayloadTooLargeError, match="send larger imports as JSON lines"):
        make_service().transfer.submit(AGENT, path, None, owned=False)


def test_an_upload_over_the_limit_is_refused(make_service: MakeService) -> None:
    svc = make_service(max_import_bytes=4096)
    spool = svc.transfer.spool()
    spool.write(b"x" * 4000)
    with pytest.raises(PayloadTooLargeError, match="DAKERA_MAX_IMPORT_BYTES"):
        spool.write(b"x" * 200)
    assert not spool.path.exists()


def test_vectors_are_checked(make_service: MakeService, tmp_path: Path) -> None:
    svc = make_service()
    model = svc.transfer.embedder.model_id
    short = base64.b64encode(b"\x00" * 8).decode()
    data = "\n".join([json.dumps({"content": "short", "vector": short, "vector_model": model}),
                      json.dumps({"content": "nan", "vector": [float("nan")] * 384,
                                  "vector_model": model})])
    job = run_import(svc, AGENT, tmp_path / "f.jsonl", data=data)
    assert job["invalid"] == 2
    assert "2 dimensions, not 384" in job["errors"][0]


def test_old_memories_decay_from_their_import_not_from_their_creation(
        make_service: MakeService, tmp_path: Path, clock: Clock) -> None:
    """A memory written years ago keeps the importance the file gives it: the decay that
    follows an import counts from the import (or from when the export says it last
    decayed), not from its creation, which would delete it at the next pass."""
    svc = make_service(decay_interval=3600)
    years_ago = int(clock.now) - 3 * 365 * 86_400
    data = "\n".join(json.dumps({"content": f"an old note {i}", "created_at": years_ago,
                                 "importance": 0.6}) for i in range(20))
    job = run_import(svc, AGENT, tmp_path / "old.jsonl", data=data)
    assert job["imported"] == 20
    clock.now += 3600
    svc.decay.run()
    kept = lines(export(svc, AGENT))
    assert len(kept) == 20
    assert all(0.5 < m["importance"] < 0.6 and m["created_at"] == years_ago for m in kept)
    assert all(m["decayed_at"] == int(clock.now) for m in kept)  # this pass
    b = make_service(data_dir=tmp_path / "b")
    run_import(b, AGENT, tmp_path / "again.jsonl", data=export(svc, AGENT))
    assert [m["decayed_at"] for m in lines(export(b, AGENT))] == \
        [m["decayed_at"] for m in kept]


# -- the HTTP routes in this process: the key-less rules and the upload timer -------------------

def test_a_key_less_server_takes_multipart_imports_but_no_forms_elsewhere(
        make_service: MakeService) -> None:
    """Without an API key, routes refuse form bodies (a web page could send them cross-site
    without a preflight), except the upload routes, which take multipart/form-data as the
    SDK sends it; a cross-origin page is still refused by the gate."""
    from litestar.testing import TestClient

    from app.api import create_app

    svc = make_service()
    with TestClient(create_app(svc, manage_lifecycle=False),
                    base_url="http://127.0.0.1:7700") as client:
        r = client.post("/v1/import", params={"agent_id": AGENT},
                        files={"file": ("a.jsonl", b'{"content": "sent as a form"}\n')})
        assert r.status_code == 200 and r.json()["imported"] == 1, r.text
        r = client.post("/v1/import", params={"agent_id": AGENT},
                        files={"file": ("a.jsonl", b'{"content": "x"}\n')},
                        headers={"Origin": "https://evil.example"})
        assert r.json()["code"] == "CROSS_ORIGIN_REQUEST_REFUSED"
        r = client.post("/v1/admin/backups", data={"name": "a form"})
        assert r.status_code == 415 and r.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize("upload", [True, False])
def test_an_upload_may_outlast_the_request_timeout_while_its_chunks_keep_coming(
        tmp_path: Path, upload: bool) -> None:
    """DAKERA_REQUEST_TIMEOUT=1 and a body sent in 4 chunks 0.4 s apart: an upload route
    takes it (the timeout is between chunks, then until the answer starts); another route
    answers 408."""
    import anyio

    from app.api.gate import Gate, RateLimiter
    from app.api.scopes import Access
    from tests.conftest import make_settings

    service = Service(make_settings(tmp_path, embedding_model="hash", request_timeout=1))
    chunks = [b"a" * 10] * 4
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        try:
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        except Exception as exc:
            status = getattr(exc, "status", 500)
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    class Handler:
        opt = {"access": Access("write", upload=upload)}

    async def receive() -> dict[str, Any]:
        await anyio.sleep(0.4)
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/up", "scheme": "http",
             "headers": [(b"host", b"127.0.0.1:7700")], "client": ("127.0.0.1", 1),
             "route_handler": Handler(), "state": {}}
    anyio.run(Gate(app, service, RateLimiter(0)), scope, receive, send)  # type: ignore[arg-type]
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == ([200] if upload else [408])


def test_a_restore_drops_the_saved_indexes_of_the_data_it_replaces(
        make_service: MakeService) -> None:
    """Indexes saved after the backup (vectors and BM25 text) know memories the restored
    database does not hold: the restore must not load them."""
    svc = make_service()
    svc.memories.store(AGENT, "the lighthouse keeper paints boats")
    backup = svc.backups.create("before")
    svc.memories.store(AGENT, "the lighthouse keeper sings to whales")
    assert svc.save_indexes() >= 1
    saved = sorted(p.suffix for p in svc.settings.index_dir.iterdir())
    assert ".bm25" in saved and ".flat" in saved, saved
    status = svc.backups.restore(backup["backup_id"], wait=120.0)
    assert status["status"] == "completed", status
    # (rebuilt from the restored database, in memory until the next save)
    assert not [p for p in svc.settings.index_dir.iterdir()
                if p.suffix in (".bm25", ".flat", ".hnsw")]
    hits = svc.recall.recall(AGENT, "lighthouse keeper whales", top_k=5).hits
    assert [h.memory.content for h in hits] == ["the lighthouse keeper paints boats"]
