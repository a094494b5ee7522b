#!/usr/bin/env python3
"""SQLite beside PostgreSQL: recall latency over HTTP at each size, and recalls/s with one
server and with two servers on one PostgreSQL database. Prints figures and a markdown table;
asserts nothing.

    make pg-up      # a local PostgreSQL with pgvector on 127.0.0.1:55432
    python scripts/bench_backends.py --pg-url postgresql://postgres@127.0.0.1:55432/postgres
    python scripts/bench_backends.py --pg-url ... --sizes 2000 --queries 200   # a quick look

For each backend, on a fresh data dir (SQLite) or a fresh database made on the PostgreSQL
server of --pg-url (dropped at the end unless --keep-db): batch stores of 1000 corpus memories
(scripts/corpus.py) into one agent up to each size, then at each size recall over HTTP at
concurrency 1 (p50/p95/p99) and concurrency 8 (recalls/s). On PostgreSQL, at each size a
second server is started on the same database and the concurrency-8 run is repeated with the
clients spread over both servers (every other request to each). Each measured query is
distinct; warm-up queries are another set. Everything runs on this machine: the servers,
PostgreSQL and the load generator share its cores, so two servers can only show what one
machine gives (on separate machines each brings its own cores).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench import (  # noqa: E402
    AGENT,
    TOP_K,
    Server,
    batch_stores,
    fmt_lat,
    loadavg,
    log,
    machine,
    post_ok,
    run_clients,
    summary,
    versions,
)
from corpus import corpus, queries  # noqa: E402


def new_database(admin_url: str) -> str:
    """A new, empty database on the server of `admin_url` (a superuser's URL); its URL."""
    import psycopg

    name = f"dakera_bench_{int(time.time())}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def recall_run(ports: list[int], qs: list[str], warm: list[str], concurrency: int
               ) -> dict[str, Any]:
    """Recalls spread over the servers of `ports` (round robin), after a warm-up."""
    turn = itertools.count()

    def work(q: str) -> None:
        port = ports[next(turn) % len(ports)]
        post_ok(port, "/v1/memory/recall", {"agent_id": AGENT, "query": q, "top_k": TOP_K})

    run_clients(concurrency, warm, work)
    lat, wall = run_clients(concurrency, qs, work)
    return {**summary(lat), "qps": len(qs) / wall}


def backend_run(name: str, env: dict[str, str], base: Path, sizes: list[int],
                texts: list[str], q1: list[str], q8: list[str], warm: list[str],
                two_nodes: bool) -> dict[int, dict[str, Any]]:
    log(f"== {name}")
    server = Server(base / f"{name}-data", base / f"{name}.log", extra_env=env)
    out: dict[int, dict[str, Any]] = {}
    stored = 0
    try:
        for size in sizes:
            log(f"batch stores of 1000 up to {size} memories")
            res: dict[str, Any] = {"batch_rate": batch_stores(server, texts[stored:size],
                                                              AGENT)}
            stored = size
            log(f"  {res['batch_rate']:.0f} memories/s")
            time.sleep(2)
            res["c1"] = recall_run([server.port], q1, [f"{w} {size} c1" for w in warm], 1)
            log(f"recall at {size}, concurrency 1: {fmt_lat(res['c1'])}, "
                f"{res['c1']['qps']:.0f}/s")
            res["c8"] = recall_run([server.port], q8, [f"{w} {size} c8" for w in warm], 8)
            log(f"recall at {size}, concurrency 8: {fmt_lat(res['c8'])}, "
                f"{res['c8']['qps']:.0f}/s")
            if two_nodes:
                second = Server(base / f"{name}-data-2", base / f"{name}-2.log", extra_env=env)
                try:
                    res["c8_two"] = recall_run([server.port, second.port], q8,
                                               [f"{w} {size} two" for w in warm], 8)
                finally:
                    second.stop()
                log(f"recall at {size}, concurrency 8 over two servers: "
                    f"{fmt_lat(res['c8_two'])}, {res['c8_two']['qps']:.0f}/s")
            res["rss"] = server.rss()
            res["load"] = loadavg()
            out[size] = res
    finally:
        server.stop()
    return out


def render(results: dict[str, dict[int, dict[str, Any]]], sizes: list[int], command: str,
           loads: list[str]) -> str:
    lines = [f"`{command}`; {machine()}; {versions()}; load average {' -> '.join(loads)}.",
             "",
             "| backend | memories | batch store /s | recall c1 p50 / p95 / p99 (ms) | "
             "recalls/s c1 | recalls/s c8, one server | recalls/s c8, two servers | "
             "server RSS (MB) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, by_size in results.items():
        for size in sizes:
            r = by_size[size]
            c1 = r["c1"]
            two = f"{r['c8_two']['qps']:.0f}" if "c8_two" in r else "n/a"
            lines.append(
                f"| {name} | {size:,} | {r['batch_rate']:.0f} | {c1['p50']:.1f} / "
                f"{c1['p95']:.1f} / {c1['p99']:.1f} | {c1['qps']:.0f} | {r['c8']['qps']:.0f} "
                f"| {two} | {r['rss']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pg-url", required=True,
                        help="a superuser's URL of a PostgreSQL server with pgvector "
                             "(a database is made on it for the run)")
    parser.add_argument("--sizes", default="10000,100000",
                        help="memories in the agent at each recall measurement")
    parser.add_argument("--queries", type=int, default=500, help="measured recalls per run")
    parser.add_argument("--backends", default="sqlite,postgres",
                        help="which backends, in this order")
    parser.add_argument("--keep-db", action="store_true",
                        help="leave the PostgreSQL database in place")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    command = "python scripts/bench_backends.py " + " ".join(
        a if not a.startswith("postgresql://") else "<pg-url>" for a in sys.argv[1:])
    texts = corpus(max(sizes))
    all_q = queries(args.queries * 2 + 50, texts=texts[:min(sizes)])
    q1, q8 = all_q[:args.queries], all_q[args.queries:args.queries * 2]
    warm = all_q[args.queries * 2:]
    loads = [loadavg()]
    log(f"{machine()}; load average {loads[0]}")
    results: dict[str, dict[int, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="dakera-bench-backends-") as tmp:
        for name in args.backends.split(","):
            if name == "sqlite":
                results[name] = backend_run(name, {}, Path(tmp), sizes, texts, q1, q8, warm,
                                            two_nodes=False)
            elif name == "postgres":
                url = new_database(args.pg_url)
                try:
                    results[name] = backend_run(name, {"DAKERA_DATABASE_URL": url}, Path(tmp),
                                                sizes, texts, q1, q8, warm, two_nodes=True)
                finally:
                    if not args.keep_db:
                        drop_database(args.pg_url, url)
            else:
                raise SystemExit(f"unknown backend {name!r}: sqlite or postgres")
            loads.append(loadavg())
    print()
    print(render(results, sizes, command, loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
