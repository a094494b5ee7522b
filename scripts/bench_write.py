#!/usr/bin/env python3
"""The write path, A/B: single-store latency and batch-store throughput of two source trees,
measured in interleaved rounds on the same machine (this one is shared: its load drifts, so
figures are only compared within one run).

    python scripts/bench_write.py --base-ref 0ce3fd4        # that commit (A) vs this tree (B)
    python scripts/bench_write.py --base-ref main --rounds 5 --single 300 --batches 3
    python scripts/bench_write.py --store-path   # this tree, graph+entities off vs on

--store-path measures the store path alone: in-process, with the deterministic test embedder
(which costs almost nothing), this tree with DAKERA_GRAPH_ON_STORE and
DAKERA_EXTRACT_ENTITIES off and on, in interleaved rounds.

Each round starts a fresh server of each tree in turn (the order alternates between rounds)
and, over HTTP on one keep-alive connection:

1. single stores at concurrency 1 (after 20 warm-up stores): the p50 and p95 latency;
2. batch stores of 1000 memories: memories per second over the batches.

Memories come from scripts/corpus.py (names, places, ids: many entities to extract and to
link), grouped ten to a session as a conversation is, so every kind of edge is made. Nothing
else runs in the server meanwhile. Prints each round and the medians, with the load average.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from corpus import corpus  # noqa: E402

KEY = "bench-key"
SESSION_SIZE = 10


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def export_tree(ref: str, into: Path) -> Path:
    """The source tree of a commit (git archive), with this checkout's models linked in."""
    archive = into / "base.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref], check=True)
    tree = into / "base"
    tree.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


