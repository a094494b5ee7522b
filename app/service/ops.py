"""Ops: server stats, diagnostics and KPIs (GET /v1/ops/stats, /ops/diagnostics, /v1/kpis)."""

from __future__ import annotations

import os
import platform
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import __version__
from app.config import Settings
from app.errors import FeatureDisabledError
from app.models import Indexes
from app.service.events import EventBus
from app.service.metrics import Metrics
from app.store import Store, sqlite_version

DAY = 86_400


def feature_disabled(switch: str, what: str) -> FeatureDisabledError:
    return FeatureDisabledError(f"{what} is turned off ({switch}=false)", details=switch)


class Ops:
    def __init__(self, store: Store, indexes: Indexes, metrics: Metrics,
                 events: EventBus, settings: Settings, now: Callable[[], int],
                 uptime: Callable[[], int], model_id: str) -> None:
        self.db = store
        self.indexes = indexes
        self.metrics = metrics
        self.events = events
        self.settings = settings
        self.now = now
        self.uptime = uptime
        self.model_id = model_id

    def _state(self) -> tuple[str, str | None]:
        try:
            self.db.ping()
            return "healthy", None
        except Exception as exc:
            return "degraded", str(exc)

    def stats(self) -> dict[str, Any]:
        """Counts and state of the server: every agent's memories are its namespace's
        vectors (_dakera_agent_<id>)."""
        counts = self.db.agents.memory_counts()
        state, _ = self._state()
        return {"version": __version__, "total_vectors": sum(counts.values()),
                "namespace_count": len(counts), "uptime_seconds": self.uptime(),
                "timestamp": self.now(), "state": state,
                "total_memories": sum(counts.values()), "agent_count": len(counts),
                "pending_writes": self.db.pending_writes(),
                "event_subscribers": self.events.subscribers}

    def diagnostics(self) -> dict[str, Any]:
        """What an operator looks at first: storage, model, indexes, event streams,
        process."""
        state, error = self._state()
        s = self.settings
        sizes = self.indexes.stats()
        db = Path(s.db_path)
        return {
            "status": state, "error": error, "version": __version__,
            "uptime_seconds": self.uptime(), "timestamp": self.now(),
            "storage": {"backend": "sqlite", "path": self.db.location,
                        "sqlite_version": sqlite_version(), "size_bytes": _size(db),
                        "wal_bytes": _size(db.with_name(db.name + "-wal")),
                        "pending_writes": self.db.pending_writes(),
                        "synchronous": s.sqlite_synchronous},
            "model": {"id": self.model_id, "dimension": self.db.dimension},
            "indexes": {"loaded": len(sizes), "vectors": sum(sizes.values()),
                        "builds": dict(self.indexes.builds), "folder": str(s.index_dir)},
            "events": {"subscribers": self.events.subscribers,
                       "published": self.events.published, "dropped": self.events.dropped,
                       "buffer": self.events.buffer},
            "metrics": {"enabled": s.metrics, "top_agents": s.metrics_top_agents},
            "process": _process(),
        }

    def kpis(self) -> dict[str, Any]:
        """The contract's 8 KPIs: latencies and the 5xx rate of the last minute (HTTP),
        agents active in the last 24 h, sessions started in the last 7 days, the share of
        memories stored in the last 7 days (since start if later) still held."""
        if not self.settings.metrics:
            raise feature_disabled("DAKERA_METRICS", "metrics collection")
        now = self.now()
        since, stored = self.metrics.stored_since()
        held = self.db.memories.created_since(since) if stored else 0
        return {**self.metrics.kpis(),
                "active_agents_count": self.db.agents.active_since(now - DAY),
                "session_count_week": self.db.sessions.started_since(now - 7 * DAY),
                "cross_agent_network_node_count": 0,
                "memory_retention_7d_pct": round(min(100.0, 100.0 * held / stored), 3)
                if stored else 100.0}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _process() -> dict[str, Any]:
    out: dict[str, Any] = {"pid": os.getpid(), "python": platform.python_version(),
                           "frozen": bool(getattr(sys, "frozen", False)),
                           "threads": threading.active_count()}
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        out["rss_bytes"] = pages * os.sysconf("SC_PAGE_SIZE")
        out["open_files"] = len(os.listdir("/proc/self/fd"))
    except (OSError, ValueError, IndexError):  # not Linux
        pass
    return out


__all__ = ["Ops", "feature_disabled"]
