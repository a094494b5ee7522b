"""The `dakera` command: the server (serve, mcp, reindex, check, settings, service), API keys
(keys), and the client verbs that drive a server (store, recall, forget, agents, stats,
export, import, backup)."""

# The command line is the process's entry (`dakera`, `python -m app`, the binary): set the
# allocator's policy before numpy and onnxruntime start their threads.
from app.memory import limit_arenas

limit_arenas()

from app.cli import keys, server, verbs  # noqa: E402, F401  (they add their commands to `main`)
from app.cli.main import is_loopback, load_settings, main  # noqa: E402

__all__ = ["is_loopback", "load_settings", "main"]
