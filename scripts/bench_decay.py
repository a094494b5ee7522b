#!/usr/bin/env python3
"""Measure a decay pass over many memories and recall latency while it runs.

The engine runs in-process with the deterministic `hash` embedder (embedding cost is not
what is measured here); recall goes through the real store, indexes and writer.

    python scripts/bench_decay.py --memories 100000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from corpus import corpus, queries  # noqa: E402

from app.config import Settings  # noqa: E402
from app.service import Service  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def recall_loop(svc: Service, qs: list[str], stop: threading.Event) -> list[float]:
    out = []
    i = 0
    while not stop.is_set():
        t = time.perf_counter()
        svc.recall.recall("bench", qs[i % len(qs)], top_k=10, reinforce=False)
        out.append((time.perf_counter() - t) * 1000)
        i += 1
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="recall measurement time without decay")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clock = [time.time()]
        svc = Service(Settings.from_env(env={}, data_dir=tmp, embedding_model="hash",
                                              decay_interval=0), clock=lambda: clock[0])
        svc.start(wait=True)
        texts = corpus(args.memories)
        t0 = time.perf_counter()
        for i in range(0, len(texts), 1000):
            svc.memories.store_batch("bench", [{"content": t} for t in texts[i:i + 1000]])
        print(f"loaded {args.memories} memories in {time.perf_counter() - t0:.1f} s")
        qs = queries(500)

        stop = threading.Event()
        base: list[float] = []
        worker = threading.Thread(target=lambda: base.extend(recall_loop(svc, qs, stop)))
        worker.start()
        time.sleep(args.seconds)
        stop.set()
        worker.join()

        # Hourly decay passes, back to back, while recall runs.
        stop = threading.Event()
        during: list[float] = []
        worker = threading.Thread(target=lambda: during.extend(recall_loop(svc, qs, stop)))
        worker.start()
        passes = []
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline:
            clock[0] += 3600
            t0 = time.perf_counter()
            result = svc.decay.run()
            passes.append(time.perf_counter() - t0)
        stop.set()
        worker.join()
        # The worst case: months later, every memory has decayed below the floor.
        clock[0] += 90 * 86_400
        t0 = time.perf_counter()
        purge = svc.decay.run()
        purge_s = time.perf_counter() - t0
        svc.close()

    passes.sort()
    print(f"decay pass over {args.memories} memories: median {passes[len(passes) // 2]:.2f} s, "
          f"max {passes[-1]:.2f} s over {len(passes)} passes (last: {result['decayed']} "
          f"decayed, {result['deleted']} deleted)")
    print(f"decay pass deleting {purge['deleted']} memories below the floor: {purge_s:.1f} s")
    for name, lat in (("recall without decay", base), ("recall during decay", during)):
        print(f"{name}: n={len(lat)}, p50 {pct(lat, 50):.2f} ms, p95 {pct(lat, 95):.2f} ms, "
              f"p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
