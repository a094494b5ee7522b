"""Fixtures: real temp databases, real services, and a real server on a loopback port.

Two targets can serve the live-server fixtures: "source" runs `python -m app` from this
checkout (or `DAKERA_TEST_COMMAND`), "binary" runs the frozen one-file build named by
`DAKERA_TEST_BINARY` (`make test` builds dist/dakera and sets it). A test module opts into
both with `pytestmark = pytest.mark.both_targets`: each of its tests then runs once per
target (ids `[source]` and `[binary]`); the binary runs are skipped when no binary is named.
Modules without the marker run against the source tree only.

Two backends can hold the data: "sqlite" (the data dir's file) and "postgres" (a database of
its own for each server, on a local PostgreSQL with pgvector that the project's own scripts
install and start: `make pg-up`). A module opts into both with
`pytestmark = pytest.mark.both_backends` (ids `[sqlite]` and `[postgres]`). The postgres runs
skip, with the reason, when PostgreSQL cannot be set up here, unless
DAKERA_PG_TESTS=required (then they fail; =all: required, and the frozen binary's runs on
postgres too, which are skipped otherwise); DAKERA_TEST_PG_URL names a PostgreSQL server to
use instead (a superuser's URL: each server gets a new database, with CREATE EXTENSION vector).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

try:
    import psycopg
except ImportError:  # pragma: no cover - installed with the server's dependencies
    psycopg = None  # type: ignore[assignment]

from app.config import Settings
from app.service import Service

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "dk_test_" + "0123456789abcdef" * 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Clock:
    """An injectable clock: tests move `now` instead of sleeping."""

    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def counts_of(where: Path | LiveServer) -> tuple[int, ...]:
    """Row counts of memories, their vectors and the index log (in a data dir's file, or
    in a live server's database: on PostgreSQL, memories, BM25 postings and edges)."""
    if not isinstance(where, Path):  # a LiveServer (of tests.conftest or of conftest)
        url = where.extra_env.get("DAKERA_DATABASE_URL")
        if url is None:
            return counts_of(where.data_dir)
        assert psycopg is not None
        with psycopg.connect(url) as pg:
            return tuple(pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                         for table in ("memories", "memory_terms", "memory_edges"))
    data_dir = where
    from app.store.db import connect

    conn = connect(data_dir / "dakera.db", readonly=True)
    try:
        return tuple(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                     for table in ("memories", "memory_vectors", "index_log"))
    finally:
        conn.close()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings.from_env(env={}, data_dir=str(data_dir), **overrides)


MakeService = Callable[..., Service]


@pytest.fixture
def make_service(tmp_path: Path, clock: Clock) -> Iterator[MakeService]:
    """Start a service over a real temp database, on the injectable clock, with decay
    passes off: `make_service(**settings)`. The deterministic test embedder unless
    `embedding_model` says otherwise; `data_dir` defaults to the test's tmp_path. Every
    service made is closed at the end of the test (closing twice is harmless)."""
    made: list[Service] = []

    def make(*, data_dir: Path | None = None, **overrides: object) -> Service:
        overrides = {"embedding_model": "hash", "decay_interval": 0, **overrides}
        svc = Service(make_settings(data_dir or tmp_path, **overrides), clock=clock)
        made.append(svc)
        svc.start(wait=True)
        return svc

    yield make
    for svc in reversed(made):
        svc.close()


@pytest.fixture
def hash_service(make_service: MakeService) -> Service:
    """A service with the deterministic test embedder."""
    return make_service()


@pytest.fixture
def service(make_service: MakeService) -> Service:
    """A service with the real ONNX model."""
    return make_service(embedding_model="all-minilm-l6-v2")


TARGETS = ("source", "binary")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_targets: run the module's tests against the source tree and against "
        "the frozen binary (DAKERA_TEST_BINARY)")


    config.addinivalue_line(
        "markers", "both_backends: run the module's live-server tests on SQLite and on "
        "PostgreSQL (a local cluster started by `make pg-up`)")


BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ("dakera_target" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("both_targets")):
        metafunc.parametrize("dakera_target", TARGETS, indirect=True, scope="module")
    if ("dakera_backend" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("both_backends")):
        metafunc.parametrize("dakera_backend", BACKENDS, indirect=True, scope="module")


def binary_path() -> Path | None:
    """The frozen binary under test, if one is named (make test names dist/dakera)."""
    value = os.environ.get("DAKERA_TEST_BINARY")
    if not value:
        return None
    path = Path(value).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"DAKERA_TEST_BINARY={value}: no such file (run make binary)")
    return path


