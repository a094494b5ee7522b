"""Export, import and backups over HTTP on a real server with the real model: the SDK's
calls, a 10,000-memory round trip, kill -9 during an import, a backup under concurrent
writes restored, and uploads that are truncated or too large."""

from __future__ import annotations

import gzip
import json
import random
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, LiveServer

sys.path.insert(0, str(ROOT / "scripts"))

import corpus

AGENT = "transfer-agent"


def job_done(http: httpx.Client, response: httpx.Response, timeout: float = 600
             ) -> dict[str, Any]:
    assert response.status_code in (200, 202), response.text
    job = response.json()
    deadline = time.monotonic() + timeout
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = http.get(f"/v1/import/{job['job_id']}/status").json()
    return job


def upload(http: httpx.Client, agent: str, data: bytes, name: str = "import",
           **params: Any) -> dict[str, Any]:
    response = http.post("/v1/import", params={"agent_id": agent, **params},
                         files={"file": (name, data, "application/octet-stream")},
                         timeout=600)
    return job_done(http, response)


def export_lines(http: httpx.Client, agent: str, **params: Any) -> list[dict[str, Any]]:
    response = http.get("/v1/export", params={"agent_id": agent, **params}, timeout=600)
    assert response.status_code == 200, response.text
    return [json.loads(x) for x in response.content.splitlines() if x.strip()]


def generated(n: int, seed: int = 3) -> bytes:
    """n memories as an import file: sessions, tags, metadata, types and times, no ids."""
    rng = random.Random(seed)
    rows = []
    for i, text in enumerate(corpus.corpus(n, seed=seed)):
        row: dict[str, Any] = {
            "content": text, "memory_type": rng.choice(["episodic", "semantic", "procedural"]),
            "importance": round(rng.uniform(0.1, 1.0), 4),
            "tags": rng.sample(["work", "home", "travel", "food", "health", "music"], 2),
            "metadata": {"n": i, "source": rng.choice(["chat", "email"])},
            "created_at": 1_750_000_000 + i * 60}
        if i % 3:
            row["session_id"] = f"s-{i // 50}"
        rows.append(json.dumps(row))
    return "\n".join(rows).encode()


def pairs(hits: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(h["memory"]["id"], h.get("rank_score", h["score"])) for h in hits]


# -- the SDK's calls ------------------------------------------------------------------------

