"""The `dakera` group and what its commands share: settings, logging, the loopback check."""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import Any

import click

from app import __version__
from app.config import SettingError, Settings

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: Any) -> Settings:
    """The settings, or exit 2 with one line naming the variable that is wrong."""
    try:
        return Settings.from_env(**overrides)
    except SettingError as exc:
        click.echo(f"dakera: {exc}", err=True)
        sys.exit(2)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, fmt: str = "text") -> None:
    """Logs on stderr: readable text, or one JSON object per line (DAKERA_LOG_FORMAT=json)
    whose fields include those a log call passes as `extra` (the access log's method, route,
    status, duration_ms, request_id, key_id)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        handlers=[handler])


EPILOG = """\b
Server:  serve, mcp, reindex, check, settings, service install
Keys:    keys create, list, revoke, rotate (on a running server, root key)
Client:  store, recall, forget, agents, stats, export, import, backup
The client commands talk to a running server (--url, DAKERA_URL; key from
DAKERA_API_KEY) or, when no server holds the data dir, open it themselves.
Exit codes of the client commands: 0 done; 1 failed; 2 no server reachable
(or the data dir is busy); 3 not found; 4 refused (key or permission);
5 invalid input (also: some import records were invalid); 6 server error."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="dakera")
def main() -> None:
    """dakera: a self-hosted memory server for AI agents."""
