"""What the benchmark and the reliability scripts share: a real server in a subprocess, a
cheap keep-alive HTTP client, and checks of a data dir (row counts, index against database).

The tests import it too (tests/test_crash_safety.py and friends), so that the fast variants
in `make test` and the long runs of `make crash-test`, `make soak`, ... are the same code.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KEY = "dk_harness_" + "0123456789abcdef" * 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """`dakera serve` (through scripts/serve_probed.py, which adds a GC probe) on a free
    loopback port over `data_dir`."""

    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None,
                 log_path: Path | None = None, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or data_dir.parent / f"server-{self.port}.log"
        self.gc_file = data_dir.parent / f"gc-{self.port}.json"
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0

    def start(self, timeout: float = 600) -> Server:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
        env.update({"DAKERA_API_KEY": KEY, "DAKERA_PORT": str(self.port),
                    "DAKERA_DATA_DIR": str(self.data_dir), "DAKERA_LOG_LEVEL": "info",
                    "DAKERA_MODELS_DIR": str(ROOT / "models"),
                    "DAKERA_GC_PROBE_FILE": str(self.gc_file),
                    # the load tools measure the server, not the per-key rate limiter
                    "DAKERA_RATE_LIMIT_PER_MINUTE": "0"})
        for name in ("DAKERA_EMBED_THREADS", "DAKERA_SQLITE_SYNCHRONOUS"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(self.extra_env)
        self._log = self.log_path.open("ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "serve_probed.py"), "serve"], env=env,
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        while True:
            if self.ready():
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.02)
        self.start_s = time.perf_counter() - t0
        return self

    def ready(self) -> bool:
        probe = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            probe.request("GET", "/health/ready")
            return probe.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            probe.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss(self) -> float:
        return rss_mb(self.pid)

    def stop(self, timeout: float = 600) -> int:
        """SIGTERM and wait: a clean shutdown (queued writes finish, indexes are saved)."""
        assert self.proc is not None
        self.proc.terminate()
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown at all."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(60)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def gc(self) -> dict[str, Any]:
        for _ in range(20):
            try:
                return dict(json.loads(self.gc_file.read_text()))
            except (OSError, ValueError):
                time.sleep(0.05)
        return {"collections": [0, 0, 0], "pause_ms": [0.0, 0.0, 0.0],
                "max_pause_ms": [0.0, 0.0, 0.0], "frozen": 0, "recent": []}


class Client:
    """JSON over one keep-alive connection per thread: cheap enough that a load generator
    on the same 2 cores leaves most of the CPU to the server."""

    def __init__(self, port: int, key: str | None = KEY, timeout: float = 600) -> None:
        self.port = port
        self.key = key
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=self.timeout)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def raw(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = self._conn()
        hdrs = {"Content-Type": "application/json"}
        if self.key:
            hdrs["Authorization"] = f"Bearer {self.key}"
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body, hdrs)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.getheader("connection", "").lower() == "close":
            self.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = None if body is None else json.dumps(body).encode()
        status, _, data = self.raw(method, path, payload)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, out = self.call(method, path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path} -> {status}: {str(out)[:300]}")
        return out


# -- checks of a data dir ------------------------------------------------------------------

def table_counts(data_dir: Path) -> dict[str, int]:
    """Rows of memories and memory_vectors (they must agree)."""
    from app.store.db import connect

    conn = connect(data_dir / "dakera.db", readonly=True)
    try:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("memories", "memory_vectors")}
    finally:
        conn.close()


def index_against_database(data_dir: Path, model_id: str) -> dict[str, tuple[int, int]]:
    """Load every agent's index as the server does after a crash (saved file + log replay,
    or rebuild) without saving anything; returns agent -> (index count, database count)."""
    from app.index import IndexRegistry
    from app.models import MemoryFilter
    from app.store import SqliteStore

    store = SqliteStore(data_dir / "dakera.db", dimension=384, model_id=model_id)
    try:
        registry = IndexRegistry(store.vectors, data_dir / "indexes", model_id, 64,
                                 lambda fn: store.write(lambda tx: fn()))
        registry.open_all()
        return {agent: (count, len(store.memories.rowids(agent, MemoryFilter(), None)))
                for agent, count in registry.stats().items()}
    finally:
        store.close()


def model_id() -> str:
    """The id the server gives the model (index files carry it)."""
    from app.config import Settings
    from app.embed import load_embedder

    s = Settings.from_env(env={}, models_dir=str(ROOT / "models"))
    return load_embedder(s.embedding_model, Path(s.models_dir), 1).model_id
