"""Faults against a live server (the source tree and the frozen binary), on real filesystems:
a full disk, a filesystem the kernel turns read-only under the server, damaged index,
database and model files, and SIGTERM in each case. What a user sees: the HTTP answers and
the log lines asserted here."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.index.hnsw import index_file
from tests.conftest import API_KEY, ROOT, LiveServer
from tests.faultfs import ext4_loop, fill, small_tmpfs

pytestmark = pytest.mark.both_targets

# The server exits within 10 s of SIGTERM by its own deadline (9 s); the test waits a little
# longer, as a guard against a hang, not as a timing assertion.
EXIT_GUARD = 20
TEXT = "note {} about the {} in drawer {}: " + "some words to take room " * 12


def batch(start: int, n: int = 20) -> dict[str, object]:
    return {"agent_id": "a", "memories": [{"content": TEXT.format(i, "lamp", i % 9)}
                                           for i in range(start, start + n)]}


def server_on(data_dir: Path, logs: Path,
              dakera_command: tuple[list[str], dict[str, str]], **env: str) -> LiveServer:
    server = LiveServer(data_dir, command=dakera_command, extra_env=env)
    server.log_path = logs / f"server-{server.port}.log"  # never on the failing disk
    return server


def sigterm(server: LiveServer) -> int:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(EXIT_GUARD)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        pytest.fail(f"no exit {EXIT_GUARD} s after SIGTERM:\n{server.log()}")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "12m") as mnt:
        yield mnt


def fill_until_refused(http: httpx.Client) -> tuple[list[str], httpx.Response]:
    acked: list[str] = []
    for n in range(0, 100_000, 20):
        r = http.post("/v1/memories/store/batch", json=batch(n))
        if r.status_code != 200:
            return acked, r
        acked += [m["id"] for m in r.json()["stored"]]
    raise AssertionError("the disk never filled")


def test_full_disk(tmp_path: Path, disk: Path,
                   dakera_command: tuple[list[str], dict[str, str]]) -> None:
    server = server_on(disk / "data", tmp_path, dakera_command).start()
    try:
        http = server.http()
        http.timeout = httpx.Timeout(30)
        first = http.post("/v1/memory/store", json={"agent_id": "a", "content": "first"})
        assert first.status_code == 200
        filler = fill(disk, leave=1_500_000)
        acked, refused = fill_until_refused(http)
        acked.append(first.json()["memory"]["id"])
        # A clear error: what is full, and where.
        assert refused.status_code == 507, refused.text
        body = refused.json()
        assert body["code"] == "STORAGE_FULL" and body["status"] == 507
        assert "is full" in body["error"] and str(disk / "data") in body["error"]
        # Later writes are refused too (before anything is embedded); the SDK raises.
        r = http.post("/v1/memory/store", json={"agent_id": "a", "content": "refused"})
        assert r.status_code == 507 and r.json()["code"] == "STORAGE_FULL"
        from dakera.exceptions import DakeraError

        with pytest.raises(DakeraError, match="is full"):
            server.client().store_memory(agent_id="a", content="through the SDK")
        # Reads go on.
        r = http.post("/v1/memory/recall", json={"agent_id": "a", "query": "lamp drawer 3"})
        assert r.status_code == 200 and r.json()["memories"]
        assert http.get(f"/v1/memory/get/{acked[0]}", params={"agent_id": "a"}).status_code == 200
        # Readiness: degraded, with a short reason (no paths, no internal text).
        ready = httpx.get(server.url + "/health/ready")
        assert ready.status_code == 503 and ready.headers["retry-after"]
        assert ready.json()["degraded"] is True
        assert ready.json()["reason"] == "writes fail: disk full"
        assert str(disk) not in ready.text
        health = httpx.get(server.url + "/health").json()
        assert health["status"] == "healthy" and health["degraded"] is True
        metrics = http.get("/metrics").text
        assert 'dakera_storage_degraded{reason="disk full"} 1.0' in metrics
        refused_total = [line for line in metrics.splitlines()
                         if line.startswith("dakera_writes_refused_total ")]
        assert refused_total and float(refused_total[0].split()[1]) >= 2
        # Space comes back: the next store succeeds, no restart.
        filler.unlink()
        r = http.post("/v1/memory/store", json={"agent_id": "a", "content": "after"})
        assert r.status_code == 200, r.text
        acked.append(r.json()["memory"]["id"])
        assert httpx.get(server.url + "/health/ready").status_code == 200
        log = server.log()
        assert "writes refused: the disk holding the data dir" in log
        assert "writes succeed again" in log
        assert "Traceback" not in log
        # kill -9 and restart: every acknowledged write is there.
        server.kill()
        server = server_on(disk / "data", tmp_path, dakera_command).start()
        http = server.http()
        missing = [i for i in acked
                   if http.get(f"/v1/memory/get/{i}", params={"agent_id": "a"}).status_code
                   != 200]
        assert missing == [], f"{len(missing)} of {len(acked)} acknowledged writes lost"
    finally:
        if server.proc and server.proc.poll() is None:
            server.kill()


def test_sigterm_while_the_disk_is_full(tmp_path: Path, disk: Path,
                                        dakera_command: tuple[list[str], dict[str, str]]
                                        ) -> None:
    server = server_on(disk / "data", tmp_path, dakera_command).start()
    http = server.http()
    fill(disk, leave=1_500_000)
    fill_until_refused(http)
    answers: list[object] = []

    def pending_store() -> None:  # in flight when SIGTERM comes
        try:
            answers.append(http.post("/v1/memories/store/batch", json=batch(10**6)).status_code)
        except httpx.HTTPError as exc:
            answers.append(type(exc).__name__)

    clients = [threading.Thread(target=pending_store) for _ in range(4)]
    for t in clients:
        t.start()
    code = sigterm(server)
    for t in clients:
        t.join(EXIT_GUARD)
    assert len(answers) == 4  # each answered (507) or its connection closed: none hangs
    assert code in (0, 1)
    log = server.log()
    assert "shutting down" in log and "Traceback" not in log


def test_sigterm_with_a_slow_client(tmp_path: Path,
                                    dakera_command: tuple[list[str], dict[str, str]]) -> None:
    """A client that sent half a request and went quiet does not hold the shutdown."""
    server = server_on(tmp_path / "data", tmp_path, dakera_command).start()
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    for sock in slow:
        sock.sendall(b"POST /v1/memory/store HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                     b'{"agent_id": "a", "content": "')
    try:
        assert sigterm(server) == 0
    finally:
        for sock in slow:
            sock.close()
    log = server.log()
    assert "shutting down" in log and "client connections still open" in log
    assert "closed " in log  # the service closed: queued writes drained, indexes saved


def test_read_only_filesystem(tmp_path: Path,
                              dakera_command: tuple[list[str], dict[str, str]]) -> None:
    with ext4_loop(tmp_path) as fs:
        server = server_on(fs.mountpoint / "data", tmp_path, dakera_command).start()
        try:
            http = server.http()
            stored = http.post("/v1/memories/store/batch", json=batch(0))
            assert stored.status_code == 200
            fs.make_read_only()
            assert fs.read_only()
            r = http.post("/v1/memory/store", json={"agent_id": "a", "content": "refused"})
            assert r.status_code == 507, r.text
            assert r.json()["code"] == "STORAGE_READ_ONLY"
            assert "read-only" in r.json()["error"]
            r = http.post("/v1/memory/store", json={"agent_id": "a", "content": "again"})
            assert r.status_code == 507
            r = http.post("/v1/memory/recall", json={"agent_id": "a", "query": "lamp drawer 3"})
            assert r.status_code == 200 and r.json()["memories"]
            ready = httpx.get(server.url + "/health/ready")
            assert ready.status_code == 503
            assert ready.json()["reason"] == "writes fail: read-only filesystem"
            assert sigterm(server) in (0, 1)
            log = server.log()
            assert "writes refused: the filesystem holding the data dir" in log
            assert "Traceback" not in log
        finally:
            if server.proc and server.proc.poll() is None:
                server.kill()


def test_read_only_data_dir_at_start(tmp_path: Path, disk: Path,
                                     dakera_command: tuple[list[str], dict[str, str]]) -> None:
    server = server_on(disk / "data", tmp_path, dakera_command).start()
    server.http().post("/v1/memory/store", json={"agent_id": "a", "content": "kept"})
    server.stop()
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        refused = server_on(disk / "data", tmp_path, dakera_command)
        with pytest.raises(RuntimeError, match="exited with 1"):
            refused.start()
        assert "cannot write in the data dir" in refused.log()
        assert "Read-only file system" in refused.log()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    again = server_on(disk / "data", tmp_path, dakera_command).start()
    r = again.http().post("/v1/memory/recall", json={"agent_id": "a", "query": "kept"})
    assert r.json()["memories"][0]["memory"]["content"] == "kept"
    assert again.http().post("/v1/memory/store", json={"agent_id": "a",
                                                       "content": "x"}).status_code == 200
    again.stop()


def test_damaged_index_is_rebuilt_and_recall_goes_on(
        tmp_path: Path, dakera_command: tuple[list[str], dict[str, str]]) -> None:
    data = tmp_path / "data"
    server = server_on(data, tmp_path, dakera_command).start()
    texts = [TEXT.format(i, w, i % 9) for i, w in enumerate(["kettle", "atlas", "violin"] * 20)]
    server.http().post("/v1/memories/store/batch", json={
        "agent_id": "a", "memories": [{"content": t} for t in texts]})
    server.stop()  # saves the index
    path = index_file(data / "indexes", "a")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 2048] = b"\x7f" * 2048
    path.write_bytes(bytes(raw))
    server = server_on(data, tmp_path, dakera_command).start()
    r = server.http().post("/v1/memory/recall", json={"agent_id": "a", "query": texts[4],
                                                      "top_k": 1})
    assert r.status_code == 200 and r.json()["memories"][0]["memory"]["content"] == texts[4]
    log = server.log()
    assert "does not match its checksum: rebuilding" in log
    assert "rebuilding in the background" in log
    assert sigterm(server) == 0


def test_damaged_database_refuses_to_start(
        tmp_path: Path, dakera_command: tuple[list[str], dict[str, str]]) -> None:
    data = tmp_path / "data"
    server = server_on(data, tmp_path, dakera_command).start()
    server.http().post("/v1/memories/store/batch", json=batch(0, 200))
    server.stop()
    db = data / "dakera.db"
    raw = bytearray(db.read_bytes())
    for start in range(2 * 4096, len(raw) - 4096, 3 * 4096):
        raw[start + 8: start + 4096] = os.urandom(4096 - 8)
    db.write_bytes(bytes(raw))
    refused = server_on(data, tmp_path, dakera_command)
    with pytest.raises(RuntimeError, match="exited with 1"):
        refused.start()
    log = refused.log()
    assert f"the database {db} is damaged" in log
    assert "dakera check --data-dir" in log and "restore a backup" in log
    command, env = dakera_command
    check = subprocess.run([*command, "check", "--data-dir", str(data)], capture_output=True,
                           text=True, timeout=120, env={**os.environ, **env})
    assert check.returncode == 1, check.stdout + check.stderr
    assert "PROBLEM  database" in check.stdout


def test_altered_model_refuses_to_start(
        tmp_path: Path, dakera_command: tuple[list[str], dict[str, str]]) -> None:
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "all-minilm-l6-v2", models / "all-minilm-l6-v2")
    model = models / "all-minilm-l6-v2" / "model.onnx"
    expected = json.loads((model.parent / "manifest.json").read_text())["files"]["model.onnx"]
    with model.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    refused = server_on(tmp_path / "data", tmp_path, dakera_command,
                        DAKERA_MODELS_DIR=str(models))
    with pytest.raises(RuntimeError, match="exited with 1"):
        refused.start()
    log = refused.log()
    assert f"the model file {model} is altered" in log and f"expected {expected}" in log