def server_command(target: str = "source") -> list[str]:
    """The `dakera` command of a target (append a subcommand: ["serve"], ["--version"])."""
    if target == "binary":
        path = binary_path()
        if path is None:
            pytest.skip("no frozen binary under test: `make test` builds one and sets "
                        "DAKERA_TEST_BINARY=dist/dakera")
        return [str(path)]
    custom = os.environ.get("DAKERA_TEST_COMMAND")
    if custom:
        return shlex.split(custom)
    return [sys.executable, "-m", "app"]


def target_env(target: str, cache_dir: Path) -> dict[str, str]:
    """Environment for a target: the source tree reads this checkout's models/; the binary
    uses the model it bundles and unpacks itself into cache_dir."""
    if target == "binary":
        return {"DAKERA_CACHE_DIR": str(cache_dir)}
    return {"DAKERA_MODELS_DIR": str(ROOT / "models")}


@pytest.fixture(scope="module")
def dakera_target(request: pytest.FixtureRequest) -> str:
    """The target: "source", or each of TARGETS in turn in a module marked both_targets."""
    return str(getattr(request, "param", "source"))


@pytest.fixture(scope="session")
def binary_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One unpack cache for the binary per test session: the first start unpacks it."""
    return tmp_path_factory.mktemp("binary-cache")


@pytest.fixture(scope="module")
def dakera_command(dakera_target: str, binary_cache_dir: Path) -> tuple[list[str], dict[str, str]]:
    """(command, extra environment) that runs `dakera` for the module's target."""
    return server_command(dakera_target), target_env(dakera_target, binary_cache_dir)


class LiveServer:
    """`dakera serve` in a subprocess on a free loopback port."""

    def __init__(self, data_dir: Path, api_key: str | None = API_KEY,
                 extra_env: dict[str, str] | None = None,
                 command: tuple[list[str], dict[str, str]] | None = None) -> None:
        self.data_dir = data_dir
        self.api_key = api_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if command is None:  # the source tree
            command = (server_command(), target_env("source", data_dir))
        self.command, self.target_env = command
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
        env.update({"DAKERA_PORT": str(self.port), "DAKERA_DATA_DIR": str(self.data_dir),
                    **self.target_env, **self.extra_env})
        if self.api_key:
            env["DAKERA_API_KEY"] = self.api_key
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([*self.command, "serve"], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.data_dir.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: a clean shutdown."""
        assert self.proc is not None
        self.proc.terminate()
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, api_key: str | None = None):  # type: ignore[no-untyped-def]
        from dakera import DakeraClient

        return DakeraClient(base_url=self.url, api_key=api_key or self.api_key, max_retries=1)

    def http(self, api_key: str | None = None) -> httpx.Client:
        key = api_key or self.api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


# -- PostgreSQL for the postgres backend ---------------------------------------------------

PG_TEST_DIR = Path(os.environ.get("DAKERA_TEST_PG_DIR", "/tmp/dakera-pgtest"))
PG_TEST_PORT = int(os.environ.get("DAKERA_TEST_PG_PORT", "55433"))


class Postgres:
    """A PostgreSQL server for the tests: a new database for each dakera server."""

    def __init__(self, url: str) -> None:
        self.url = url  # of a superuser, on its `postgres` database
        self.made = 0

    def new_database(self) -> str:
        assert psycopg is not None
        self.made += 1
        name = f"dakera_test_{os.getpid()}_{self.made}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def drop_databases(self) -> None:
        assert psycopg is not None
        with psycopg.connect(self.url, autocommit=True) as conn:
            for i in range(1, self.made + 1):
                conn.execute(f"DROP DATABASE IF EXISTS dakera_test_{os.getpid()}_{i} "
                             "WITH (FORCE)")


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("DAKERA_PG_TESTS") in ("required", "all"):
        pytest.fail(f"PostgreSQL tests are required (DAKERA_PG_TESTS=required): {reason}")
    pytest.skip(f"no PostgreSQL for the postgres backend: {reason}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """PostgreSQL with pgvector: DAKERA_TEST_PG_URL's, else a throw-away cluster in
    DAKERA_TEST_PG_DIR (default /tmp/dakera-pgtest; the postgres user must reach it) set up
    by `make pg-up` (installs PostgreSQL 15 + pgvector once, as root) and stopped at the
    end of the session unless it was already running."""
    if psycopg is None:
        _pg_unavailable("psycopg is not installed (make install)")
    given = os.environ.get("DAKERA_TEST_PG_URL")
    if given:
        yield Postgres(given)
        return
    make = ["make", "-s", "-C", str(ROOT), f"PG_DIR={PG_TEST_DIR}", f"PG_PORT={PG_TEST_PORT}"]
    up = subprocess.run([*make, "pg-up"], env={**os.environ, "PG_FAST": "1"},
                        capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        _pg_unavailable(f"`make pg-up` failed: {(up.stderr or up.stdout).strip()[-500:]}")
    started = "already running" not in up.stdout
    pg = Postgres(f"postgresql://postgres@127.0.0.1:{PG_TEST_PORT}/postgres")
    yield pg
    try:
        pg.drop_databases()
    finally:
        if started:
            subprocess.run([*make, "pg-down"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def dakera_backend(request: pytest.FixtureRequest) -> str:
    """The backend: "sqlite", or each of BACKENDS in turn in a module marked both_backends."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="module")
def backend_env(request: pytest.FixtureRequest, dakera_backend: str,
                dakera_target: str) -> Callable[[], dict[str, str]]:
    """Environment that puts a new server on the module's backend (a new database each
    call on postgres; nothing on sqlite: the data dir's file)."""
    if dakera_backend == "sqlite":
        return dict
    if dakera_target == "binary" and os.environ.get("DAKERA_PG_TESTS") != "all":
        pytest.skip("the frozen binary on postgres runs with DAKERA_PG_TESTS=all (left out "
                    "of make test for its time: about 30 s more)")
    pg: Postgres = request.getfixturevalue("postgres")
    return lambda: {"DAKERA_DATABASE_URL": pg.new_database()}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory,
                dakera_command: tuple[list[str], dict[str, str]],
                backend_env: Callable[[], dict[str, str]]) -> Iterator[LiveServer]:
    """One server per test module, target and backend (starting it costs a model load)."""
    server = LiveServer(tmp_path_factory.mktemp("live") / "data", command=dakera_command,
                        extra_env=backend_env()).start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.stop()


