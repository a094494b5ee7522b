"""The `dakera` command: serve, and tools around the data dir."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import signal
import sys
from typing import Any

import click

from app import __version__
from app.config import Settings, describe

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dakera")
def main() -> None:
    """dakera: a self-hosted memory server for AI agents."""


@main.command()
@click.option("--host", envvar="DAKERA_HOST", default=None,
              help="Address to bind [default: 127.0.0.1; env DAKERA_HOST].")
@click.option("--port", envvar="DAKERA_PORT", type=int, default=None,
              help="Port to listen on [default: 7700; env DAKERA_PORT].")
@click.option("--data-dir", envvar="DAKERA_DATA_DIR", default=None,
              help="Where the database and indexes live [default: per-user data dir; "
                   "env DAKERA_DATA_DIR].")
@click.option("--log-level", envvar="DAKERA_LOG_LEVEL", default=None,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Log verbosity [default: info; env DAKERA_LOG_LEVEL].")
def serve(host: str | None, port: int | None, data_dir: str | None,
          log_level: str | None) -> None:
    """Run the memory server (HTTP API on one port).

    Every request but the health probes needs `Authorization: Bearer $DAKERA_API_KEY`.
    Without a key the server only binds loopback.
    """
    try:
        settings = Settings.from_env(host=host, port=port, data_dir=data_dir,
                                     log_level=log_level)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    setup_logging(settings.log_level)
    log = logging.getLogger("dakera")
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

    from app.api import create_app
    from app.errors import DakeraError
    from app.service import MemoryService

    log = logging.getLogger("dakera")
    service = MemoryService(settings)
    try:
        service.start()
    except DakeraError as exc:
        log.error("%s", exc)
        return 1
    app = create_app(service, manage_lifecycle=False)
    server = Server(app, address=settings.host, port=settings.port,
                    interface=Interfaces.ASGI, log_enabled=False, websockets=False,
                    backlog=1024)
    loop = asyncio.get_running_loop()
    exit_code = 0

    def stop(*_: Any) -> None:
        log.info("shutting down")
        server.stop()

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
            log.info("dakera %s ready on http://%s:%d (data dir %s)", __version__,
                     settings.host, settings.port, settings.data_dir)

    watcher = asyncio.create_task(watch_start())
    try:
        await server.serve()
    finally:
        watcher.cancel()
        await asyncio.to_thread(service.close)
    return exit_code


@main.command("settings")
def settings_cmd() -> None:
    """List every setting with its environment variable, default and meaning."""
    for env, default, help_text in describe():
        click.echo(f"{env}\n    default: {default or '(unset)'}\n    {help_text}")


if __name__ == "__main__":
    main()