class TestSdk:
    pytestmark = pytest.mark.both_targets

    def test_import_export_and_job_status(self, live_server: LiveServer) -> None:
        client = live_server.client()
        result = client.import_memories([{"content": "Ana drinks green tea every morning"},
                                         {"content": "Bo flies to Lisbon on Friday",
                                          "memory_type": "semantic"}], agent_id="sdk")
        assert (result.status, result.imported_count, result.skipped_count) == ("done", 2, 0)
        status = client.import_job_status(result.job_id)
        assert (status.status, status.imported, status.total) == ("done", 2, 2)
        csv_result = client.import_memories("content,importance\nhello there,0.5\n",
                                            format="csv", agent_id="sdk")
        assert csv_result.imported_count == 1
        mem0 = client.import_memories({"memories": [{"id": "m1", "memory": "likes tea"}]},
                                      format="mem0", agent_id="sdk")
        zep = client.import_memories({"messages": [{"uuid": "z1", "content": "hi there"}]},
                                     format="zep", agent_id="sdk")
        assert (mem0.imported_count, zep.imported_count) == (1, 1)
        for fmt in ("jsonl", "csv", "mem0", "zep"):
            export = client.export_memories(format=fmt, agent_id="sdk")
            assert export.count == 5 and export.skipped == 0, fmt
        again = client.import_memories(client.export_memories(agent_id="sdk").raw,
                                       agent_id="sdk")
        assert (again.imported_count, again.skipped_count) == (0, 5)

    def test_format_is_sniffed_without_a_file_name(self, live_server: LiveServer) -> None:
        with live_server.http() as http:  # as dakera-mcp sends it: no extension, no format
            job = upload(http, "sniff", json.dumps({"results": [{"memory": "a fact"}]}).encode(),
                         name="upload")
            assert (job["format"], job["imported"]) == ("mem0", 1)
            bare = http.post("/v1/import", params={"agent_id": "sniff"},
                             content=b'{"content": "sent as the bare body"}\n',
                             headers={"Content-Type": "application/x-ndjson"})
            assert job_done(http, bare)["imported"] == 1

    def test_scopes_and_grants(self, live_server: LiveServer) -> None:
        """Export needs read, import write (both on the agent's namespace); an import job is
        the business of its agent's keys; backups need admin over every namespace and a
        restore super_admin."""
        root = live_server.client()
        root.store_memory(agent_id="sc-a", content="Ada keeps a garden")
        root.store_memory(agent_id="sc-b", content="Bea keeps a boat")
        job_b = root.import_memories([{"content": "Bea's boat is blue"}], agent_id="sc-b")

        def key(scope: str, *agents: str) -> str:
            grants = [f"_dakera_agent_{a}" for a in agents] if agents else None
            return str(root.create_key(f"sc-{scope}", scope=scope, namespaces=grants)["key"])

        line = b'{"content": "Ada plants tulips"}\n'
        with live_server.http(key("read", "sc-a")) as reader:
            assert reader.get("/v1/export", params={"agent_id": "sc-a"}).status_code == 200
            denied = reader.get("/v1/export", params={"agent_id": "sc-b"})
            assert denied.json()["code"] == "NAMESPACE_ACCESS_DENIED"
            refused = reader.post("/v1/import", params={"agent_id": "sc-a"},
                                  files={"file": ("a.jsonl", line)})
            assert refused.json()["code"] == "INSUFFICIENT_SCOPE"
            assert reader.get(f"/v1/import/{job_b.job_id}/status").status_code == 403
            assert job_b.job_id not in [j["job_id"] for j in
                                        reader.get("/v1/import/jobs").json()["jobs"]]
        with live_server.http(key("write", "sc-a")) as writer:
            job = upload(writer, "sc-a", line, name="a.jsonl")
            assert job["imported"] == 1
            assert writer.get(f"/v1/import/{job['job_id']}/status").status_code == 200
            assert writer.post("/v1/import", params={"agent_id": "sc-b"}, files={
                "file": ("b.jsonl", line)}).json()["code"] == "NAMESPACE_ACCESS_DENIED"
            assert writer.get("/v1/admin/backups").json()["code"] == "INSUFFICIENT_SCOPE"
        with live_server.http(key("admin", "sc-a")) as narrow:  # admin of one agent only
            assert narrow.get("/v1/admin/backups").status_code == 403
        with live_server.http(key("admin")) as admin:
            made = admin.post("/v1/admin/backups", json={"name": "by admin"})
            assert made.status_code == 201, made.text
            backup_id = made.json()["backup"]["backup_id"]
            assert admin.get(f"/v1/admin/backups/{backup_id}/download").status_code == 200
            restore = admin.post("/v1/admin/backups/restore", json={"backup_id": backup_id})
            assert restore.json()["code"] == "INSUFFICIENT_SCOPE"
            assert admin.delete(f"/v1/admin/backups/{backup_id}").status_code == 200

    def test_backups(self, live_server: LiveServer) -> None:
        client = live_server.client()
        client.store_memory(agent_id="bk", content="kept in the backup")
        made = client.create_backup(name="sdk backup")
        backup_id = made["backup"]["backup_id"]
        assert made["backup"]["memory_count"] >= 1
        listed = client.admin_list_backups()
        assert backup_id in [b["backup_id"] for b in listed["backups"]]
        assert client.admin_get_backup(backup_id)["name"] == "sdk backup"
        packed = client.download_backup(backup_id)
        assert gzip.decompress(packed)[:16] == b"SQLite format 3\x00"
        uploaded = client.upload_backup(packed)["backup"]
        assert uploaded["memory_count"] == made["backup"]["memory_count"]
        client.store_memory(agent_id="bk", content="stored after the backup")
        restored = client.restore_backup(uploaded["backup_id"])
        assert restored["status"] == "completed", restored
        assert client.agent_stats("bk")["total_memories"] == 1
        assert client.admin_get_restore_status(restored["restore_id"])["status"] == "completed"
        schedule = client.admin_get_backup_schedule()
        assert schedule["enabled"] and schedule["keep"] >= 1
        client.delete_backup(uploaded["backup_id"])
        with pytest.raises(Exception, match="not found"):
            client.admin_get_backup(uploaded["backup_id"])
        with live_server.http() as http:
            refused = http.post("/v1/admin/backups", json={"name": "x", "include_data": True})
            assert refused.status_code == 422
            assert http.post("/admin/backups", json={"name": "x", "encrypt": True}
                             ).status_code == 501


