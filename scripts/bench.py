#!/usr/bin/env python3
"""Benchmark the server: embedding throughput, store throughput, recall latency over HTTP,
RSS. Prints figures; asserts nothing.

    python scripts/bench.py --memories 10000 --queries 300
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from corpus import corpus, queries  # noqa: E402

KEY = "bench-key"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_embedding(sentences: list[str]) -> dict[str, float]:
    from app.config import Settings
    from app.embed import load_embedder

    s = Settings.from_env()
    embedder = load_embedder(s.embedding_model, Path(s.models_dir), s.embed_threads)
    embedder.embed(sentences[:32])
    out = {}
    for batch in (1, 32):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 3.0:
            chunk = sentences[n % len(sentences): n % len(sentences) + batch]
            if len(chunk) < batch:
                chunk = sentences[:batch]
            embedder.embed(chunk)
            n += batch
        out[f"batch {batch}"] = n / (time.perf_counter() - start)
    return out


class Server:
    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {**os.environ, "DAKERA_API_KEY": KEY, "DAKERA_PORT": str(self.port),
               "DAKERA_DATA_DIR": str(data_dir), "DAKERA_LOG_LEVEL": "warning"}
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        t0 = time.perf_counter()
        while True:
            try:
                if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.perf_counter() - t0 > 60:
                raise SystemExit("server did not start")
            time.sleep(0.02)
        self.start_s = time.perf_counter() - t0

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEY}"},
                            timeout=60)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def store_all(server: Server, agent: str, texts: list[str], concurrency: int) -> float:
    def work(chunk: list[str]) -> None:
        with server.client() as http:
            for text in chunk:
                r = http.post("/v1/memory/store", json={"agent_id": agent, "content": text})
                r.raise_for_status()

    chunks = [texts[i::concurrency] for i in range(concurrency)]
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, chunks))
    return len(texts) / (time.perf_counter() - start)


def recall_latencies(server: Server, agent: str, qs: list[str], top_k: int) -> list[float]:
    out = []
    with server.client() as http:
        for q in qs[:20]:  # warm-up
            http.post("/v1/memory/recall", json={"agent_id": agent, "query": q, "top_k": top_k})
        for q in qs:
            t = time.perf_counter()
            r = http.post("/v1/memory/recall", json={"agent_id": agent, "query": q,
                                                     "top_k": top_k})
            out.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--store-concurrency", type=int, default=4)
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    texts = corpus(args.memories)
    qs = queries(args.queries)

    emb = bench_embedding(texts[:2000])
    for name, rate in emb.items():
        print(f"embedding throughput, {name}: {rate:.0f} sentences/s")

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        print(f"start to ready: {server.start_s:.2f} s")
        time.sleep(1)
        print(f"idle RSS: {rss_mb(server.proc.pid):.0f} MB")
        rate = store_all(server, "bench", texts, args.store_concurrency)
        print(f"single stores over HTTP, concurrency {args.store_concurrency}: "
              f"{rate:.0f} memories/s ({args.memories} memories)")
        lat = recall_latencies(server, "bench", qs, args.top_k)
        print(f"recall over HTTP at {args.memories} memories, concurrency 1, top_k "
              f"{args.top_k}: p50 {pct(lat, 50):.2f} ms, p95 {pct(lat, 95):.2f} ms, "
              f"p99 {pct(lat, 99):.2f} ms, mean {statistics.mean(lat):.2f} ms")
        print(f"RSS after load: {rss_mb(server.proc.pid):.0f} MB")
        db = Path(tmp) / "dakera.db"
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        print(f"on disk: {size / 1e6:.1f} MB ({size / args.memories:.0f} bytes per memory; "
              f"database {db.stat().st_size / 1e6:.1f} MB)")
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
