"""The per-agent indexes, vectors (hnswlib) and text (BM25), kept in step with the store.

Loads each saved index and replays the index log over it; rebuilds from the stored vectors
and texts when the file is missing, unreadable, from another model or older than the log. At
start the vector rebuilds can run in the background (`open_all(background=True)`): meanwhile
the agent is served by exact search over its stored vectors (`ExactIndex`), and the rebuilt
index is swapped in in commit order, as compaction does. The vectors, the texts and the log
come from an `IndexSource` (the store's `vectors`); the index does not import the store. Both
indexes of an agent follow the same log, each with its own seq; the log is trimmed up to the
older of the two saved.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from app.index.exact import ExactIndex
from app.index.hnsw import AgentIndex, index_name
from app.index.text import TextIndex, doc
from app.models import IndexSource

log = logging.getLogger("dakera.index")

AnyIndex = AgentIndex | ExactIndex
RETRY_SWAP_AFTER = 2.0  # seconds between attempts to swap a rebuilt index in


class IndexRegistry:
    def __init__(self, source: IndexSource, folder: Path, model_id: str, ef: int,
                 in_commit_order: Callable[[Callable[[], None]], None]) -> None:
        """`in_commit_order(fn)` runs fn between two commits, as the after-commit hooks run
        (the writer's thread): a swap there misses no committed change."""
        self.source = source
        self.in_commit_order = in_commit_order
        self.folder = folder
        self.model_id = model_id
        self.ef = ef
        self._indexes: dict[str, AnyIndex] = {}
        self._texts: dict[str, TextIndex] = {}
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._counts = threading.Lock()
        # indexes built from the stored vectors, by occasion: at start-up (no usable saved
        # file; in the background when open_all(background=True)), on first use after start
        # (a new agent), to compact one
        self.builds = {"start": 0, "first_use": 0, "compaction": 0}
        self._starting = False
        self._closed = threading.Event()
        self._rebuilder: threading.Thread | None = None

    def open_all(self, *, background: bool = False) -> None:
        """Load (or rebuild) the index of every agent: called once at start. With
        `background`, the indexes to rebuild are rebuilt by a thread while exact search
        serves their agents."""
        todo = []
        for agent_id in self.source.agents():
            if not background:
                self._starting = True
                try:
                    self.get(agent_id)
                finally:
                    self._starting = False
                continue
            index = self._load(agent_id)
            text = self._open_text(agent_id)
            with self._lock:
                self._texts[agent_id] = text
                if index is None:
                    self._indexes[agent_id] = ExactIndex(agent_id, self.source)
                    todo.append(agent_id)
                else:
                    self._indexes[agent_id] = index
        if todo:
            log.warning("%d vector index(es) to rebuild: rebuilding in the background; recall "
                        "uses exact search over the stored vectors meanwhile", len(todo))
            self._rebuilder = threading.Thread(target=self._rebuild_all, args=(todo,),
                                               name="dakera-index-rebuild", daemon=True)
            self._rebuilder.start()

    def rebuilding(self) -> list[str]:
        """Agents served by exact search while their index is rebuilt."""
        return [a for a, index in list(self._indexes.items()) if isinstance(index, ExactIndex)]

    def close(self, timeout: float | None = None) -> None:
        """Stop the background rebuild (what it has not swapped in is rebuilt next start)."""
        self._closed.set()
        if self._rebuilder is not None:
            self._rebuilder.join(timeout)

    def _rebuild_all(self, agents: list[str]) -> None:
        for agent_id in agents:
            if self._closed.is_set():
                return
            try:
                fresh = self._rebuild(agent_id, "start")
            except Exception:
                if self._closed.is_set():  # the store closed under it: shutting down
                    return
                log.exception("rebuilding the index for %s failed: exact search goes on "
                              "serving it until the next start", agent_id)
                continue
            self._swap_in(agent_id, fresh)

    def _swap_in(self, agent_id: str, fresh: AgentIndex) -> None:
        """Replay what was committed since the build, and swap, in commit order; retried
        while the writer fails (a full disk), until closed."""

        def finish() -> None:
            self._replay(fresh)
            with self._lock:
                self._indexes[agent_id] = fresh

        while not self._closed.is_set():
            try:
                self.in_commit_order(finish)
                return
            except Exception as exc:
                log.warning("cannot swap the rebuilt index for %s in yet (%s): retrying",
                            agent_id, exc)
                self._closed.wait(RETRY_SWAP_AFTER)

    def find(self, agent_id: str) -> AnyIndex | None:
        """The agent's vector index, or None when the agent has no memories (nothing is
        created)."""
        index = self._indexes.get(agent_id)
        if index is None and self.source.has(agent_id):
            index = self.get(agent_id)
        return index

    def find_text(self, agent_id: str) -> TextIndex | None:
        """The agent's text index, or None when the agent has no memories."""
        text = self._texts.get(agent_id)
        if text is None and self.source.has(agent_id):
            self.get(agent_id)
            text = self._texts[agent_id]
        return text

    def get(self, agent_id: str) -> AnyIndex:
        """The agent's vector index (opening both of its indexes on first use)."""
        index = self._indexes.get(agent_id)
        if index is not None:
            return index
        with self._lock:
            index = self._indexes.get(agent_id)
            if index is None:
                self._texts[agent_id] = self._open_text(agent_id)
                index = self._open(agent_id)
                self._indexes[agent_id] = index
            return index

    def _text_path(self, agent_id: str) -> Path:
        return self.folder / f"{index_name(agent_id)}.bm25"

    def _open_text(self, agent_id: str) -> TextIndex:
        text = TextIndex.load(self._text_path(agent_id), agent_id)
        if text is not None and text.seq < self.source.log_trimmed(agent_id):
            text = None
        if text is None:
            return self._rebuild_text(agent_id)
        self._replay_text(text)
        return text

    def _rebuild_text(self, agent_id: str) -> TextIndex:
        start = time.perf_counter()
        text = TextIndex(agent_id, seq=self.source.log_head(agent_id))
        for rows in self.source.texts_of_agent(agent_id):
            text.add([r[0] for r in rows], [doc(r[1], r[2]) for r in rows])
        self._replay_text(text)  # changes committed while we read
        text.dirty = True
        log.info("text index for %s: rebuilt %d memories in %.2fs", agent_id, len(text),
                 time.perf_counter() - start)
        return text

    def _replay_text(self, text: TextIndex) -> None:
        adds, dels, head = self._changes(text.agent_id, text.seq)
        if head is None:
            return
        rows = self.source.texts(adds) if adds else []
        text.add([r[0] for r in rows], [doc(r[1], r[2]) for r in rows])
        text.delete(dels, seq=head)

    def _open(self, agent_id: str) -> AgentIndex:
        index = self._load(agent_id)
        if index is None:
            return self._rebuild(agent_id, "start" if self._starting else "first_use")
        return index

    def _load(self, agent_id: str) -> AgentIndex | None:
        """The saved index brought up to date by the log, or None (to rebuild)."""
        dim = self.source.dimension
        index = AgentIndex.load(self.folder, agent_id, self.model_id, dim, self.ef)
        if index is not None and index.seq < self.source.log_trimmed(agent_id):
            log.info("index for %s predates the retained log: rebuilding", agent_id)
            index = None
        if index is not None:
            self._replay(index)
        return index

    def _changes(self, agent_id: str, after: int) -> tuple[list[int], list[int], int | None]:
        """The labels added and deleted in the log after `after` (the last change of each
        wins) and the head seq; None when there is nothing to replay."""
        entries = self.source.log(agent_id, after)
        if not entries:
            return [], [], None
        last_op: dict[int, str] = {}
        for _, label, op in entries:
            last_op[label] = op
        adds = [label for label, op in last_op.items() if op == "add"]
        dels = [label for label, op in last_op.items() if op == "del"]
        log.info("indexes for %s: replaying %d changes", agent_id, len(entries))
        return adds, dels, entries[-1][0]

    def _replay(self, index: AgentIndex) -> None:
        adds, dels, head = self._changes(index.agent_id, index.seq)
        if head is None:
            return
        if adds:
            labels, vectors = self.source.get(adds)
            index.add(labels, vectors)
        index.delete(dels, seq=head)

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

    def added(self, agent_id: str, labels: list[int], vectors: np.ndarray,
              texts: Sequence[tuple[str, int | None]], seq: int) -> None:
        """Memories committed with these vectors and (content, event time). A change an
        index already holds (it was just built from the log) is not applied again."""
        index = self.get(agent_id)
        if not (seq and seq <= index.seq):
            index.add(np.asarray(labels, dtype=np.int64), vectors, seq)
        text = self._texts[agent_id]
        if not (seq and seq <= text.seq):
            text.add(labels, [doc(c, t) for c, t in texts], seq)

    def deleted(self, agent_id: str, labels: list[int], seq: int) -> None:
        index = self.get(agent_id)
        if not (seq and seq <= index.seq):
            index.delete(labels, seq)
        text = self._texts[agent_id]
        if not (seq and seq <= text.seq):
            text.delete(labels, seq)

    def compact(self) -> int:
        """Rebuild the indexes whose deleted slots outnumber their live vectors. The build
        runs outside the writer; the final catch-up and the swap run in commit order, so no
        change committed meanwhile is missed. Returns how many were rebuilt."""
        for text in list(self._texts.values()):
            if text.needs_compaction():
                text.compact()  # the same memories, fewer slots: no re-reading
        done = 0
        for agent_id, index in list(self._indexes.items()):
            if isinstance(index, ExactIndex) or not index.needs_compaction():
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

    def save_dirty(self, deadline: float | None = None) -> list[tuple[str, int]]:
        """Save every changed index; returns (agent_id, seq) for each agent whose indexes
        are both saved: every log entry up to seq is in both of its files. An index that
        cannot be saved (a full or read-only disk) keeps its previous file and stays
        changed: its changes are still in the index log, and it is tried again next time.
        Stops at `deadline` (time.monotonic()) if one is given."""
        saved: list[tuple[str, int]] = []
        failed: list[tuple[str, OSError]] = []
        timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._save_lock.acquire(timeout=timeout):
            return saved
        try:
            for agent_id, index in list(self._indexes.items()):
                if deadline is not None and time.monotonic() > deadline:
                    break
                text = self._texts.get(agent_id)
                if not (index.dirty or (text is not None and text.dirty)):
                    continue
                try:
                    seqs = [index.save(self.folder, self.model_id)
                            if isinstance(index, AgentIndex) and index.dirty else index.seq]
                    if text is not None:
                        seqs.append(text.save(self._text_path(agent_id)) if text.dirty
                                    else text.seq)
                    saved.append((agent_id, min(seqs)))
                except OSError as exc:
                    failed.append((agent_id, exc))
        finally:
            self._save_lock.release()
        if failed:
            log.warning("could not save the indexes of %d agent(s) (%s: %s); their previous files "
                        "are kept and their changes stay in the database's index log",
                        len(failed), failed[0][0], failed[0][1])
        return saved

    def stats(self) -> dict[str, int]:
        return {agent: len(index) for agent, index in self._indexes.items()}
