#!/usr/bin/env python3
"""Recall over HTTP, A/B: latency at concurrency 1 and recalls/s at 1 and 8, of two source
trees over copies of one filled data dir, in interleaved rounds (this machine is shared: its
load drifts, so figures are only compared within one run).

    python scripts/bench.py --sizes 100000 --keep /tmp/b100k    # fill a data dir once
    python scripts/bench_recall_ab.py --data /tmp/b100k/data --base-ref 1125fff
    python scripts/bench_recall_ab.py --data /tmp/b100k/data --env-b DAKERA_EMBED_THREADS=2

A is the commit --base-ref (this tree when omitted) and B this tree; --env-a / --env-b add
settings to one side. Each side gets its own copy of the data dir (a newer tree may migrate
its copy). Each round starts a fresh server of each side in turn (the order alternates),
warms it with 60 recalls, then runs --queries recalls at concurrency 1 and --queries at 8
(top_k 10, distinct queries from scripts/corpus.py, agent `bench` as bench.py fills it).
Prints each round, the medians, and the load average. Asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_write import KEY, ROOT, Server, export_tree, loadavg
from corpus import corpus, queries

AGENT = "bench"


def run(port: int, qs: list[str], concurrency: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, recalls/s) of these queries over `concurrency` connections."""
    lat: list[float] = []
    lock = threading.Lock()

    def work(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for q in chunk:
            body = json.dumps({"agent_id": AGENT, "query": q, "top_k": 10})
            t = time.perf_counter()
            conn.request("POST", "/v1/memory/recall", body,
                         {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"recall answered {response.status}")
            with lock:
                lat.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=work, args=(qs[i::concurrency],))
               for i in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], len(lat) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", required=True, help="a filled data dir (bench.py --keep)")
    parser.add_argument("--base-ref", help="the commit measured as A (default: this tree)")
    parser.add_argument("--env-a", action="append", default=[], help="KEY=VALUE for A")
    parser.add_argument("--env-b", action="append", default=[], help="KEY=VALUE for B")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=400, help="per concurrency per run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dakera-recall-ab-"))
    try:
        trees = {"A": export_tree(args.base_ref, work) if args.base_ref else ROOT, "B": ROOT}
        envs = {"A": dict(x.split("=", 1) for x in args.env_a),
                "B": dict(x.split("=", 1) for x in args.env_b)}
        data = {}
        for side in "AB":
            data[side] = work / f"data-{side}"
            shutil.copytree(args.data, data[side])
        print(f"A = {args.base_ref or 'this tree'} {envs['A'] or ''}, B = this tree ({ROOT}) "
              f"{envs['B'] or ''}; load average {loadavg()}", flush=True)
        pool = queries(args.queries * 2 * args.rounds * 2 + 60 * 2 * args.rounds,
                       texts=corpus(10_000))
        results: dict[str, list[tuple[tuple[float, float, float], ...]]] = {"A": [], "B": []}
        for r in range(args.rounds):
            for side in ("AB" if r % 2 == 0 else "BA"):
                saved = {k: os.environ.get(k) for k in envs[side]}
                os.environ.update(envs[side])
                try:
                    server = Server(trees[side], data[side], work / f"server-{side}.log")
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                try:
                    take, pool = pool[:60], pool[60:]
                    run(server.port, take, 1)  # warm
                    c1q, c8q, pool = (pool[:args.queries], pool[args.queries:2 * args.queries],
                                      pool[2 * args.queries:])
                    c1, c8 = run(server.port, c1q, 1), run(server.port, c8q, 8)
                finally:
                    server.stop()
                results[side].append((c1, c8))
                print(f"round {r + 1} {side}: c1 p50 {c1[0]:.2f} / p99 {c1[1]:.2f} ms, "
                      f"{c1[2]:.0f}/s; c8 p50 {c8[0]:.1f} ms, {c8[2]:.0f}/s "
                      f"({c8[2] / c1[2]:.2f}x) (load {loadavg()})", flush=True)
        print(f"\nmedians over {args.rounds} rounds (load average at the end {loadavg()}):")
        for side in "AB":
            rs = results[side]
            p50 = statistics.median(x[0][0] for x in rs)
            c1s = statistics.median(x[0][2] for x in rs)
            c8s = statistics.median(x[1][2] for x in rs)
            print(f"  {side}: c1 p50 {p50:.2f} ms, {c1s:.0f} recalls/s; c8 {c8s:.0f} "
                  f"recalls/s ({c8s / c1s:.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
