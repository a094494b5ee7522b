#!/usr/bin/env python3
"""LoCoMo retrieval benchmark through the public HTTP API, as a user's agent would run it.

Starts its own server (temp data dir, API key, free loopback port), stores one memory per
conversation turn with the batch endpoint (one agent per conversation, one session per
conversation session, the session's date as event_time, the turn's dia_id in metadata),
then asks one `POST /v1/memory/recall` per question with `top_k` 20 and nothing else, and
scores the dia_ids of the first k memories of each response with the fixed LoCoMo scorer
(`score.py`, read from beside the data file unless --scorer says otherwise).

    python scripts/bench_locomo.py [--data PATH] [--scorer PATH] [--json OUT]

Only the first `top_k` items of `memories` are read, in the order the server returns them:
whatever else the server appends (context, neighbourhood) is not counted.

With --crowd, each configuration is run twice: the conversations alone in a server, and
beside other agents (--crowd-agents agents holding --crowd-size memories of other text each:
the synthetic corpus of scripts/corpus.py, a different seed per agent), stored first, as a
server holding many agents would. One agent's answers must not depend on what others store.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
# The development split lives in the workplace's shared/ folder, beside the checkout.
SHARED_DATA = [ROOT.parent / "shared" / "locomo" / "locomo_dev.json",
               Path("/work/shared/locomo/locomo_dev.json")]
DEFAULT_DATA = os.environ.get("LOCOMO_DATA") or str(
    next((p for p in SHARED_DATA if p.is_file()), SHARED_DATA[-1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import corpus  # noqa: E402

KEY = "bench-locomo-key"
BATCH = 1000
TOP_K = 20
KS = (5, 10, 20)


def load_scorer(path: Path) -> ModuleType:
    """Import the fixed scorer from its file (it is not part of this repository)."""
    if not path.is_file():
        raise SystemExit(f"scorer not found: {path} (pass --scorer PATH)")
    spec = importlib.util.spec_from_file_location("locomo_score", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def session_time(text: str) -> int | None:
    """'1:56 pm on 8 May, 2023' -> unix seconds (UTC); None when it does not parse."""
    cleaned = " ".join(text.replace(",", " ").split()).lower()
    for fmt in ("%I:%M %p on %d %B %Y", "%I:%M%p on %d %B %Y", "%d %B %Y"):
        try:
            return int(datetime.strptime(cleaned, fmt).replace(tzinfo=UTC).timestamp())
        except ValueError:
            continue
    return None


def turn_content(turn: dict[str, Any]) -> str:
    text = f"{turn['speaker']}: {turn['text']}"
    if turn.get("blip_caption"):
        text += f" [shares {turn['blip_caption']}]"
    return text


def agent_of(sample_id: str) -> str:
    return f"locomo-{sample_id}"


def conversation_memories(sample: dict[str, Any], scorer: ModuleType) -> list[dict[str, Any]]:
    """One batch-store item per turn, in conversation order."""
    items = []
    for session_no, date_time, turn in scorer.iter_turns(sample):
        item: dict[str, Any] = {
            "content": turn_content(turn),
            "session_id": f"{sample['sample_id']}:session_{session_no}",
            "metadata": {"dia_id": turn["dia_id"]},
        }
        when = session_time(date_time) if date_time else None
        if when is not None:
            item["event_time"] = when
        items.append(item)
    return items


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Server:
    """`python -m app serve` on a free loopback port over a temp data dir."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
        full_env.update({"DAKERA_API_KEY": KEY, "DAKERA_PORT": str(self.port),
                         "DAKERA_DATA_DIR": str(data_dir), "DAKERA_LOG_LEVEL": "warning",
                         **env})
        self.log = (data_dir / "server.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], env=full_env,
                                     cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"server did not start; see {data_dir / 'server.log'}")
            time.sleep(0.05)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEY}"},
                            timeout=300)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        self.log.close()


def ingest(http: httpx.Client, data: list[dict[str, Any]], scorer: ModuleType) -> tuple[int, float]:
    """Store every conversation; returns (memories stored, seconds)."""
    stored = 0
    start = time.perf_counter()
    for sample in data:
        items = conversation_memories(sample, scorer)
        for i in range(0, len(items), BATCH):
            r = http.post("/v1/memories/store/batch",
                          json={"agent_id": agent_of(sample["sample_id"]),
                                "memories": items[i:i + BATCH]})
            r.raise_for_status()
            stored += r.json()["stored_count"]
    return stored, time.perf_counter() - start


def crowd(http: httpx.Client, agents: int, size: int) -> int:
    """Other agents' memories, stored before the scored conversations."""
    stored = 0
    for a in range(agents):
        texts = corpus(size, seed=1000 + a)
        for i in range(0, size, BATCH):
            r = http.post("/v1/memories/store/batch", json={
                "agent_id": f"crowd-{a}", "memories": [{"content": t}
                                                       for t in texts[i:i + BATCH]]})
            r.raise_for_status()
            stored += r.json()["stored_count"]
    return stored


