#!/usr/bin/env python3
"""Measure the one-file binary: size, start-to-ready time, idle RSS, glibc floor.

    python scripts/measure_binary.py [--binary dist/dakera] [--runs 5] [--source]
                                     [--against OTHER_BINARY]

Start to ready: from spawning `dakera serve` to the first 200 from /health/ready (polled
every 10 ms), on a data dir holding a few memories. "First start" uses an empty unpack
cache each time (the binary unpacks itself); "later starts" reuse it. Idle RSS: the
server's VmRSS 2 s after ready, and again after a few stores and recalls. --source also
measures `python -m app serve` from this checkout for comparison; --against another binary
(e.g. one built from main), whose first and later starts then alternate run by run with
this one's, so that both see the same load. Each start also reports the CPU time (user +
sys) the server had used when it answered ready, which a busy machine inflates less than
the wall time. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "measure-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Run:
    def __init__(self, command: list[str], env: dict[str, str], data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
        full_env.update(env)
        full_env.update({"DAKERA_API_KEY": KEY, "DAKERA_PORT": str(self.port),
                         "DAKERA_DATA_DIR": str(data_dir), "DAKERA_LOG_LEVEL": "warning"})
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen([*command, "serve"], env=full_env, cwd=data_dir.parent,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.ready_s = self._wait_ready()
        self.cpu_s = cpu_s(self.proc.pid)

    def _wait_ready(self) -> float:
        with httpx.Client(timeout=1) as client:
            while True:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"server exited: {err}")
                try:
                    if client.get(self.url + "/health/ready").status_code == 200:
                        return time.perf_counter() - self.t0
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)

    def exercise(self) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            for i in range(20):
                client.post("/v1/memory/store", json={
                    "agent_id": "measure", "content": f"Fact number {i}: the sky was "
                    f"{'blue' if i % 2 else 'grey'} on day {i} of the trip to Lisbon."})
            for q in ("what colour was the sky", "Lisbon trip", "day 7"):
                client.post("/v1/memory/recall", json={"agent_id": "measure", "query": q})

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def fmt(runs: list[Run]) -> str:
    times = [run.ready_s for run in runs]
    cpu = [run.cpu_s for run in runs]
    return (f"median {statistics.median(times):.3f} s, CPU {statistics.median(cpu):.2f} s  "
            f"(runs: {', '.join(f'{t:.3f}' for t in times)})")


def start_times(targets: dict[str, tuple[list[str], dict[str, str]]], work: Path,
                runs: int) -> dict[str, list[Run]]:
    """Later starts, the targets interleaved run by run so that all see the same load."""
    done: dict[str, list[Run]] = {name: [] for name in targets}
    for _ in range(runs):
        for name, (command, env) in targets.items():
            run = Run(command, env, work / f"{name}-data")
            run.stop()
            done[name].append(run)
    return done


def rss(command: list[str], env: dict[str, str], data_dir: Path) -> str:
    run = Run(command, env, data_dir)
    time.sleep(2)
    idle = rss_mb(run.proc.pid)
    run.exercise()
    time.sleep(1)
    busy = rss_mb(run.proc.pid)
    run.stop()
    return f"idle {idle:.0f} MB (2 s after ready); {busy:.0f} MB after 20 stores + 3 recalls"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=ROOT / "dist" / "dakera")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--source", action="store_true", help="measure python -m app too")
    parser.add_argument("--against", type=Path, default=None,
                        help="another binary to measure alternately with this one")
    args = parser.parse_args()
    binaries = {"binary": args.binary.resolve()}
    if args.against:
        binaries["against"] = args.against.resolve()
    for name, binary in binaries.items():
        if not binary.is_file():
            sys.exit(f"{binary} not found: run `make binary`")
        print(f"{name} size: {binary.stat().st_size / 1e6:.1f} MB ({binary.stat().st_size} "
              f"bytes, {binary})")
    print(f"load average before: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="dakera-measure-") as tmp:
        work = Path(tmp)
        targets = {name: ([str(binary)], {"DAKERA_CACHE_DIR": str(work / f"{name}-cache")})
                   for name, binary in binaries.items()}
        if args.source:
            targets["source"] = ([sys.executable, "-m", "app"],
                                 {"DAKERA_MODELS_DIR": str(ROOT / "models")})
        for name, (command, env) in targets.items():  # data dirs with a few memories
            seed = Run(command, env, work / f"{name}-data")
            seed.exercise()
            seed.stop()

        first: dict[str, list[Run]] = {name: [] for name in binaries}
        for i in range(args.runs):
            for name, binary in binaries.items():
                fresh = work / f"{name}-cache-first-{i}"
                run = Run([str(binary)], {"DAKERA_CACHE_DIR": str(fresh)},
                          work / f"{name}-data")
                run.stop()
                first[name].append(run)
                shutil.rmtree(fresh)
        for name, runs in first.items():
            print(f"{name}, first start (empty unpack cache):{' ' * (9 - len(name))}"
                  f"{fmt(runs)}")
        for name, runs in start_times(targets, work, args.runs).items():
            print(f"{name}, later starts:{' ' * (29 - len(name))}{fmt(runs)}")
        for name, (command, env) in targets.items():
            print(f"{name}, RSS: {rss(command, env, work / f'{name}-data')}")
        unpacked = next(p for p in (work / "binary-cache").iterdir()
                        if not p.name.startswith("."))
        print("glibc:")
        sys.stdout.flush()
        subprocess.run([sys.executable, str(ROOT / "build" / "portable.py"), "glibc",
                        str(binaries["binary"]), str(unpacked)], check=False)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