class Server:
    def __init__(self, tree: Path, data_dir: Path, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")},
               "DAKERA_API_KEY": KEY, "DAKERA_PORT": str(self.port),
               "DAKERA_DATA_DIR": str(data_dir), "DAKERA_LOG_LEVEL": "warning",
               "DAKERA_MODELS_DIR": str(ROOT / "models"), "PYTHONPATH": str(tree)}
        self._log = log.open("ab")
        # -m with cwd = the tree: `app` is imported from that tree, not from the venv's
        # editable install of this checkout.
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], env=env,
                                     cwd=tree, stdout=self._log, stderr=subprocess.STDOUT)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server of {tree} exited; see {log}")
            try:
                if self.call("GET", "/health/ready", None)[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                self.conn.close()
            time.sleep(0.05)
        raise SystemExit(f"server of {tree} not ready; see {log}")

    def call(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, payload, {"Authorization": f"Bearer {KEY}",
                                                  "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def store(self, path: str, body: Any) -> None:
        status, data = self.call("POST", path, body)
        if status != 200:
            raise SystemExit(f"{path} -> {status}: {data[:300]!r}")

    def stop(self) -> None:
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(300)
        self._log.close()


def measure(tree: Path, work: Path, texts: list[str], singles: int, batches: int
            ) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(dir=work))
    server = Server(tree, data / "data", work / f"server-{tree.name}.log")
    try:
        for i, text in enumerate(texts[:20]):  # warm-up
            server.store("/v1/memory/store", {"agent_id": "warm", "content": text,
                                              "session_id": f"w{i // SESSION_SIZE}"})
        lat = []
        for i, text in enumerate(texts[20:20 + singles]):
            t0 = time.perf_counter()
            server.store("/v1/memory/store", {"agent_id": "single", "content": text,
                                              "session_id": f"s{i // SESSION_SIZE}"})
            lat.append((time.perf_counter() - t0) * 1000)
        rest = texts[20 + singles:]
        t0 = time.perf_counter()
        for b in range(batches):
            items = [{"content": text, "session_id": f"b{b}-{i // SESSION_SIZE}"}
                     for i, text in enumerate(rest[b * 1000:(b + 1) * 1000])]
            server.store("/v1/memories/store/batch", {"agent_id": "batch", "memories": items})
        rate = batches * 1000 / (time.perf_counter() - t0)
    finally:
        server.stop()
    lat.sort()
    return {"p50_ms": statistics.median(lat), "p95_ms": lat[int(0.95 * (len(lat) - 1))],
            "batch_per_s": rate}


def store_path(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from app.config import Settings
    from app.service import Service

    texts = corpus(20 + args.single + args.batches * 1000)
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    print(f"store path, hash embedder; load average {loadavg()}", flush=True)
    for r in range(args.rounds):
        for on in (False, True) if r % 2 == 0 else (True, False):
            with tempfile.TemporaryDirectory() as data:
                svc = Service(Settings.from_env(env={}, data_dir=data, embedding_model="hash",
                                                decay_interval=0, graph_on_store=on,
                                                extract_entities=on))
                svc.start(wait=True)
                lat = []
                for i, text in enumerate(texts[:20 + args.single]):
                    t0 = time.perf_counter()
                    svc.memories.store("single", text, session_id=f"s{i // SESSION_SIZE}")
                    lat.append((time.perf_counter() - t0) * 1000)
                rest = texts[20 + args.single:]
                t0 = time.perf_counter()
                for b in range(args.batches):
                    svc.memories.store_batch("batch", [
                        {"content": text, "session_id": f"b{b}-{i // SESSION_SIZE}"}
                        for i, text in enumerate(rest[b * 1000:(b + 1) * 1000])])
                rate = args.batches * 1000 / (time.perf_counter() - t0)
                svc.close()
            results[on].append((statistics.median(lat[20:]), rate))
            print(f"round {r + 1} graph+entities {'on ' if on else 'off'}: single p50 "
                  f"{results[on][-1][0]:.2f} ms; batch {rate:.0f} memories/s "
                  f"(load {loadavg()})", flush=True)
    for on in (False, True):
        print(f"median, graph+entities {'on ' if on else 'off'}: single p50 "
              f"{statistics.median(x[0] for x in results[on]):.2f} ms, batch "
              f"{statistics.median(x[1] for x in results[on]):.0f} memories/s")
    return 0


def main() -> int:
    # SIGTERM unwinds like Ctrl-C, so the server under test is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base-ref", default="main", help="the commit measured as A")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--single", type=int, default=200, help="single stores per run")
    parser.add_argument("--batches", type=int, default=3, help="batches of 1000 per run")
    parser.add_argument("--store-path", action="store_true",
                        help="in-process, hash embedder: graph+entities off vs on")
    args = parser.parse_args()
    if args.store_path:
        return store_path(args)
    work = Path(tempfile.mkdtemp(prefix="bench-write-"))
    try:
        return compare(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(args: argparse.Namespace, work: Path) -> int:
    trees = {"A": export_tree(args.base_ref, work), "B": ROOT}
    texts = corpus(20 + args.single + args.batches * 1000)
    print(f"A = {args.base_ref}, B = this tree ({ROOT}); load average {loadavg()}",
          flush=True)
    results: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for r in range(args.rounds):
        for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
            got = measure(trees[name], work, texts, args.single, args.batches)
            results[name].append(got)
            print(f"round {r + 1} {name}: single p50 {got['p50_ms']:.1f} ms, p95 "
                  f"{got['p95_ms']:.1f} ms; batch {got['batch_per_s']:.0f} memories/s "
                  f"(load {loadavg()})", flush=True)
    print(f"\nmedians over {args.rounds} rounds (load average at the end {loadavg()}):")
    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
           for name, runs in results.items()}
    for key, label, better in (("p50_ms", "single-store p50 (ms)", "lower"),
                               ("p95_ms", "single-store p95 (ms)", "lower"),
                               ("batch_per_s", "batch throughput (memories/s)", "higher")):
        a, b = med["A"][key], med["B"][key]
        print(f"  {label:32} A {a:8.1f}   B {b:8.1f}   B/A {b / a:.3f} ({better} is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
