"""systemd readiness and watchdog, and the container health check.

Where systemd runs the machine (PID 1) a transient Type=notify unit shows that systemd calls
the service started only once /health/ready answers 200. Everywhere, the notify protocol is
driven directly: the test binds the NOTIFY_SOCKET datagram socket systemd would, starts
`dakera serve` with it, and reads what the server sends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.service.systemd import Notifier
from tests.conftest import LiveServer, free_port

pytestmark = pytest.mark.both_targets


def _listen(path: Path | str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    return s


def _messages(s: socket.socket, until: str, timeout: float = 120.0) -> list[dict[str, str]]:
    """Datagrams received until one holds `until` (as KEY=value lines)."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        fields = dict(line.split("=", 1) for line in s.recv(4096).decode().splitlines())
        got.append(fields)
        if until in "\n".join(f"{k}={v}" for k, v in fields.items()):
            return got


def test_the_notifier_speaks_the_protocol(tmp_path: Path) -> None:
    with _listen(tmp_path / "notify") as s:
        n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
        assert n.enabled and n.watchdog_interval is None
        assert n.ready("serving")
        assert s.recv(100) == b"READY=1\nSTATUS=serving"
        assert n.watchdog() and s.recv(100) == b"WATCHDOG=1"
        assert n.stopping() and s.recv(100) == b"STOPPING=1\nSTATUS=shutting down"
    name = f"dakera-test-{os.getpid()}"
    with _listen("\0" + name) as s:  # an abstract socket, written @name
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready("x")
        assert s.recv(100).startswith(b"READY=1")
    off = Notifier({})
    assert not off.enabled and not off.ready("x")
    assert Notifier({"NOTIFY_SOCKET": "/nonexistent/sock"}).ready("x") is False
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000"}
    assert Notifier(env).watchdog_interval == 3.0
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 3.0
    assert Notifier({**env, "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_ready_only_once_the_readiness_probe_answers_200_then_watchdog_pings(
        tmp_path: Path, dakera_command: tuple[list[str], dict[str, str]]) -> None:
    sock_path = tmp_path / "notify"
    with _listen(sock_path) as s:
        server = LiveServer(tmp_path / "data", command=dakera_command, extra_env={
            "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"})
        server.proc = subprocess.Popen(
            [*server.command, "serve"], stdout=server.log_path.open("ab"),
            stderr=subprocess.STDOUT, cwd=tmp_path,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")},
                 "DAKERA_PORT": str(server.port), "DAKERA_DATA_DIR": str(server.data_dir),
                 "DAKERA_API_KEY": str(server.api_key), **server.target_env,
                 **server.extra_env})
        try:
            got = _messages(s, "READY=1")
            # The moment systemd hears READY=1 the server answers ready.
            assert httpx.get(server.url + "/health/ready", timeout=10).status_code == 200
            assert got[-1]["STATUS"].startswith("serving on")
            pings = _messages(s, "WATCHDOG=1") + _messages(s, "WATCHDOG=1")
            assert pings[-1] == {"WATCHDOG": "1"}
            server.proc.terminate()
            assert _messages(s, "STOPPING=1")[-1]["STOPPING"] == "1"
            assert server.proc.wait(60) == 0
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(30)


def _systemd_is_pid_1() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


@pytest.mark.skipif(not _systemd_is_pid_1() or shutil.which("systemd-run") is None
                    or os.geteuid() != 0, reason="systemd is not PID 1 here (or not root): "
                    "the notify protocol is tested directly above")
def test_systemd_calls_the_unit_started_once_ready(
        tmp_path: Path, dakera_command: tuple[list[str], dict[str, str]]) -> None:
    command, target_env = dakera_command
    port = free_port()
    unit = f"dakera-test-{os.getpid()}-{port}"
    env = {"DAKERA_PORT": str(port), "DAKERA_DATA_DIR": str(tmp_path / "data"), **target_env}
    args = ["systemd-run", f"--unit={unit}", "-p", "Type=notify", "-p", "NotifyAccess=all",
            "-p", "WatchdogSec=30", *(f"--setenv={k}={v}" for k, v in env.items()),
            *command, "serve"]
    subprocess.run(args, check=True, timeout=180)  # returns once the unit is started
    try:
        state = subprocess.run(["systemctl", "is-active", unit], capture_output=True,
                               text=True).stdout.strip()
        assert state == "active"
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10
                         ).status_code == 200
    finally:
        subprocess.run(["systemctl", "stop", unit], timeout=120)


def test_healthcheck_probes_a_running_server(
        live_server: LiveServer, dakera_command: tuple[list[str], dict[str, str]]) -> None:
    command, target_env = dakera_command
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env.update(target_env)
    ok = subprocess.run([*command, "healthcheck", "--url", live_server.url], env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "ready" in ok.stdout
    by_port = subprocess.run([*command, "healthcheck"], capture_output=True, text=True,
                             env={**env, "DAKERA_PORT": str(live_server.port)}, timeout=120)
    assert by_port.returncode == 0, by_port.stderr
    down = subprocess.run([*command, "healthcheck"], capture_output=True, text=True,
                          env={**env, "DAKERA_PORT": str(free_port())}, timeout=120)
    assert down.returncode == 1 and "not ready" in down.stderr


def test_the_unit_and_the_image_use_them() -> None:
    root = Path(__file__).resolve().parent.parent
    unit = (root / "build" / "dakera.service").read_text().splitlines()
    assert "Type=notify" in unit and "WatchdogSec=60" in unit
    dockerfile = (root / "build" / "Dockerfile").read_text()
    check = dockerfile[dockerfile.index("HEALTHCHECK"):].split("\n\n")[0]
    assert 'CMD ["dakera", "healthcheck"' in check  # the subcommand tested above
