"""The server side of the command: serve, mcp, reindex, check, settings, service install."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from app import __version__
from app.cli.main import is_loopback, load_settings, main, setup_logging
from app.config import Settings, describe

# A signalled server exits within this many seconds whatever happens (service.close() takes
# at most 7 of them).
SHUTDOWN_DEADLINE = 9.0
GRACE = 3.0  # seconds the HTTP server gets to finish its requests after a signal
CLOSE_BY = 8.0  # the service is closed by then (queued writes drained or failed)


@main.command()
@click.option("--host", default=None,
              help="Address to bind [default: 127.0.0.1; env DAKERA_HOST].")
@click.option("--port", type=int, default=None,
              help="Port to listen on [default: 7700; env DAKERA_PORT].")
@click.option("--data-dir", default=None,
              help="Where the database and indexes live [default: per-user data dir; "
                   "env DAKERA_DATA_DIR].")
@click.option("--log-level", default=None,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log verbosity [default: info; env DAKERA_LOG_LEVEL].")
@click.option("--get", "get_path", metavar="PATH", default=None,
              help="Answer one GET request for PATH in-process (no port is opened), print "
                   "the response body and exit: 0 for a 2xx/3xx status, 1 otherwise. "
                   "A smoke test, e.g. --get /health/ready.")
def serve(host: str | None, port: int | None, data_dir: str | None,
          log_level: str | None, get_path: str | None) -> None:
    """Run the memory server (HTTP API on one port).

    Every request but the health probes needs `Authorization: Bearer <key>`: the root key
    DAKERA_API_KEY or a key made with `dakera keys create`. Without a root key the server
    only binds loopback and answers only local Host names and same-origin requests.
    """
    settings = load_settings(host=host, port=port, data_dir=data_dir, log_level=log_level)
    setup_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("dakera")
    if get_path is not None:
        if not get_path.startswith("/"):
            raise click.UsageError(f"--get takes a path starting with '/', not {get_path!r}")
        sys.exit(_get_once(settings, get_path))
    if not settings.api_key:
        if not is_loopback(settings.host):
            raise click.UsageError(
                f"refusing to bind {settings.host} without an API key: set DAKERA_API_KEY "
                "(clients send it as 'Authorization: Bearer <key>') or bind 127.0.0.1")
        log.warning("DAKERA_API_KEY is not set: authentication is off, serving on loopback "
                    "only")
    sys.exit(asyncio.run(_serve(settings)))


async def _serve(settings: Settings) -> int:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    from app.errors import DakeraError
    from app.service import Service
    from app.service.systemd import Notifier

    log = logging.getLogger("dakera")
    notifier = Notifier()
    service = Service(settings)
    try:
        service.start()
    except DakeraError as exc:
        log.error("%s", exc)
        return 1
    app = _app(service)
    server = Server(app, address=settings.host, port=settings.port,
                    interface=Interfaces.ASGI, log_enabled=False, websockets=False,
                    backlog=1024)
    loop = asyncio.get_running_loop()
    exit_code = 0
    signalled_at: float | None = None
    closing: asyncio.Future[None] | None = None

    def close_service() -> asyncio.Future[None]:
        """Close the service once, within what is left of the shutdown budget."""
        nonlocal closing
        if closing is None:
            start = signalled_at if signalled_at is not None else time.monotonic()
            budget = max(1.0, start + CLOSE_BY - time.monotonic())
            closing = asyncio.ensure_future(asyncio.to_thread(service.close, budget))
        return closing

    def clients_linger() -> None:
        """The HTTP server still waits for clients GRACE seconds after the signal (a slow
        or stuck client): close the service without them, and exit."""
        if closing is not None:
            return
        log.warning("client connections still open %.0f s after the signal: closing "
                    "without them", GRACE)
        close_service().add_done_callback(lambda _: _exit_now(exit_code))

    def stop(*_: Any) -> None:
        nonlocal signalled_at
        if signalled_at is not None:
            return
        signalled_at = time.monotonic()
        log.info("shutting down")
        _exit_by_deadline(SHUTDOWN_DEADLINE)
        notifier.stopping()
        service.events.close()  # end the event streams: open ones would hold the server up
        server.stop()
        loop.call_later(GRACE, clients_linger)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):  # Windows
            signal.signal(sig, stop)

    async def watch_start() -> None:
        nonlocal exit_code
        await asyncio.to_thread(service.wait_ready_quietly)
        if service.failure is not None:
            log.error("cannot serve: %s", service.failure)
            exit_code = 1
            server.stop()
        else:
            # What start-up built (modules, the app, the model session) lives as long as
            # the process: keep it out of every later collection, so that full collections
            # stay short however much was loaded.
            gc.collect()
            gc.freeze()
            if notifier.enabled:  # systemd hears "ready" once the port answers ready
                url = f"{local_url(settings.host, settings.port)}/health/ready"
                status, detail = await asyncio.to_thread(wait_until_ready, url, 60.0)
                if status != 200:
                    log.warning("%s did not answer 200 (%s): telling systemd anyway", url,
                                detail)
                notifier.ready(f"serving on {settings.host}:{settings.port}")
                if notifier.watchdog_interval:
                    tasks.append(asyncio.create_task(
                        watchdog(service, notifier, notifier.watchdog_interval)))
            log.info("dakera %s ready on http://%s:%d (data dir %s)", __version__,
                     settings.host, settings.port, settings.data_dir)

    tasks = [asyncio.create_task(watch_start())]
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        await close_service()
    return exit_code


def _exit_now(code: int) -> None:
    logging.shutdown()
    os._exit(code)


def _exit_by_deadline(seconds: float) -> None:
    """However the disk or the clients behave, a signalled server is gone within `seconds`.
    Exiting then loses nothing acknowledged: a write is acknowledged only once committed."""

    def hard_exit() -> None:
        logging.getLogger("dakera").error(
            "shutdown did not finish within %.0f s: exiting now (writes not yet answered "
            "were not stored; every acknowledged write is on disk)", seconds)
        _exit_now(1)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()


async def watchdog(service: Any, notifier: Any, interval: float) -> None:
    """Ping the systemd watchdog every half interval, each time after an empty write job
    has committed: a stuck writer (or event loop) stops the pings and systemd restarts the
    service (WatchdogSec=)."""
    log = logging.getLogger("dakera")
    period = interval / 2
    while True:
        await asyncio.sleep(period)
        try:
            await asyncio.to_thread(service.check_writer, period)
        except Exception as exc:
            log.error("watchdog: the writer did not commit an empty job within %.0fs (%s): "
                      "not pinging systemd", period, exc or type(exc).__name__)
            continue
        notifier.watchdog()


def local_url(host: str, port: int) -> str:
    """The URL a process on this host reaches the server at."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def probe(url: str, timeout: float) -> tuple[int, str]:
    """(status, body or error) of a GET; status 0 when nothing answered."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn_type = (http.client.HTTPSConnection if parts.scheme == "https"
                 else http.client.HTTPConnection)
    conn = conn_type(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        response = conn.getresponse()
        return response.status, response.read(2000).decode("utf-8", "replace")
    except OSError as exc:
        return 0, str(exc) or type(exc).__name__
    finally:
        conn.close()


def wait_until_ready(url: str, timeout: float) -> tuple[int, str]:
    """Poll the readiness probe until it answers 200 or the time is up."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        status, detail = probe(url, 2.0)
        if status == 200 or time.monotonic() > deadline:
            return status, detail
        time.sleep(0.05)


