#!/usr/bin/env python3
"""`dakera serve` with a garbage-collector probe, for benchmarks and soak runs.

Installs a `gc.callbacks` hook that times every collection, then runs the ordinary CLI
(`python scripts/serve_probed.py serve ...`). Every 0.2 s (and at exit) a daemon thread
writes the totals as JSON to $DAKERA_GC_PROBE_FILE:

    {"pid": 123, "collections": [n0, n1, n2], "pause_ms": [t0, t1, t2],
     "max_pause_ms": [m0, m1, m2], "frozen": 12345,
     "recent": [[unix_time, generation, pause_ms], ...]}

`recent` holds the last 5000 collections that took 0.2 ms or more, so that a benchmark can
find the longest pause within one of its phases.

The probe itself costs two perf_counter() calls per collection.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_count = [0, 0, 0]
_total = [0.0, 0.0, 0.0]
_max = [0.0, 0.0, 0.0]
_started: list[float] = [0.0]
_recent: deque[tuple[float, int, float]] = deque(maxlen=5000)


def _callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    pause = (time.perf_counter() - _started[0]) * 1000
    gen = info["generation"]
    _count[gen] += 1
    _total[gen] += pause
    if pause > _max[gen]:
        _max[gen] = pause
    if pause >= 0.2:
        _recent.append((time.time(), gen, round(pause, 3)))


def _dump(path: Path) -> None:
    body = json.dumps({"pid": os.getpid(), "collections": _count,
                       "pause_ms": [round(t, 3) for t in _total],
                       "max_pause_ms": [round(t, 3) for t in _max],
                       "frozen": gc.get_freeze_count(), "recent": list(_recent)})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(body)
    os.replace(tmp, path)


def _writer(path: Path) -> None:
    while True:
        time.sleep(0.2)
        with contextlib.suppress(OSError):
            _dump(path)


def main() -> None:
    target = os.environ.get("DAKERA_GC_PROBE_FILE")
    gc.callbacks.append(_callback)
    if target:
        path = Path(target)
        threading.Thread(target=_writer, args=(path,), name="gc-probe", daemon=True).start()
        atexit.register(_dump, path)
    from app.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