def warm_up(http: httpx.Client, sample: dict[str, Any], scorer: ModuleType) -> None:
    """Ten recalls on a throwaway agent: warm the server's code paths without touching the
    scored agents (a recall reinforces what it returns) or their questions' cached
    embeddings."""
    agent = "locomo-warm-up"
    items = conversation_memories(sample, scorer)[:50]
    http.post("/v1/memories/store/batch", json={"agent_id": agent, "memories": items}
              ).raise_for_status()
    for qa in sample["qa"][:10]:
        http.post("/v1/memory/recall", json={"agent_id": agent, "top_k": TOP_K,
                                             "query": f"warm-up: {qa['question']}"}
                  ).raise_for_status()


def run(data: list[dict[str, Any]], scorer: ModuleType, options: dict[str, Any],
        env: dict[str, str], crowd_spec: tuple[int, int] | None
        ) -> tuple[dict[str, Any], list[float], float]:
    """One server: (the crowd, then) the conversations stored, every question asked."""
    with tempfile.TemporaryDirectory(prefix="bench-locomo-") as tmp:
        server = Server(Path(tmp), env)
        try:
            with server.client() as http:
                if crowd_spec is not None:
                    t = time.perf_counter()
                    n = crowd(http, *crowd_spec)
                    print(f"crowd: {n} memories of {crowd_spec[0]} other agents in "
                          f"{time.perf_counter() - t:.1f} s")
                stored, ingest_s = ingest(http, data, scorer)
                print(f"ingest: {stored} memories in {ingest_s:.1f} s "
                      f"({stored / ingest_s:.0f} memories/s, batch store)")
                latencies: list[float] = []

                def recall(conv_id: str, question: str, k: int) -> list[str]:
                    body = {"agent_id": agent_of(conv_id), "query": question, "top_k": TOP_K,
                            **options}
                    t = time.perf_counter()
                    r = http.post("/v1/memory/recall", json=body)
                    latencies.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                    first = r.json()["memories"][:TOP_K]  # what a client reading top_k gets
                    return [m["memory"]["metadata"].get("dia_id", "") for m in first][:k]

                warm_up(http, data[0], scorer)
                latencies.clear()
                res = scorer.evaluate(recall, data, ks=KS)
        finally:
            server.stop()
    return res, latencies, ingest_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help="LoCoMo-schema JSON (default: $LOCOMO_DATA or %(default)s)")
    parser.add_argument("--scorer", help="score.py (default: beside the data file)")
    parser.add_argument("--json", help="write the scorer's summary and per-question rows here")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                        help="extra recall request field, for ablations (default: none)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra server environment, for ablations (default: none)")
    parser.add_argument("--crowd", action="store_true",
                        help="also run beside other agents, and report both")
    parser.add_argument("--crowd-agents", type=int, default=8, help="(default: %(default)s)")
    parser.add_argument("--crowd-size", type=int, default=700,
                        help="memories per other agent (default: %(default)s)")
    args = parser.parse_args()

    data_path = Path(args.data)
    if not data_path.is_file():
        raise SystemExit(f"data not found: {data_path} (pass --data PATH or set LOCOMO_DATA)")
    scorer = load_scorer(Path(args.scorer) if args.scorer else data_path.parent / "score.py")
    data = scorer.load_locomo(str(data_path))
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    env = dict(e.split("=", 1) for e in args.env)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    print(f"data: {data_path} ({len(data)} conversations)")
    if options or env:
        print(f"ablation: recall options {options}, server env {env}")

    results = {}
    for crowded in ([False, True] if args.crowd else [False]):
        label = (f"beside {args.crowd_agents} other agents of {args.crowd_size} memories"
                 if crowded else "alone")
        print(f"\n=== the conversations {label} ===")
        res, latencies, ingest_s = run(data, scorer, options, env,
                                       (args.crowd_agents, args.crowd_size) if crowded else None)
        scorer.print_report(res, metrics=("any", "all"))
        print(f"\nrecall over HTTP ({len(latencies)} queries, top_k {TOP_K}, concurrency 1): "
              f"p50 {pct(latencies, 50):.1f} ms, p95 {pct(latencies, 95):.1f} ms, "
              f"mean {statistics.mean(latencies):.1f} ms")
        results[label] = {**res, "latency_ms": latencies, "ingest_s": ingest_s}
    if args.crowd:
        alone, beside = (results[k]["summary"]["overall"] for k in results)
        print("\nbeside others minus alone (points): " + ", ".join(
            f"{m}@{k} {100 * (beside[f'{m}@{k}'] - alone[f'{m}@{k}']):+.1f}"
            for m in ("any", "all") for k in KS))
    if args.json:  # one result, or {"alone": ..., "beside others": ...} with --crowd
        out = ({"alone" if i == 0 else "beside others": r
                for i, r in enumerate(results.values())} if args.crowd
               else next(iter(results.values())))
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
