#!/usr/bin/env python3
"""What metrics cost a recall: the same data dir served three times (metrics off, metrics on,
metrics on plus the access log), recalls sent to the three servers interleaved (the same
query to each in turn, the order rotating), latency measured by the client.

    python scripts/bench_metrics.py --memories 2000 --queries 1500

Prints p50, p90 and the mean per configuration, the p50 difference against "off", and the
median of the paired differences (each query's latency minus the same query's on the "off"
server, sent moments apart: robust to load that drifts during the run). Then the cost of
the hooks themselves, timed in-process: what one recall request adds (the HTTP request
counter and histogram, the stage histograms, the recall counters).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import corpus, queries
from harness import Client, Server

CONFIGS = {
    "metrics off": {"DAKERA_METRICS": "false", "DAKERA_ACCESS_LOG": "false"},
    "metrics on": {"DAKERA_METRICS": "true", "DAKERA_ACCESS_LOG": "false"},
    "metrics + access log": {"DAKERA_METRICS": "true", "DAKERA_ACCESS_LOG": "true"},
}
AGENT = "bench"


def load(data_dir: Path, n: int) -> None:
    server = Server(data_dir, env={"DAKERA_LOG_LEVEL": "warning"}).start()
    client = Client(server.port)
    texts = corpus(n)
    for i in range(0, n, 500):
        client.ok("POST", "/v1/memories/store/batch", {
            "agent_id": AGENT, "memories": [{"content": t} for t in texts[i:i + 500]]})
    client.close()
    server.stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dakera-bench-metrics-") as tmp:
        base = Path(tmp) / "base"
        t0 = time.perf_counter()
        load(base / "data", args.memories)
        print(f"loaded {args.memories} memories in {time.perf_counter() - t0:.0f} s")
        servers: dict[str, Server] = {}
        for i, (name, env) in enumerate(CONFIGS.items()):
            data = Path(tmp) / f"c{i}" / "data"
            shutil.copytree(base / "data", data)
            servers[name] = Server(data, env={**env, "DAKERA_LOG_LEVEL": "info"}).start()
        clients = {name: Client(s.port) for name, s in servers.items()}
        names = list(CONFIGS)
        qs = queries(args.warmup + args.queries, texts=corpus(args.memories))
        latencies: dict[str, list[float]] = {name: [] for name in names}
        try:
            for i, q in enumerate(qs):
                body = {"agent_id": AGENT, "query": q, "top_k": 10}
                rot = i % len(names)
                for name in names[rot:] + names[:rot]:
                    start = time.perf_counter()
                    clients[name].ok("POST", "/v1/memory/recall", body)
                    if i >= args.warmup:
                        latencies[name].append((time.perf_counter() - start) * 1000)
        finally:
            for name, server in servers.items():
                clients[name].close()
                server.stop()
    load_avg = os.getloadavg()
    print(f"{args.queries} recalls per configuration, interleaved, top_k 10, "
          f"{args.memories} memories; load average {load_avg[0]:.2f} {load_avg[1]:.2f} "
          f"{load_avg[2]:.2f}")
    base = latencies[names[0]]
    off = pct(base, 0.5)
    for name in names:
        values = latencies[name]
        p50 = pct(values, 0.5)
        paired = statistics.median(v - b for v, b in zip(values, base, strict=True))
        print(f"  {name:22s} p50 {p50:7.3f} ms  p90 {pct(values, 0.9):7.3f} ms  mean "
              f"{statistics.fmean(values):7.3f} ms  p50 vs off {100 * (p50 - off) / off:+5.1f}%"
              f"  paired median {paired * 1000:+7.1f} us ({100 * paired / off:+5.2f}%)")
    hooks = hook_cost()
    print(f"  the hooks of one recall request, in-process: {hooks:.1f} us "
          f"({100 * hooks / 1000 / off:.2f}% of the 'off' p50)")
    return 0


def hook_cost(n: int = 20_000) -> float:
    """Microseconds the metrics hooks add to one recall request."""
    from app.config import Settings
    from app.service.events import EventBus
    from app.service.metrics import Metrics

    metrics = Metrics(Settings.from_env(env={}), model="m", ready=lambda: True,
                      uptime=lambda: 0.0, events=EventBus(), now=lambda: 0)
    stages = {"embed": 0.004, "vector": 0.001, "bm25": 0.002, "fusion": 0.001,
              "load": 0.001, "neighbourhood": 0.0005}
    start = time.perf_counter()
    for _ in range(n):
        metrics.observe_request("POST", "/v1/memory/recall", 200, 0.012)
        metrics.observe_recall(stages, 10, search=False)
    return (time.perf_counter() - start) / n * 1e6


if __name__ == "__main__":
    sys.exit(main())
