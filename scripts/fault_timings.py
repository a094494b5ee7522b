"""Time what the fault tests only check: how fast a store is refused on a full disk, and how
long SIGTERM takes to end the server in each fault case. Needs root (mounts a tmpfs).

    .venv/bin/python scripts/fault_timings.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import LiveServer
from tests.faultfs import fill

TEXT = "note {} about the lamp in drawer {}: " + "some words to take room " * 12


def refused_timings(server: LiveServer, rounds: int, size: int) -> list[float]:
    http = server.http()
    out = []
    for i in range(rounds):
        body = {"agent_id": "a", "memories": [{"content": TEXT.format(i * size + j, j)}
                                               for j in range(size)]}
        t = time.perf_counter()
        r = http.post("/v1/memories/store/batch", json=body)
        out.append(time.perf_counter() - t)
        assert r.status_code == 507, r.text
    return out


def sigterm_seconds(server: LiveServer) -> float:
    assert server.proc is not None
    t = time.perf_counter()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(30)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "disk"
        disk.mkdir()
        if os.system(f"mount -t tmpfs -o size=12m tmpfs {disk}") != 0:
            sys.exit("cannot mount a tmpfs (root needed)")
        try:
            server = LiveServer(disk / "data")
            server.log_path = Path(tmp) / "server.log"
            server.start()
            http = server.http()
            fill(disk, leave=1_500_000)
            n = 0
            while http.post("/v1/memories/store/batch", json={"agent_id": "a", "memories": [
                    {"content": TEXT.format(n + j, j)} for j in range(20)]}).status_code == 200:
                n += 20
            for size in (1, 100):
                t = refused_timings(server, args.rounds, size)
                print(f"refused store of {size:3d} memories on a full disk: median "
                      f"{statistics.median(t) * 1000:.1f} ms, max {max(t) * 1000:.1f} ms "
                      f"({args.rounds} requests)")
            r = http.post("/v1/memory/recall", json={"agent_id": "a", "query": "lamp"})
            print(f"recall on the full disk: {r.status_code}")
            print(f"SIGTERM to exit, disk full: {sigterm_seconds(server):.2f} s")
            (disk / "filler").unlink()
            server = LiveServer(disk / "data")
            server.log_path = Path(tmp) / "server2.log"
            server.start()
            print(f"SIGTERM to exit, healthy: {sigterm_seconds(server):.2f} s")
        finally:
            os.system(f"umount {disk}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
