"""The per-agent vector indexes, kept in step with the stored vectors.

Loads each saved index and replays the index log over it; rebuilds from the stored vectors
when the file is missing, unreadable, from another model or older than the log. The vectors
and the log come from a `VectorSource` (the store's `vectors`); the index does not import
the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.index.hnsw import AgentIndex
from app.models import VectorSource

log = logging.getLogger("dakera.index")


class IndexRegistry:
    def __init__(self, source: VectorSource, folder: Path, model_id: str, ef: int,
                 in_commit_order: Callable[[Callable[[], None]], None]) -> None:
        """`in_commit_order(fn)` runs fn between two commits, as the after-commit hooks run
        (the writer's thread): a swap there misses no committed change."""
        self.source = source
        self.in_commit_order = in_commit_order
        self.folder = folder
        self.model_id = model_id
        self.ef = ef
        self._indexes: dict[str, AgentIndex] = {}
        self._lock = threading.Lock()
        self._counts = threading.Lock()
        # indexes built from the stored vectors, by occasion: at start-up (no usable saved
        # file), on first use after start (a new agent), to compact one
        self.builds = {"start": 0, "first_use": 0, "compaction": 0}
        self._starting = False

    def open_all(self) -> None:
        """Load (or rebuild) the index of every agent: called once at start."""
        self._starting = True
        try:
            for agent_id in self.source.agents():
                self.get(agent_id)
        finally:
            self._starting = False

    def find(self, agent_id: str) -> AgentIndex | None:
        """The agent's index, or None when the agent has no memories (nothing is created)."""
        index = self._indexes.get(agent_id)
        if index is None and self.source.has(agent_id):
            index = self.get(agent_id)
        return index

    def get(self, agent_id: str) -> AgentIndex:
        index = self._indexes.get(agent_id)
        if index is not None:
            return index
        with self._lock:
            index = self._indexes.get(agent_id)
            if index is None:
                index = self._open(agent_id)
                self._indexes[agent_id] = index
            return index

    def _open(self, agent_id: str) -> AgentIndex:
        dim = self.source.dimension
        index = AgentIndex.load(self.folder, agent_id, self.model_id, dim, self.ef)
        if index is not None and index.seq < self.source.log_trimmed(agent_id):
            log.info("index for %s predates the retained log: rebuilding", agent_id)
            index = None
        if index is None:
            return self._rebuild(agent_id, "start" if self._starting else "first_use")
        self._replay(index)
        return index

    def _replay(self, index: AgentIndex) -> None:
        entries = self.source.log(index.agent_id, index.seq)
        if not entries:
            return
        last_op: dict[int, tuple[int, str]] = {}
        for seq, label, op in entries:
            last_op[label] = (seq, op)
        adds = [label for label, (_, op) in last_op.items() if op == "add"]
        dels = [label for label, (_, op) in last_op.items() if op == "del"]
        head = entries[-1][0]
        if adds:
            labels, vectors = self.source.get(adds)
            index.add(labels, vectors)
        index.delete(dels, seq=head)
        log.info("index for %s: replayed %d changes", index.agent_id, len(entries))

    def _rebuild(self, agent_id: str, occasion: str) -> AgentIndex:
        start = time.perf_counter()
        head = self.source.log_head(agent_id)
        index = AgentIndex(agent_id, self.source.dimension, self.ef, seq=0)
        for labels, vectors in self.source.of_agent(agent_id):
            index.add(labels, vectors)
        # Changes committed while we read are in the log after `head`: replay them.
        index.seq = head
        self._replay(index)
        index.dirty = True
        with self._counts:
            self.builds[occasion] += 1
        log.info("index for %s: rebuilt %d vectors in %.2fs", agent_id, len(index),
                 time.perf_counter() - start)
        return index

    # -- kept in step by the writer (after each commit, in commit order) ----------------

    def added(self, agent_id: str, labels: list[int], vectors: np.ndarray, seq: int) -> None:
        self.get(agent_id).add(np.asarray(labels, dtype=np.int64), vectors, seq)

    def deleted(self, agent_id: str, labels: list[int], seq: int) -> None:
        self.get(agent_id).delete(labels, seq)

    def compact(self) -> int:
        """Rebuild the indexes whose deleted slots outnumber their live vectors. The build
        runs outside the writer; the final catch-up and the swap run in commit order, so no
        change committed meanwhile is missed. Returns how many were rebuilt."""
        done = 0
        for agent_id, index in list(self._indexes.items()):
            if not index.needs_compaction():
                continue
            fresh = self._rebuild(agent_id, "compaction")

            def finish(agent_id: str = agent_id, fresh: AgentIndex = fresh) -> None:
                self._replay(fresh)
                with self._lock:
                    self._indexes[agent_id] = fresh

            self.in_commit_order(finish)
            done += 1
        return done

    # -- persistence --------------------------------------------------------------------

    def save_dirty(self) -> list[tuple[str, int]]:
        """Save every changed index; returns (agent_id, seq) of each saved."""
        saved = []
        for agent_id, index in list(self._indexes.items()):
            if index.dirty:
                saved.append((agent_id, index.save(self.folder, self.model_id)))
        return saved

    def stats(self) -> dict[str, int]:
        return {agent: len(index) for agent, index in self._indexes.items()}