@main.command("healthcheck")
@click.option("--url", default=None,
              help="The server's base URL [default: http://127.0.0.1:$DAKERA_PORT, or "
                   "DAKERA_HOST when it is a specific address].")
@click.option("--timeout", type=float, default=5.0, show_default=True,
              help="Seconds to wait for the answer.")
def healthcheck(url: str | None, timeout: float) -> None:
    """Probe a running server's readiness (GET /health/ready) over HTTP.

    Exits 0 when it answers 200 (model loaded, storage readable), 1 otherwise: a container
    HEALTHCHECK that needs no curl.
    """
    if url is None:
        settings = load_settings()
        url = local_url(settings.host, settings.port)
    target = url.rstrip("/") + "/health/ready"
    status, detail = probe(target, timeout)
    if status == 200:
        click.echo(f"ready: {target}")
        return
    click.echo(f"not ready: {target}: " + (f"{status} {detail}" if status else detail),
               err=True)
    sys.exit(1)


def _app(service: Any) -> Any:
    """The server's ASGI app: the HTTP API with the MCP tools mounted at /mcp and the memory
    browser's pages at /ui (unless DAKERA_UI=false)."""
    from app.api import create_app
    from app.mcp.mount import McpMount
    from app.web import pages_router

    routers = [pages_router(service)] if service.settings.ui else []
    return create_app(service, mounts=[McpMount(service)], routers=routers,
                      manage_lifecycle=False)