@pytest.fixture
def fresh_server(tmp_path: Path, dakera_command: tuple[list[str], dict[str, str]],
                 backend_env: Callable[[], dict[str, str]]) -> Iterator[LiveServer]:
    """A server of its own, for tests that restart or kill it."""
    server = LiveServer(tmp_path / "data", command=dakera_command, extra_env=backend_env())
    yield server
    if server.proc and server.proc.poll() is None:
        server.kill()


# -- a real browser for the memory browser's pages ------------------------------------------

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox",  # Playwright adds both already; listed so nobody drops them
    "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
    # Chromium resolves no host name but loopback ones (it would look up Google's otherwise)
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]


def chromium_path() -> str | None:
    """DAKERA_CHROMIUM, else Debian's chromium, else a chromium(-browser) on the PATH."""
    import shutil

    named = os.environ.get("DAKERA_CHROMIUM")
    if named:
        return named if os.path.exists(named) else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = candidate if os.path.exists(candidate) else shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per module (Playwright over the system's Chromium; no
    `playwright install`). Not per session: Playwright's sync API keeps an asyncio loop
    running in this thread while it is open, which breaks later tests' asyncio.run.
    Without a Chromium the browser tests skip, except under `make test` and in CI
    (DAKERA_BROWSER_TESTS=required or CI set): there they fail (`make test` installs one
    first: make browser-deps)."""
    path = chromium_path()
    if path is None:
        message = "no Chromium: `make browser-deps` installs Debian's chromium"
        if os.environ.get("DAKERA_BROWSER_TESTS") == "required" or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS,
                                              timeout=60_000)
        yield launched
        launched.close()


class BrowserPages:
    """Fresh browser contexts (cookies, colour scheme) that fail the test if a page asked
    for anything off loopback or raised a JavaScript error."""

    def __init__(self, browser: object) -> None:
        self.browser = browser
        self.contexts: list[object] = []
        self.offsite: list[str] = []
        self.errors: list[str] = []

    def new(self, color_scheme: str = "light", width: int = 1100, height: int = 760
            ) -> object:
        import urllib.parse

        ctx = self.browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": width, "height": height}, color_scheme=color_scheme,
            locale="en-GB", timezone_id="UTC", reduced_motion="reduce",
            service_workers="block")
        ctx.set_default_timeout(15_000)

        def guard(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            if urllib.parse.urlsplit(url).hostname in LOOPBACK:
                route.continue_()  # type: ignore[attr-defined]
                return
            self.offsite.append(url)
            route.abort("blockedbyclient")  # type: ignore[attr-defined]

        ctx.route("**/*", guard)
        page = ctx.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.contexts.append(ctx)
        return page

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()  # type: ignore[attr-defined]


@pytest.fixture
def pages(browser: object) -> Iterator[BrowserPages]:
    made = BrowserPages(browser)
    yield made
    made.close()
    assert not made.offsite, f"requests left loopback: {made.offsite}"
    assert not made.errors, f"JavaScript errors: {made.errors}"
