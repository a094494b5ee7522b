"""Export and import throughput, and the server's memory meanwhile, at 100,000 memories.

    .venv/bin/python scripts/bench_transfer.py [--memories 100000] [--work DIR]

Over HTTP against real servers (the real model), in this order:
1. import N generated memories without vectors into server A (every one embedded);
2. export them from A as JSON lines with vectors, then without;
3. import the export with vectors into a fresh server B (nothing embedded);
4. a backup of A, its download (gzip), and a restore of it into B.
Each phase reports memories/s and the server's peak RSS while it ran (sampled every 0.1 s
from /proc; its RSS before the phase beside it). The machine's load average is printed: the
figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import corpus  # noqa: E402
from harness import KEY, Server, rss_mb  # noqa: E402

AGENT = "bench"


class Peak:
    """The peak RSS of a process while a block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_mb(pid)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def generate(path: Path, n: int) -> None:
    rng = random.Random(5)
    with path.open("w") as f:
        for i, text in enumerate(corpus.corpus(n, seed=5)):
            row: dict[str, Any] = {"content": text, "tags": rng.sample(
                ["work", "home", "travel", "food", "health"], 2), "metadata": {"n": i},
                "memory_type": rng.choice(["episodic", "semantic"]),
                "created_at": 1_750_000_000 + i}
            if i % 2:
                row["session_id"] = f"s-{i // 100}"
            f.write(json.dumps(row) + "\n")


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"},
                        timeout=httpx.Timeout(3600, connect=10))


def import_file(server: Server, path: Path) -> dict[str, Any]:
    with client(server) as http, path.open("rb") as f:
        r = http.post("/v1/import", params={"agent_id": AGENT, "wait": 0},
                      files={"file": (path.name, f, "application/x-ndjson")})
        r.raise_for_status()
        job = r.json()
        while job["status"] in ("queued", "running"):
            time.sleep(0.5)
            job = http.get(f"/v1/import/{job['job_id']}/status").json()
    if job["status"] != "done":
        raise RuntimeError(f"import {job['status']}: {job['errors'][-3:]}")
    return dict(job)


def export_file(server: Server, path: Path, vectors: bool) -> int:
    with client(server) as http, path.open("wb") as out, http.stream(
            "GET", "/v1/export", params={"agent_id": AGENT, "include_vectors": vectors,
                                         "include_sessions": True}) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            out.write(chunk)
    return path.stat().st_size


def phase(results: list[dict[str, Any]], name: str, server: Server, n: int,
          fn: Callable[[], Any]) -> Any:
    print(f"{name} ...", flush=True)
    with Peak(server.pid) as peak:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    row = {"phase": name, "memories": n, "seconds": round(seconds, 1),
           "per_second": round(n / seconds) if n else None,
           "rss_before_mb": round(peak.before), "rss_peak_mb": round(peak.peak),
           "load": os.getloadavg()[0]}
    results.append(row)
    print(f"  {row}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=None,
                        help="Working directory (default: a temporary one).")
    parser.add_argument("--model", default=None,
                        help="DAKERA_EMBEDDING_MODEL of both servers (default: the real "
                             "model; 'hash' measures everything but the embedding itself).")
    args = parser.parse_args()
    n = args.memories
    work = args.work or Path(tempfile.mkdtemp(prefix="dakera-bench-transfer-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores; work {work}")
    source = work / "generated.jsonl"
    generate(source, n)
    results: list[dict[str, Any]] = []
    env = {"DAKERA_EMBEDDING_MODEL": args.model} if args.model else {}
    print(f"model: {args.model or 'the default (all-minilm-l6-v2)'}")
    a = Server(work / "a" / "data", env=env).start()
    b = Server(work / "b" / "data", env=env).start()
    try:
        job = phase(results, "import, embedding every memory", a, n,
                    lambda: import_file(a, source))
        assert job["imported"] == n and job["reembedded"] == n, job
        with_vectors = work / "export-vectors.jsonl"
        size = phase(results, "export with vectors", a, n,
                     lambda: export_file(a, with_vectors, True))
        print(f"  {size / 1e6:.0f} MB")
        size = phase(results, "export without vectors", a, n,
                     lambda: export_file(a, work / "export-plain.jsonl", False))
        print(f"  {size / 1e6:.0f} MB")
        job = phase(results, "import with vectors (none embedded)", b, n,
                    lambda: import_file(b, with_vectors))
        assert job["imported"] == n and job["reembedded"] == 0, job
        with client(a) as http:
            made = phase(results, "backup (hot, VACUUM INTO)", a, n, lambda: http.post(
                "/v1/admin/backups", json={"name": "bench"}).json()["backup"])
            print(f"  {made['size_bytes'] / 1e6:.0f} MB")
            packed = work / "backup.db.gz"

            def download() -> int:
                with packed.open("wb") as out, http.stream(
                        "GET", f"/v1/admin/backups/{made['backup_id']}/download") as r:
                    for chunk in r.iter_bytes():
                        out.write(chunk)
                return packed.stat().st_size

            size = phase(results, "backup download (gzip)", a, n, download)
            print(f"  {size / 1e6:.0f} MB")
        with client(b) as http:
            def restore() -> dict[str, Any]:
                with packed.open("rb") as f:
                    up = http.post("/v1/admin/backups/upload", content=f,
                                   headers={"Content-Type": "application/gzip"}).json()
                return dict(http.post("/v1/admin/backups/restore", params={"wait": 3600},
                                      json={"backup_id": up["backup"]["backup_id"]}).json())

            status = phase(results, "backup upload + restore (indexes rebuilt)", b, n, restore)
            assert status["status"] == "completed", status
    finally:
        a.stop()
        b.stop()
    print()
    print("| phase | memories/s | seconds | server RSS before -> peak (MB) | load |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['phase']} | {r['per_second']} | {r['seconds']} | "
              f"{r['rss_before_mb']} -> {r['rss_peak_mb']} | {r['load']:.1f} |")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