def _get_once(settings: Settings, target: str) -> int:
    """Start the service, send one GET through the ASGI app in this process, print the body."""
    from app.service import Service

    service = Service(settings)
    try:
        service.start(wait=True)
    except Exception as exc:
        logging.getLogger("dakera").error("cannot serve: %s", exc)
        return 1
    try:
        app = _app(service)
        status, body = asyncio.run(_asgi_get(app, target, settings))
    finally:
        service.close()
    click.echo(body.decode("utf-8", "replace"))
    return 0 if status < 400 else 1


async def _asgi_get(app: Any, target: str, settings: Settings) -> tuple[int, bytes]:
    from urllib.parse import unquote

    path, _, query = target.partition("?")
    headers = [(b"host", f"{settings.host}:{settings.port}".encode())]
    if settings.api_key:
        headers.append((b"authorization", f"Bearer {settings.api_key}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "GET", "scheme": "http", "path": unquote(path),
             "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 0),
             "server": (settings.host, settings.port)}
    status = 500
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


@main.group()
def service() -> None:
    """Run dakera as a systemd service (Linux, one-file binary)."""


def _unit_template() -> str:
    bundled = getattr(sys, "_MEIPASS", None)  # inside the binary: share/dakera.service
    candidates = [Path(bundled) / "share" / "dakera.service"] if bundled else []
    candidates.append(Path(__file__).resolve().parents[2] / "build" / "dakera.service")
    for path in candidates:
        if path.is_file():
            return path.read_text()
    raise click.ClickException("the unit file (build/dakera.service) is not available here")


@service.command("install")
@click.option("--bin-dir", default="/usr/local/bin", show_default=True,
              help="Where to copy this binary; the unit runs it from there.")
@click.option("--unit-dir", default="/etc/systemd/system", show_default=True,
              help="Where to write dakera.service.")
@click.option("--env-file", default="/etc/dakera/dakera.env", show_default=True,
              help="Environment file with DAKERA_API_KEY; created (mode 0600, random key) "
                   "when missing, kept otherwise.")
def service_install(bin_dir: str, unit_dir: str, env_file: str) -> None:
    """Install the binary, the systemd unit and a key file (run it with sudo).

    Then: systemctl daemon-reload && systemctl enable --now dakera
    """
    # The one-file binary runs from its unpack cache and names its own file here.
    source = os.environ.get("DAKERA_EXECUTABLE") or (
        sys.executable if getattr(sys, "frozen", False) else None)
    if not source or not Path(source).is_file():
        raise click.ClickException(
            "`service install` installs the one-file binary: run it from the binary "
            "(make binary builds dist/dakera), or follow build/dakera.service by hand")
    try:
        _install_service(source, Path(bin_dir), Path(unit_dir), Path(env_file))
    except OSError as exc:
        raise click.ClickException(f"{exc} (run it with sudo, or choose other paths: "
                                   "see --help)") from None


def _install_service(source: str, bin_dir: Path, unit_dir: Path, env_path: Path) -> None:
    target = bin_dir / "dakera"
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(source).resolve() != target.resolve():
        tmp = target.with_name(f".dakera.tmp{os.getpid()}")
        shutil.copyfile(source, tmp)
        tmp.chmod(0o755)
        tmp.replace(target)  # atomic, and fine while an old version runs
        click.echo(f"installed {target}")
    unit = _unit_template()
    unit = unit.replace("ExecStart=/usr/local/bin/dakera serve", f"ExecStart={target} serve")
    unit = unit.replace("EnvironmentFile=/etc/dakera/dakera.env", f"EnvironmentFile={env_path}")
    unit_path = unit_dir / "dakera.service"
    unit_path.parent.mkdir(parents=True, exist_ok=True)
    unit_path.write_text(unit)
    unit_path.chmod(0o644)
    click.echo(f"wrote {unit_path}")
    if env_path.exists():
        click.echo(f"kept {env_path}")
    else:
        env_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# dakera settings (see `dakera settings`); clients send this key as\n"
                    "# 'Authorization: Bearer <key>'.\n"
                    f"DAKERA_API_KEY={secrets.token_hex(32)}\n")
        click.echo(f"wrote {env_path} with a new random DAKERA_API_KEY")
    click.echo("next: systemctl daemon-reload && systemctl enable --now dakera")
    click.echo("      (it listens on 0.0.0.0:7700; data in /var/lib/dakera)")


@main.command("mcp")
@click.option("--url", envvar=["DAKERA_URL", "DAKERA_API_URL"], default=None,
              help="Use the dakera server at this URL instead of opening the data dir, e.g. "
                   "http://127.0.0.1:7700 [env DAKERA_URL or DAKERA_API_URL]. The API key is "
                   "read from DAKERA_API_KEY.")
