"""The `dakera` command: the server (serve, mcp, reindex, check, settings, service), API keys
(keys), and the client verbs that drive a server (store, recall, forget, agents, stats,
export, import, backup)."""

from app.cli import keys, server, verbs  # noqa: F401  (they add their commands to `main`)
from app.cli.main import is_loopback, load_settings, main

__all__ = ["is_loopback", "load_settings", "main"]