# -- the CLI, on the target's binary too ---------------------------------------------------

@pytest.mark.both_targets
def test_cli_imports_tool_files_with_a_progress_bar(live_server: LiveServer,
                                                    dakera_command: tuple[list[str],
                                                                          dict[str, str]],
                                                    tmp_path: Path) -> None:
    import subprocess

    from tests import importer_fixtures as fx

    command, env_extra = dakera_command

    def dakera(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"DAKERA_API_KEY": live_server.api_key or "", "PATH": "/usr/bin:/bin",
               **env_extra}
        return subprocess.run([*command, *args, "--url", live_server.url], env=env,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)

    db = tmp_path / "sqlite_vec.db"
    running = fx.mcp_memory_service_db(db, extra=300, keep_open=True)  # its WAL beside it
    try:
        out = dakera("import", "cli-mms", str(db))
    finally:
        assert running is not None
        running.close()
    assert out.returncode == 0, out.stderr
    assert "100%" in out.stderr and "upload" in out.stderr and "import (mcp-memory-service)" \
        in out.stderr
    assert "done: 307 imported into cli-mms" in out.stdout  # 6 + 300 + the one in the WAL

    mem0 = tmp_path / "mem0_export.json"
    fx.mem0_export(mem0, extra=200)
    out = dakera("import", "cli-mem0", str(mem0))
    assert out.returncode == 0, out.stderr
    assert "100%" in out.stderr and "done: 204 imported into cli-mem0" in out.stdout
    out = dakera("import", "cli-mem0", str(mem0), "--json", "-q")
    assert out.returncode == 0 and json.loads(out.stdout)["existing"] == 204
    assert out.stderr == ""

    out = dakera("recall", "cli-mem0", "Lisbon favourite city")
    assert out.returncode == 0
    header, _, first = out.stdout.splitlines()[:3]
    assert header.split() == ["rank", "score", "type", "age", "content"]
    assert first.split()[0] == "1" and "Lisbon" in first

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"content": "good"}\nnot json\n')
    out = dakera("import", "cli-bad", str(bad))
    assert out.returncode == 5 and "line 2: not valid JSON" in out.stderr
    out = dakera("export", "cli-mem0", "-o", str(tmp_path / "out.jsonl"))
    assert out.returncode == 0 and "exported 204 memories" in out.stdout
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) >= 204
    assert dakera("stats", "cli-mms").returncode == 0
    assert dakera("recall", "cli-mem0", "x", "-k", "0").returncode == 5
    assert dakera("backup", "download", "bk_20000101T000000Z_abcdef").returncode == 3


# -- round trip at 10,000 --------------------------------------------------------------------

@pytest.mark.timeout(1800)  # 10,000 embeddings on a busy machine
def test_round_trip_of_10000_memories(tmp_path: Path) -> None:
    """Source A embeds 10,000 imported memories with the real model; B imports A's export
    with vectors (nothing embedded) and must answer 100 queries exactly as A does; C
    imports it without vectors and embeds every memory again (with the test embedder, to
    spare 10,000 more real embeddings: A's import already did those)."""
    source = LiveServer(tmp_path / "a").start()
    copy = LiveServer(tmp_path / "b").start()
    again = LiveServer(tmp_path / "c", extra_env={"DAKERA_EMBEDDING_MODEL": "hash"}).start()
    try:
        with source.http() as a, copy.http() as b, again.http() as c:
            job = upload(a, AGENT, generated(10_000))
            assert (job["status"], job["imported"], job["invalid"]) == ("done", 10_000, 0)
            original = export_lines(a, AGENT, include_vectors=True, include_sessions=True)
            assert len(original) == 10_000 + 200  # and the 200 sessions, first
            data = b"\n".join(json.dumps(x).encode() for x in original)
            job = upload(b, AGENT, data)
            assert (job["imported"], job["reembedded"], job["sessions"]) == \
                (10_000, 0, len(original) - 10_000)
            assert export_lines(b, AGENT, include_vectors=True, include_sessions=True) == \
                original
            queries = corpus.queries(100, texts=[x["content"] for x in original
                                                 if "content" in x])
            for q in queries:
                body = {"agent_id": AGENT, "query": q, "top_k": 10}
                got_a = a.post("/v1/memory/search", json=body).json()["memories"]
                got_b = b.post("/v1/memory/search", json=body).json()["memories"]
                assert [i for i, _ in pairs(got_b)] == [i for i, _ in pairs(got_a)], q
                assert [s for _, s in pairs(got_b)] == pytest.approx(
                    [s for _, s in pairs(got_a)], abs=1e-5), q
            # without vectors: the same memories, embedded again
            plain = [{k: v for k, v in x.items()
                      if k not in ("vector", "vector_model", "sentence_vectors")}
                     for x in original]
            job = upload(c, AGENT, b"\n".join(json.dumps(x).encode() for x in plain))
            assert (job["imported"], job["reembedded"]) == (10_000, 10_000)
            assert export_lines(c, AGENT, include_sessions=True) == plain
    finally:
        for server in (source, copy, again):
            server.stop()


