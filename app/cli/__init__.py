"""The `dakera` command: the server (serve, mcp, reindex, settings, service) and the client
verbs that drive one (store, recall, forget, agents, stats, export, import, backup)."""

from app.cli import server, verbs  # noqa: F401  (they add their commands to `main`)
from app.cli.main import is_loopback, load_settings, main

__all__ = ["is_loopback", "load_settings", "main"]
