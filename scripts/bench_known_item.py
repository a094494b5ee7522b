#!/usr/bin/env python3
"""Known-item recall benchmark through the public HTTP API: a second workload beside LoCoMo.

An agent keeps memories of everyday facts, plans, purchases, orders and incidents (the
synthetic corpus of scripts/corpus.py, which knows the template and fields of each memory);
the user later asks about one of them in other words ("Where did Calvin lose the laptop?"
for "Calvin lost the laptop somewhere in Kyoto on Friday."). The memories that answer a
question are known (the same template with the same values in the fields it names, at most
three), so each recall is scored by the rank of the first of them.

Starts its own server (temp data dir, API key, free loopback port), stores --others other
agents of --other-size memories first (a server holds many agents), then --size memories in
the scored agent, in sessions of --session-size memories one day apart (event_time), with
the batch endpoint; asks --queries questions with `top_k` 10 and nothing else, and prints
hit@1/5/10, MRR@10 and recall latency over HTTP (p50/p95, concurrency 1, after 10 unscored
warm-up queries on another agent).

    python scripts/bench_known_item.py [--size 5000] [--queries 500] [--json OUT]
                                       [--env NAME=VALUE] [--option KEY=JSON]

--env and --option switch a lever exactly as in scripts/bench_locomo.py, so one lever can be
measured on both workloads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_locomo import BATCH, Server, pct
from corpus import known_item_queries, labelled_corpus

TOP_K = 10
KS = (1, 5, 10)
AGENT = "known-item"
DAY = 86400
START = 1_672_531_200  # 2023-01-01T00:00:00Z: the first session's event time


def memories(texts: list[str], session_size: int, prefix: str) -> list[dict[str, Any]]:
    """Batch-store items: one session per `session_size` memories, a day apart; the
    memory's index in metadata (what the scorer reads back)."""
    return [{"content": t, "session_id": f"{prefix}:session_{i // session_size}",
             "event_time": START + (i // session_size) * DAY + (i % session_size) * 60,
             "metadata": {"item": i}} for i, t in enumerate(texts)]


def store(http: Any, agent: str, items: list[dict[str, Any]]) -> int:
    stored = 0
    for i in range(0, len(items), BATCH):
        r = http.post("/v1/memories/store/batch",
                      json={"agent_id": agent, "memories": items[i:i + BATCH]})
        r.raise_for_status()
        stored += r.json()["stored_count"]
    return stored


def score(ranks: list[int | None]) -> dict[str, float]:
    """hit@k: a memory that answers is among the first k; MRR over the first TOP_K."""
    n = len(ranks) or 1
    out = {f"hit@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in KS}
    out["mrr"] = sum(1 / r for r in ranks if r is not None) / n
    return out


def run(args: argparse.Namespace, options: dict[str, Any], env: dict[str, str]
        ) -> dict[str, Any]:
    items = labelled_corpus(args.size, seed=args.seed)
    questions = known_item_queries(items, args.queries, seed=args.seed + 1)
    with tempfile.TemporaryDirectory(prefix="bench-known-item-") as tmp:
        server = Server(Path(tmp), env)
        try:
            with server.client() as http:
                t = time.perf_counter()
                others = sum(
                    store(http, f"other-{a}", memories(
                        [text for text, _, _ in labelled_corpus(args.other_size,
                                                                seed=2000 + a)],
                        args.session_size, f"other-{a}"))
                    for a in range(args.others))
                stored = store(http, AGENT, memories([text for text, _, _ in items],
                                                     args.session_size, AGENT))
                ingest_s = time.perf_counter() - t
                print(f"ingest: {stored} memories in the scored agent and {others} in "
                      f"{args.others} other agents in {ingest_s:.1f} s (batch store)")
                for q, _ in known_item_queries(labelled_corpus(200, seed=3000), 10, seed=1):
                    http.post("/v1/memory/recall", json={
                        "agent_id": "other-0", "query": f"warm-up: {q}", "top_k": TOP_K}
                              ).raise_for_status()
                latencies: list[float] = []
                rows = []
                for question, answers in questions:
                    body = {"agent_id": AGENT, "query": question, "top_k": TOP_K, **options}
                    t = time.perf_counter()
                    r = http.post("/v1/memory/recall", json=body)
                    latencies.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                    got = [m["memory"]["metadata"].get("item")
                           for m in r.json()["memories"][:TOP_K]]
                    wanted = set(answers)
                    rank = next((i + 1 for i, item in enumerate(got) if item in wanted), None)
                    rows.append({"question": question, "answers": answers,
                                 "answer_texts": [items[i][0] for i in answers],
                                 "rank": rank, "got": got})
        finally:
            server.stop()
    return {"summary": score([row["rank"] for row in rows]), "rows": rows,
            "latency_ms": latencies, "ingest_s": ingest_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=5000,
                        help="memories in the scored agent (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=500, help="(default: %(default)s)")
    parser.add_argument("--others", type=int, default=4,
                        help="other agents, stored first (default: %(default)s)")
    parser.add_argument("--other-size", type=int, default=1000,
                        help="memories per other agent (default: %(default)s)")
    parser.add_argument("--session-size", type=int, default=25,
                        help="memories per session, one session a day (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="(default: %(default)s)")
    parser.add_argument("--json", help="write the summary and per-question rows here")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                        help="extra recall request field, for ablations (default: none)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra server environment, for ablations (default: none)")
    args = parser.parse_args()
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    env = dict(e.split("=", 1) for e in args.env)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    if options or env:
        print(f"ablation: recall options {options}, server env {env}")
    res = run(args, options, env)
    s = res["summary"]
    lat = res["latency_ms"]
    print(f"\nknown-item recall ({len(res['rows'])} questions, {args.size} memories): "
          + ", ".join(f"{name} {100 * value:.1f}" for name, value in s.items()))
    print(f"recall over HTTP ({len(lat)} queries, top_k {TOP_K}, concurrency 1): "
          f"p50 {pct(lat, 50):.1f} ms, p95 {pct(lat, 95):.1f} ms, "
          f"mean {statistics.mean(lat):.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