# -- kill -9 during an import -----------------------------------------------------------------

@pytest.mark.timeout(900)
def test_kill_9_during_an_import_then_run_it_again(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data").start()
    data = generated(3000, seed=9)
    with server.http() as http:
        response = http.post("/v1/import", params={"agent_id": AGENT, "wait": 0},
                             files={"file": ("f.jsonl", data, "application/x-ndjson")})
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + 300
        while True:
            job = http.get(f"/v1/import/{job_id}/status").json()
            if job["imported"] > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert 0 < job["imported"] < 3000, job
    server.kill()
    server.start()
    with server.http() as http:
        killed = http.get(f"/v1/import/{job_id}/status").json()
        assert killed["status"] == "interrupted"
        assert killed["imported"] >= job["imported"]  # counted with each committed batch
        done = upload(http, AGENT, data)
        assert done["status"] == "done"
        assert done["imported"] + done["existing"] == 3000
        assert done["existing"] == killed["imported"]
        rows = export_lines(http, AGENT)
    assert len(rows) == 3000 == len({r["id"] for r in rows})
    assert sorted(r["metadata"]["n"] for r in rows) == list(range(3000))
    server.stop()


# -- a backup under concurrent writes ---------------------------------------------------------

@pytest.mark.timeout(900)
def test_a_backup_under_concurrent_writes_restores_every_acknowledged_write(tmp_path: Path
                                                                           ) -> None:
    server = LiveServer(tmp_path / "data").start()
    acked: list[tuple[float, str]] = []
    stop = threading.Event()
    errors: list[str] = []

    def writer(n: int) -> None:
        with server.http() as http:
            i = 0
            while not stop.is_set():
                r = http.post("/v1/memory/store", json={"agent_id": AGENT,
                                                        "content": f"writer {n} note {i}"})
                if r.status_code == 200:
                    acked.append((time.monotonic(), r.json()["memory"]["id"]))
                elif r.status_code != 503:
                    errors.append(r.text)
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        while len(acked) < 60:
            time.sleep(0.05)
        with server.http() as http:
            started = time.monotonic()
            made = http.post("/v1/admin/backups", json={"name": "under load"}, timeout=120)
            assert made.status_code == 201, made.text
            backup = made.json()["backup"]
            time.sleep(0.5)  # writes go on after it
            packed = http.get(f"/v1/admin/backups/{backup['backup_id']}/download").content
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    before = {mid for at, mid in acked if at < started}
    copy = tmp_path / "copy.db"
    copy.write_bytes(gzip.decompress(packed))
    con = sqlite3.connect(copy)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    in_backup = {r[0] for r in con.execute("SELECT id FROM memories")}
    con.close()
    assert before <= in_backup
    assert len(in_backup) == backup["memory_count"] < len(acked)

    # restored into the running server, with readers going on
    outcomes: list[int] = []

    def reader() -> None:
        with server.http() as http:
            while not stop.is_set():
                outcomes.append(http.post("/v1/memory/recall", json={
                    "agent_id": AGENT, "query": "writer note", "top_k": 3}).status_code)

    stop.clear()
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        with server.http() as http:
            restored = http.post("/v1/admin/backups/restore",
                                 json={"backup_id": backup["backup_id"]}, timeout=300)
            assert restored.json()["status"] == "completed", restored.text
            stats = http.get(f"/v1/agents/{AGENT}/stats").json()
            assert stats["total_memories"] == backup["memory_count"]
            hits = http.post("/v1/memory/recall", json={"agent_id": AGENT,
                                                        "query": "writer 2 note 5"}).json()
            assert hits["memories"]
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert set(outcomes) <= {200, 503}, set(outcomes)
    server.stop()


# -- bad uploads -------------------------------------------------------------------------------

def raw_request(port: int, head: bytes, body: Iterator[bytes] | bytes,
                read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        try:
            for chunk in ([body] if isinstance(body, bytes) else body):
                s.sendall(chunk)
        except OSError:  # the server refused and closed early
            pass
        if not read:
            return b""
        try:
            return s.recv(65536)
        except OSError:
            return b""


@pytest.mark.timeout(900)
def test_truncated_and_oversized_uploads(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", extra_env={
        "DAKERA_MAX_IMPORT_BYTES": str(8 * 1024 * 1024)}).start()
    auth = f"Authorization: Bearer {server.api_key}\r\n".encode()
    boundary = "b0undary"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"f.jsonl\"\r\nContent-Type: application/x-ndjson\r\n\r\n").encode()
    lines = b"".join(b'{"content": "memory %d from a cut upload"}\n' % i for i in range(5000))

    # 1. the client stops half-way through the body it announced
    head = (b"POST /v1/import?agent_id=cut HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(part) + len(lines) + 100}\r\n\r\n".encode())
    raw_request(server.port, head, part + lines[: len(lines) // 2], read=False)
    # 2. a complete body whose multipart is cut (no closing boundary)
    body = part + lines[:1000]
    head2 = (b"POST /v1/import?agent_id=cut HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
             f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
    answer = raw_request(server.port, head2, body)
    assert b" 400 " in answer.split(b"\r\n")[0] and b"truncated" in answer
    # 3. a 2 GB file announced: refused before a byte of it is read
    head3 = (b"POST /v1/import?agent_id=cut HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
             b"Content-Type: application/x-ndjson\r\n"
             b"Content-Length: 2147483648\r\nConnection: close\r\n\r\n")
    answer = raw_request(server.port, head3, b'{"content": "x"}\n')
    assert b" 413 " in answer.split(b"\r\n")[0] and b"DAKERA_MAX_IMPORT_BYTES" in answer

    # 4. a stream with no length that goes past the limit: cut off
    def endless() -> Iterator[bytes]:
        line = b'{"content": "' + b"y" * 1000 + b'"}\n'
        for _ in range(20_000):  # 20 MB, over the 8 MB limit
            yield line * 16

    with server.http() as http:
        try:
            over = http.post("/v1/import", params={"agent_id": "cut"}, content=endless(),
                             headers={"Content-Type": "application/x-ndjson"})
            assert over.status_code == 413
        except httpx.HTTPError:
            pass  # the server may close before the client has sent everything
        assert http.get("/health/ready").status_code == 200
        assert http.get("/v1/agents/cut/stats").json()["total_memories"] == 0
        ok = upload(http, "cut", lines[:2000])
        assert ok["imported"] > 0
    assert not any((server.data_dir / "uploads").iterdir())
    server.stop()


def test_a_restore_that_cannot_work_changes_nothing(live_server: LiveServer,
                                                    tmp_path: Path) -> None:
    from app.config import Settings
    from app.service import Service

    with live_server.http() as http:
        http.post("/v1/memory/store", json={"agent_id": "keep", "content": "still here"})
        for body, expected in ((b"\x1f\x8b not really gzip", 400),
                               (gzip.compress(b"plain text, not a database"), 400)):
            r = http.post("/v1/admin/backups/upload", content=body,
                          headers={"Content-Type": "application/gzip"})
            assert r.status_code == expected, r.text
        # a dakera backup made with another embedding model
        other = Service(Settings.from_env(env={}, data_dir=str(tmp_path / "other"),
                                          embedding_model="hash"))
        other.start(wait=True)
        other.memories.store("keep", "from another model")
        made = other.backups.create("other model")
        other.close()
        db = Path(made["storage_path"]).read_bytes()
        up = http.post("/v1/admin/backups/upload", content=gzip.compress(db),
                       headers={"Content-Type": "application/gzip"})
        assert up.status_code == 201, up.text
        refused = http.post("/v1/admin/backups/restore",
                            json={"backup_id": up.json()["backup"]["backup_id"]})
        assert refused.status_code == 409 and "hash" in refused.json()["error"]
        assert http.post("/v1/admin/backups/restore", json={"backup_id": "bk_nope"}
                         ).status_code == 404
        assert http.get("/v1/agents/keep/stats").json()["total_memories"] == 1
