"""`dakera mcp`: the MCP tools over stdio, for hosts that launch a command.

It never opens a data dir that another process owns. Which engine answers:

1. DAKERA_URL / DAKERA_API_URL (or --url) given: that running server, over its REST API
   with DAKERA_API_KEY as the Bearer key. The data dir is not touched.
2. Otherwise the engine runs in this process, holding the data dir's exclusive lock for as
   long as the host keeps the command running.
3. If another process holds the lock (usually `dakera serve`), the server at
   DAKERA_HOST:DAKERA_PORT (default 127.0.0.1:7700) is asked for /health/live; if a dakera
   server answers, it is used as in 1. If none does, the command exits with a message saying
   who holds the data dir and how to set DAKERA_URL.

stdout carries JSON-RPC only: logs go to stderr, and while serving the SDK points file
descriptor 1 at stderr so nothing else can write to the wire.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import anyio
import anyio.to_thread
import httpx
from mcp.server.stdio import stdio_server

from app.config import Settings
from app.errors import DataDirInUse
from app.mcp.backend import Backend, LocalBackend, RemoteBackend
from app.mcp.server import build_server
from app.service import Service

log = logging.getLogger("dakera.mcp")

PROBE_TIMEOUT = 2.0


def default_url(settings: Settings) -> str:
    """The address a `dakera serve` with these settings listens on, as a client reaches it."""
    return settings.local_url


async def find_server(url: str) -> bool:
    """Whether a dakera server answers at `url` (the open liveness probe, no key needed)."""
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as client:
            response = await client.get(url.rstrip("/") + "/health/live")
        return response.status_code == 200 and response.json().get("alive") is True
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def run(settings: Settings, url: str | None, api_key: str | None) -> int:
    """Serve MCP on stdin/stdout until the host closes stdin; the process exit code."""
    return anyio.run(_main, settings, url, api_key)


async def _main(settings: Settings, url: str | None, api_key: str | None) -> int:
    # Choose the engine before taking over stdin/stdout: a refusal then exits at once (the
    # SDK's stdin reader cannot be cancelled, so leaving a running stdio server would wait
    # for the host to close stdin).
    service: Service | None = None
    remote: RemoteBackend | None = None
    try:
        if url:
            remote = await _remote(url, api_key)
        else:
            service = Service(settings)
            try:
                service.start()  # takes the data dir lock, loads the model in background
                log.info("dakera mcp: engine in this process, data dir %s", settings.data_dir)
            except DataDirInUse as exc:
                service = None
                fallback = default_url(settings)
                if not await find_server(fallback):
                    log.error(
                        "dakera mcp: cannot open the data dir: %s. If that is a running "
                        "`dakera serve`, let dakera mcp talk to it: set DAKERA_URL to its "
                        "address (nothing answers at %s), and DAKERA_API_KEY if it uses one.",
                        exc.message, fallback)
                    return 1
                log.info("dakera mcp: the data dir %s is in use; a dakera server answers at "
                         "%s, using it", settings.data_dir, fallback)
                remote = await _remote(fallback, api_key)
        backend: Backend = remote if remote is not None else LocalBackend(_started(service))
        server = build_server(backend, settings.mcp_profile)
        async with stdio_server() as (read_stream, write_stream), \
                anyio.create_task_group() as tg:
            tg.start_soon(_exit_on_signal, service)
            await server.run(read_stream, write_stream, server.create_initialization_options())
            tg.cancel_scope.cancel()  # stdin closed: the host is done with us
    finally:
        if service is not None:
            await anyio.to_thread.run_sync(service.close)
        if remote is not None:
            await remote.aclose()
    return 0


def _started(service: Service | None) -> Service:
    assert service is not None
    return service


async def _remote(url: str, api_key: str | None) -> RemoteBackend:
    remote = RemoteBackend(url, api_key)
    problem = await remote.probe()
    if problem:  # keep serving: the tools report it on every call, where the user sees it
        log.warning("dakera mcp: the dakera server at %s: %s", url, problem)
    else:
        log.info("dakera mcp: using the dakera server at %s", url)
    return remote


async def _exit_on_signal(service: Service | None) -> None:
    """SIGTERM/SIGINT: finish queued writes, save the indexes, release the data dir, exit.
    (The stdin reader blocks in a worker thread that cannot be cancelled, so the process
    exits directly once the engine is closed.)"""
    try:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("dakera mcp: signal %d, shutting down", signum)
                if service is not None:
                    await anyio.to_thread.run_sync(service.close)
                logging.shutdown()
                sys.stderr.flush()
                os._exit(0)
    except NotImplementedError:  # Windows: default signal handling
        return