@click.option("--data-dir", default=None,
              help="The data dir to open when no server URL is given [default: per-user data "
                   "dir; env DAKERA_DATA_DIR].")
@click.option("--log-level", default=None,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log verbosity; logs go to stderr [default: info; env DAKERA_LOG_LEVEL].")
@click.option("--profile", "mcp_profile", default=None,
              type=click.Choice(["core", "admin", "power", "all"], case_sensitive=False),
              help="Which tools to list: core (the 14 everyday tools), admin, power or all "
                   "[default: core; env DAKERA_MCP_PROFILE].")
def mcp(url: str | None, data_dir: str | None, log_level: str | None,
        mcp_profile: str | None) -> None:
    """Serve the dakera MCP tools over stdio, for hosts that launch a command.

    With a server URL (--url, DAKERA_URL or DAKERA_API_URL) the tools talk to that running
    server. Without one the engine runs in this process and holds the data dir's lock; if
    another process holds it, a dakera server on DAKERA_HOST:DAKERA_PORT (default
    127.0.0.1:7700) is used when one answers there. stdout carries only JSON-RPC.
    """
    settings = load_settings(data_dir=data_dir, log_level=log_level,
                             mcp_profile=mcp_profile and mcp_profile.lower())
    setup_logging(settings.log_level, settings.log_format)
    for noisy in ("mcp", "httpx", "httpcore"):  # per-request chatter, unless debugging
        if settings.log_level != "debug":
            logging.getLogger(noisy).setLevel(logging.WARNING)
    from app.mcp.stdio import run

    sys.exit(run(settings, url or None, settings.api_key))


@main.command("reindex")
@click.option("--data-dir", default=None,
              help="The data dir to re-embed [default: per-user data dir; env "
                   "DAKERA_DATA_DIR].")
@click.option("--log-level", default=None,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log verbosity [default: info; env DAKERA_LOG_LEVEL].")
def reindex_cmd(data_dir: str | None, log_level: str | None) -> None:
    """Re-embed every memory with the configured model (DAKERA_EMBEDDING_MODEL).

    A data dir keeps the model its vectors were made with, and a server refuses to start
    with another one. Run this, with the server stopped, to move the data dir to the
    configured model. Interrupted, it keeps the old vectors; run it again to continue.
    """
    from app.errors import DakeraError
    from app.service.reindex import reindex

    settings = load_settings(data_dir=data_dir, log_level=log_level)
    setup_logging(settings.log_level, settings.log_format)
    bar: Any = None

    def start(total: int) -> None:
        nonlocal bar
        click.echo(f"re-embedding {total} memories in {settings.data_dir} with "
                   f"{settings.embedding_model}", err=True)
        bar = click.progressbar(length=total, label="memories", file=sys.stderr,
                                show_pos=True, show_eta=True)
        bar.__enter__()

    try:
        count = reindex(settings, on_total=start, on_progress=lambda n: bar.update(n))
    except DakeraError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"done: {count} memories now embedded with {settings.embedding_model}; "
               "the vector indexes are rebuilt when the server starts")


@main.command("check")
@click.option("--data-dir", default=None,
              help="The data dir to check [default: per-user data dir; env DAKERA_DATA_DIR].")
@click.option("--quick", is_flag=True,
              help="SQLite's quick_check instead of the full integrity_check (faster on a "
                   "large database; misses damaged indexes inside the file).")
def check_cmd(data_dir: str | None, quick: bool) -> None:
    """Check a data dir: the database, the saved vector indexes and the model files.

    Prints what it finds and exits 0 when everything is sound, 1 otherwise. It changes
    nothing and can run while a server uses the data dir.
    """
    from app.service.check import check_data_dir

    settings = load_settings(data_dir=data_dir)
    click.echo(f"checking {settings.data_dir}", err=True)
    bad = 0
    for finding in check_data_dir(settings, full=not quick,
                                  on_step=lambda step: click.echo(f"  {step} ...", err=True)):
        if finding.ok:
            click.echo(f"ok       {finding.part}: {finding.text}")
        else:
            bad += 1
            click.echo(f"PROBLEM  {finding.part}: {finding.text}")
            click.echo(f"         what to do: {finding.remedy}")
    click.echo(f"{bad} problem(s) found" if bad else "everything is sound")
    sys.exit(1 if bad else 0)


@main.command("settings")
def settings_cmd() -> None:
    """List every setting with its environment variable, default and meaning."""
    for env, default, help_text in describe():
        click.echo(f"{env}\n    default: {default or '(unset)'}\n    {help_text}")
