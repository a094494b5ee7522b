"""Access statistics of recalled memories, batched: recall never waits for a write.

Each recall records the memories it returned; a background flush writes the counts through
the writer once a second (and at shutdown). A crash loses at most that second of statistics,
never a memory.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable


class AccessLog:
    def __init__(self, flush: Callable[[dict[int, int], int], object],
                 interval: float = 1.0) -> None:
        self._flush = flush  # (rowid -> hits, last access time) -> None
        self._interval = interval
        self._pending: dict[int, int] = {}
        self._last = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dakera-access", daemon=True)
        self._thread.start()

    def record(self, rowids: list[int], now: int) -> None:
        with self._lock:
            for rowid in rowids:
                self._pending[rowid] = self._pending.get(rowid, 0) + 1
            self._last = max(self._last, now)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            last = self._last
        if pending:
            self._flush(pending, last)

    def close(self, timeout: float | None = None) -> None:
        """Stop the flusher and queue what is pending (the writer's drain commits it)."""
        self._stop.set()
        self._thread.join(timeout)
        with contextlib.suppress(Exception):  # statistics only: never block a shutdown
            self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # best effort while the writer closes
                self.flush()
