#!/usr/bin/env python3
"""Concurrency: many clients mixing store, batch store, recall, search, get, update, forget
and batch recall against one server; any 5xx, "database is locked", or unexpected 4xx is a
failure.

    python scripts/mixed_load.py --clients 16 --seconds 60     # make concurrency-test

Each client stores into one of four shared agents, and updates and forgets only memories it
stored itself (so a 404 is never expected); it keeps at most `--keep` memories, forgetting
its oldest beyond that, so that a long run (scripts/soak.py) holds a steady amount of data.
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import corpus, queries
from harness import Client, Server

AGENTS = ("mix-a", "mix-b", "mix-c", "mix-d")


@dataclass
class Stats:
    ops: Counter[str] = field(default_factory=Counter)
    status: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, status: int, ms: float, body: str) -> None:
        with self.lock:
            self.ops[op] += 1
            self.status[status] += 1
            self.latency.setdefault(op, []).append(ms)
            bad = status >= 500 or "locked" in body.lower() or not 200 <= status < 300
            if bad and len(self.failures) < 200:
                self.failures.append(f"{op} -> {status}: {body[:200]}")

    def summary(self) -> str:
        parts = []
        for op, lat in sorted(self.latency.items()):
            lat = sorted(lat)
            parts.append(f"{op} {len(lat)} (p50 {lat[len(lat) // 2]:.0f} ms, p99 "
                         f"{lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.0f} ms)")
        return "; ".join(parts)


class Worker(threading.Thread):
    def __init__(self, port: int, n: int, stats: Stats, deadline: float, texts: list[str],
                 qs: list[str], keep: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.client = Client(port, timeout=120)
        self.n = n
        self.stats = stats
        self.deadline = deadline
        self.texts = texts
        self.qs = qs
        self.keep = keep
        self.rng = random.Random(seed)
        self.mine: list[tuple[str, str]] = []
        self.seq = 0

    def call(self, op: str, method: str, path: str, body: object = None) -> object:
        t = time.perf_counter()
        try:
            status, out = self.client.call(method, path, body)
        except (OSError, http.client.HTTPException) as exc:
            status, out = 599, f"connection error: {exc}"
        self.stats.record(op, status, (time.perf_counter() - t) * 1000, str(out))
        return out if 200 <= status < 300 else None

    def run(self) -> None:
        rng = self.rng
        while time.monotonic() < self.deadline:
            roll = rng.random()
            agent = rng.choice(AGENTS)
            if roll < 0.25 or not self.mine:
                self.seq += 1
                out = self.call("store", "POST", "/v1/memory/store", {
                    "agent_id": agent, "content": f"{rng.choice(self.texts)} #{self.n}."
                    f"{self.seq}", "tags": [f"c{self.n}"], "importance": rng.random(),
                    "metadata": {"client": self.n, "seq": self.seq}})
                if isinstance(out, dict):
                    self.mine.append((agent, out["memory"]["id"]))
            elif roll < 0.3:
                items = [{"content": f"{rng.choice(self.texts)} #{self.n}.{self.seq}.{i}",
                          "tags": [f"c{self.n}"]} for i in range(rng.randint(5, 50))]
                out = self.call("batch_store", "POST", "/v1/memories/store/batch",
                                {"agent_id": agent, "memories": items})
                if isinstance(out, dict):
                    self.mine.extend((agent, m["id"]) for m in out["stored"])
            elif roll < 0.6:
                self.call("recall", "POST", "/v1/memory/recall", {
                    "agent_id": agent, "query": rng.choice(self.qs),
                    "top_k": rng.choice([5, 10, 20]),
                    **({"memory_type": "episodic"} if rng.random() < 0.2 else {})})
            elif roll < 0.65:
                self.call("search", "POST", "/v1/memory/search",
                          {"agent_id": agent, "query": rng.choice(self.qs)})
            elif roll < 0.72:
                a, mid = rng.choice(self.mine)
                self.call("get", "GET", f"/v1/memory/get/{mid}?agent_id={a}")
            elif roll < 0.85:
                a, mid = rng.choice(self.mine)
                body: dict[str, object] = {"importance": rng.random()}
                if rng.random() < 0.5:
                    body["content"] = f"{rng.choice(self.texts)} (edited {self.seq})"
                self.call("update", "PUT", f"/v1/memory/update/{mid}?agent_id={a}", body)
            elif roll < 0.97:
                a, mid = self.mine.pop(rng.randrange(len(self.mine)))
                self.call("forget", "POST", "/v1/memory/forget",
                          {"agent_id": a, "memory_ids": [mid]})
            else:
                self.call("batch_recall", "POST", "/v1/memories/recall/batch",
                          {"agent_id": agent, "filter": {"tags": [f"c{self.n}"]},
                           "limit": 100})
            while len(self.mine) > self.keep:
                a, mid = self.mine.pop(0)
                self.call("forget", "POST", "/v1/memory/forget",
                          {"agent_id": a, "memory_ids": [mid]})
        self.client.close()


def run(port: int, clients: int, seconds: float, keep: int = 300, seed: int = 1,
        tick: Callable[[float], None] | None = None, tick_every: float = 5.0,
        stats: Stats | None = None) -> Stats:
    """Run the mix; `tick(elapsed)` is called every `tick_every` seconds meanwhile."""
    texts = corpus(5000, seed=seed)
    qs = queries(2000, seed=seed, texts=texts)
    stats = stats or Stats()
    start = time.monotonic()
    deadline = start + seconds
    workers = [Worker(port, n, stats, deadline, texts, qs, keep, seed * 1000 + n)
               for n in range(clients)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        time.sleep(min(tick_every, max(0.05, deadline - time.monotonic())))
        if tick is not None and time.monotonic() < deadline:
            tick(time.monotonic() - start)
    for w in workers:
        w.join()
    return stats


def preload(port: int, per_agent: int, seed: int = 2) -> None:
    client = Client(port)
    texts = corpus(per_agent * len(AGENTS), seed=seed)
    for i, agent in enumerate(AGENTS):
        chunk = texts[i * per_agent:(i + 1) * per_agent]
        for j in range(0, len(chunk), 1000):
            client.ok("POST", "/v1/memories/store/batch", {
                "agent_id": agent, "memories": [{"content": t} for t in chunk[j:j + 1000]]})


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--preload", type=int, default=2000, help="memories per agent first")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dakera-mix-") as tmp:
        server = Server(Path(tmp) / "data", env={"DAKERA_LOG_LEVEL": "warning"}).start()
        try:
            preload(server.port, args.preload)
            print(f"{args.clients} clients for {args.seconds:.0f} s over {len(AGENTS)} agents "
                  f"({args.preload} memories each to start with)", flush=True)
            stats = Stats()
            run(server.port, args.clients, args.seconds, seed=args.seed, stats=stats,
                tick=lambda t: print(f"  {t:.0f} s: {sum(stats.ops.values())} requests, "
                                     f"{len(stats.failures)} failures", flush=True),
                tick_every=10)
        finally:
            code = server.stop()
            log = server.log()
    total = sum(stats.ops.values())
    print(f"{total} requests ({total / args.seconds:.0f}/s): {stats.summary()}")
    print(f"statuses: {dict(sorted(stats.status.items()))}")
    locked = "database is locked" in log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    if stats.failures or locked or errors or code != 0:
        print(f"FAILED: {len(stats.failures)} bad answers, 'database is locked' in the log: "
              f"{locked}, {len(errors)} error log lines, exit code {code}")
        for f in [*stats.failures[:20], *errors[:10]]:
            print("  " + f)
        return 1
    print("OK: no 5xx, no 'database is locked', no unexpected 4xx, clean shutdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
