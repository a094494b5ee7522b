"""The one-file binary (dist/dakera): smoke runs, unpacking, the installer, the systemd unit.

The end-to-end suites run against the binary through the `both_targets` marker; this file
checks what only the binary has. Tests that need it skip when DAKERA_TEST_BINARY is unset
(`make test` builds dist/dakera and sets it).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import platform
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import __version__
from app.service.capabilities import CONTRACT_VERSION
from tests.conftest import API_KEY, ROOT, binary_path, free_port

pytestmark = pytest.mark.both_targets  # the tests taking dakera_command run on both


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    env.update(extra)
    return env


def run(command: list[str], env: dict[str, str], cwd: Path,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def binary() -> Path:
    path = binary_path()
    if path is None:
        pytest.skip("no frozen binary under test: `make test` builds one and sets "
                    "DAKERA_TEST_BINARY=dist/dakera")
    return path


@pytest.fixture
def launcher(binary: Path) -> Path:
    """The binary, if it is the launcher format (Linux builds; the macOS and Windows
    release builds are PyInstaller one-file executables)."""
    with binary.open("rb") as f:
        f.seek(-128, os.SEEK_END)
        if not f.read(16).startswith(b"DAKERA-SFX-1"):
            pytest.skip("not a launcher build (build/launcher.c)")
    return binary


def unpacked(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


# -- serve --get: one request in-process, no port (both targets) ---------------------------

def test_serve_get_answers_one_request(dakera_command: tuple[list[str], dict[str, str]],
                                       tmp_path: Path) -> None:
    command, target_env = dakera_command
    env = clean_env(DAKERA_DATA_DIR=str(tmp_path / "data"), DAKERA_API_KEY=API_KEY,
                    **target_env)
    ready = run([*command, "serve", "--get", "/health/ready"], env, tmp_path)
    assert ready.returncode == 0, ready.stderr
    body = json.loads(ready.stdout)
    assert body["ready"] is True and body["product_version"] == __version__
    assert body["version"] == CONTRACT_VERSION

    # Authenticated with the configured key; an error status exits 1 with the error body.
    missing = run([*command, "serve", "--get", "/v1/memory/get/mem_nope?agent_id=a"], env,
                  tmp_path)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["code"] == "VECTOR_NOT_FOUND"

    bad = run([*command, "serve", "--get", "health"], env, tmp_path)
    assert bad.returncode == 2 and "--get" in bad.stderr


# -- the binary on its own ---------------------------------------------------------------

def test_version(binary: Path, binary_cache_dir: Path, tmp_path: Path) -> None:
    out = run([str(binary), "--version"], clean_env(DAKERA_CACHE_DIR=str(binary_cache_dir)),
              tmp_path)
    assert out.returncode == 0 and __version__ in out.stdout


def test_serves_from_any_directory_with_only_the_key(launcher: Path, tmp_path: Path) -> None:
    """The README's promise: `DAKERA_API_KEY=secret ./dakera serve`, nothing else set."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "DAKERA_API_KEY": "secret"}
    port = free_port()  # a flag rather than the default port, which may be taken here
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([str(launcher), "serve", "--port", str(port)], env=env,
                            cwd=elsewhere, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        headers = {"Authorization": "Bearer secret"}
        stored = httpx.post(url + "/v1/memory/store", headers=headers, timeout=30, json={
            "agent_id": "me", "content": "I prefer dark mode in every editor"})
        assert stored.status_code in (200, 201), stored.text
        recalled = httpx.post(url + "/v1/memory/recall", headers=headers, timeout=30, json={
            "agent_id": "me", "query": "which colour theme do I like?"}).json()
        assert recalled["memories"][0]["memory"]["content"].startswith("I prefer dark mode")
        assert httpx.get(url + "/v1/memory/get/x", timeout=5).status_code == 401
    finally:
        proc.terminate()
        code = proc.wait(60)
        log.close()
    assert code == 0, (tmp_path / "server.log").read_text()
    assert "Traceback" not in (tmp_path / "server.log").read_text()
    # The per-user defaults: data under ~/.local/share, the unpacked binary under ~/.cache.
    assert (home / ".local" / "share" / "dakera" / "dakera.db").exists()
    assert len(unpacked(home / ".cache" / "dakera")) == 1
    assert list(elsewhere.iterdir()) == []


def test_concurrent_first_starts_share_one_unpacked_copy(launcher: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = clean_env(DAKERA_CACHE_DIR=str(cache))
    procs = [subprocess.Popen([str(launcher), "--version"], env=env, cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert __version__ in out
    assert len(unpacked(cache)) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]


def test_a_damaged_unpacked_copy_is_replaced(launcher: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = clean_env(DAKERA_CACHE_DIR=str(cache))
    assert run([str(launcher), "--version"], env, tmp_path).returncode == 0
    (copy,) = unpacked(cache)
    (copy / ".dakera-complete").unlink()  # as if a crash had cut the unpacking short
    (copy / "dakera").unlink()
    again = run([str(launcher), "--version"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert (copy / "dakera").exists() and (copy / ".dakera-complete").exists()


def test_an_unusable_cache_dir_falls_back_to_a_private_temp_dir(launcher: Path,
                                                                tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = clean_env(DAKERA_CACHE_DIR=str(blocker / "cache"), HOME=str(blocker),
                    TMPDIR=str(tmp))
    env.pop("XDG_CACHE_HOME", None)
    out = run([str(launcher), "--version"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert __version__ in out.stdout
    assert f"cannot unpack into {blocker / 'cache'}" in out.stderr
    private = tmp / f"dakera-{os.geteuid()}"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert len(unpacked(private)) == 1


@pytest.mark.parametrize("case", ["not-a-dir", "foreign-owner"])
def test_with_no_usable_cache_it_runs_from_a_throwaway_copy(launcher: Path, tmp_path: Path,
                                                            case: str) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    private = tmp / f"dakera-{os.geteuid()}"
    if case == "not-a-dir":
        private.write_text("in the way")
    else:  # someone else's dir where ours would be: never trusted
        if os.geteuid() != 0:
            pytest.skip("needs root to make a dir owned by another user")
        private.mkdir(mode=0o777)
        os.chown(private, 54321, 54321)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = clean_env(HOME=str(blocker), TMPDIR=str(tmp), DAKERA_DATA_DIR=str(tmp_path / "d"),
                    DAKERA_API_KEY=API_KEY)
    env.pop("XDG_CACHE_HOME", None)
    out = run([str(launcher), "serve", "--get", "/health/ready"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ready"] is True
    assert "for this run only" in out.stderr
    assert sorted(p.name for p in tmp.iterdir()) == [private.name]  # the copy is gone
    if private.is_dir():
        assert list(private.iterdir()) == []


def test_a_truncated_download_says_so(launcher: Path, tmp_path: Path) -> None:
    broken = tmp_path / "dakera"
    with launcher.open("rb") as src:
        broken.write_bytes(src.read(4_000_000))
    broken.chmod(0o755)
    out = run([str(broken), "--version"], clean_env(DAKERA_CACHE_DIR=str(tmp_path / "c")),
              tmp_path)
    assert out.returncode == 127
    assert "damaged or incomplete download" in out.stderr


# -- systemd ------------------------------------------------------------------------------

def verify_unit(unit: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60, check=False)
    # verify exits 0 on unknown keys and bad values too: any message is a failure.
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr


def test_the_unit_file_verifies(tmp_path: Path) -> None:
    unit = (ROOT / "build" / "dakera.service").read_text()
    assert "ExecStart=/usr/local/bin/dakera serve" in unit
    stand_in = shutil.which("true")  # verify checks that ExecStart exists
    assert stand_in
    path = tmp_path / "dakera.service"
    path.write_text(unit.replace("/usr/local/bin/dakera", stand_in))
    verify_unit(path)


def test_service_install(launcher: Path, binary_cache_dir: Path, tmp_path: Path) -> None:
    env = clean_env(DAKERA_CACHE_DIR=str(binary_cache_dir))
    args = ["--bin-dir", str(tmp_path / "bin"), "--unit-dir", str(tmp_path / "units"),
            "--env-file", str(tmp_path / "etc" / "dakera.env")]
    out = run([str(launcher), "service", "install", *args], env, tmp_path)
    assert out.returncode == 0, out.stderr
    installed = tmp_path / "bin" / "dakera"
    assert installed.read_bytes() == launcher.read_bytes()
    env_file = tmp_path / "etc" / "dakera.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    key = next(line for line in env_file.read_text().splitlines()
               if line.startswith("DAKERA_API_KEY="))
    assert len(key.split("=", 1)[1]) == 64
    unit = tmp_path / "units" / "dakera.service"
    assert f"ExecStart={installed} serve" in unit.read_text()
    assert f"EnvironmentFile={env_file}" in unit.read_text()
    verify_unit(unit)

    # Again: the key file is kept, not replaced.
    again = run([str(launcher), "service", "install", *args], env, tmp_path)
    assert again.returncode == 0 and f"kept {env_file}" in again.stdout
    assert key in env_file.read_text()

    # A path it cannot write to: a clean message, no traceback.
    (tmp_path / "a-file").write_text("")
    refused = run([str(launcher), "service", "install", "--bin-dir",
                   str(tmp_path / "a-file" / "bin"), *args[2:]], env, tmp_path)
    assert refused.returncode == 1 and "Error:" in refused.stderr
    assert "Traceback" not in refused.stderr


# -- the installer --------------------------------------------------------------------------

def asset_name() -> str:
    system, machine = platform.system(), platform.machine()
    if system != "Linux" or machine not in ("x86_64", "aarch64"):
        pytest.skip(f"the installer test runs on Linux x86_64/aarch64, not {system} {machine}")
    return f"dakera-linux-{machine}"


@pytest.fixture
def release_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on loopback, serving tmp_path/release like a release page."""
    folder = tmp_path / "release"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def install(base_url: str, tmp_path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env(DAKERA_INSTALL_BASE_URL=base_url, DAKERA_INSTALL_DIR=str(tmp_path / "bin"),
                    HOME=str(tmp_path / "home"), DAKERA_CACHE_DIR=str(cache))
    return run(["sh", str(ROOT / "build" / "install.sh")], env, tmp_path, timeout=300)


def test_installer_downloads_verifies_and_installs(binary: Path, binary_cache_dir: Path,
                                                   tmp_path: Path,
                                                   release_server: tuple[str, Path]) -> None:
    url, folder = release_server
    asset = asset_name()
    shutil.copyfile(binary, folder / asset)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    (folder / f"{asset}.sha256").write_text(f"{digest}  {asset}\n")
    out = install(url, tmp_path, binary_cache_dir)
    assert out.returncode == 0, out.stdout + out.stderr
    installed = tmp_path / "bin" / "dakera"
    assert installed.read_bytes() == binary.read_bytes()
    assert installed.stat().st_mode & 0o111
    assert "Checksum OK" in out.stdout and "dakera serve" in out.stdout
    assert __version__ in run([str(installed), "--version"],
                              clean_env(DAKERA_CACHE_DIR=str(binary_cache_dir)),
                              tmp_path).stdout


@pytest.mark.parametrize("damage", ["wrong-sum", "no-sum", "corrupt-binary"])
def test_installer_refuses_a_bad_download(binary: Path, tmp_path: Path, damage: str,
                                          release_server: tuple[str, Path]) -> None:
    url, folder = release_server
    asset = asset_name()
    data = binary.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if damage == "corrupt-binary":
        data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
    (folder / asset).write_bytes(data)
    if damage == "wrong-sum":
        digest = hashlib.sha256(b"something else").hexdigest()
    if damage != "no-sum":
        (folder / f"{asset}.sha256").write_text(f"{digest}  {asset}\n")
    out = install(url, tmp_path, tmp_path / "cache")
    assert out.returncode != 0
    expected = "download failed" if damage == "no-sum" else "checksum mismatch"
    assert expected in out.stderr
    assert not (tmp_path / "bin" / "dakera").exists()
