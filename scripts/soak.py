#!/usr/bin/env python3
"""Soak: mixed load for a long time with the server's RSS sampled; the RSS must not grow by
10% or more after warm-up, and no request may fail.

    python scripts/soak.py --minutes 10          # make soak

The data set is held steady (each client forgets its oldest memories beyond a few hundred,
see scripts/mixed_load.py), so growth is the server's own, not the data's. Growth is
measured from the median RSS of the minute after warm-up to the median of the last minute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mixed_load
from harness import Server


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup-minutes", type=float, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--preload", type=int, default=2500, help="memories per agent first")
    parser.add_argument("--limit-percent", type=float, default=10)
    args = parser.parse_args()
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="dakera-soak-") as tmp:
        server = Server(Path(tmp) / "data", env={"DAKERA_LOG_LEVEL": "warning"}).start()
        try:
            mixed_load.preload(server.port, args.preload)
            rss0 = server.rss()
            print(f"soak: {args.clients} clients for {args.minutes:.0f} min; RSS after "
                  f"preloading {args.preload * len(mixed_load.AGENTS)} memories: "
                  f"{rss0:.0f} MB", flush=True)
            stats = mixed_load.Stats()

            def tick(elapsed: float) -> None:
                samples.append((elapsed, server.rss()))
                if len(samples) % 6 == 0:
                    print(f"  {elapsed / 60:4.1f} min: RSS {samples[-1][1]:.0f} MB, "
                          f"{sum(stats.ops.values())} requests, {len(stats.failures)} "
                          "failures", flush=True)

            mixed_load.run(server.port, args.clients, args.minutes * 60, seed=3,
                           stats=stats, tick=tick, tick_every=10)
            gc = server.gc()
        finally:
            code = server.stop()
            log = server.log()
    warm = args.warmup_minutes * 60
    after_warm = [r for t, r in samples if warm <= t < warm + 60]
    last = [r for t, r in samples if t >= samples[-1][0] - 60]
    start, end = statistics.median(after_warm), statistics.median(last)
    growth = 100 * (end - start) / start
    total = sum(stats.ops.values())
    print(f"\n{total} requests in {args.minutes:.0f} min: {stats.summary()}")
    print(f"RSS: {rss0:.0f} MB after preload, {start:.0f} MB after warm-up "
          f"({args.warmup_minutes:.0f} min), {end:.0f} MB at the end, "
          f"max {max(r for _, r in samples):.0f} MB: growth after warm-up {growth:+.1f}%")
    print(f"GC in the server: {sum(gc['collections'])} collections "
          f"({gc['collections'][2]} full), {sum(gc['pause_ms']):.0f} ms in total, longest "
          f"{max(gc['max_pause_ms']):.1f} ms")
    errors = [line for line in log.splitlines() if " ERROR " in line]
    ok = (not stats.failures and not errors and code == 0
          and growth < args.limit_percent and "database is locked" not in log)
    if not ok:
        print(f"FAILED: {len(stats.failures)} bad answers, {len(errors)} error log lines, "
              f"exit code {code}, growth {growth:+.1f}% (limit {args.limit_percent}%)")
        for f in [*stats.failures[:20], *errors[:10]]:
            print("  " + f)
        return 1
    print(f"OK: RSS growth after warm-up under {args.limit_percent:.0f}%, no failed request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
