"""The SQLite backend: one file in WAL mode holding memories with their sqlite-vec vectors,
the knowledge graph, sessions, agents, lifecycle state.

Reads run on thread-local reader connections; writes run on the one writer thread
(app/store/writer.py) as jobs given a `SqliteTx` over the writer's connection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from app.errors import DataDirError, StorageError
from app.store.backup import copy_database
from app.store.db import Connection, DatabaseError, connect
from app.store.faults import still_failing
from app.store.graph import SqliteEdges, SqliteEntities
from app.store.imports import SqliteImports
from app.store.integrity import damaged, quick_check
from app.store.keys import SqliteKeys
from app.store.lifecycle import (
    SqliteDecay,
    SqliteFeedback,
    SqliteMeta,
    SqlitePolicies,
    SqliteTrash,
)
from app.store.memories import SqliteMemories
from app.store.migrations import migrate
from app.store.namespaces import SqliteNamespaces, SqliteNamespaceVectors
from app.store.protocol import ConnSource, Tx
from app.store.reindex import SqliteReindex
from app.store.sentences import SentenceCache
from app.store.sessions import SqliteAgents, SqliteSessions
from app.store.vectors import SqliteVectors
from app.store.writer import CommitObserver, Writer

T = TypeVar("T")
log = logging.getLogger("dakera.store")
# A transaction running this long means the disk hangs: readiness says so.
STALLED_AFTER = 30.0
MODEL_KEY = "embedding_model"


class SqliteTx:
    """The objects of the store over one connection: the writer's, inside its transaction
    (as `Tx`), or the calling thread's reader (as the store's read side)."""

    def __init__(self, conn: ConnSource, model_id: str, dimension: int,
                 sentence_cache: SentenceCache | None = None) -> None:
        self.memories = SqliteMemories(conn, model_id, dimension, sentence_cache)
        self.vectors = SqliteVectors(conn, dimension)
        self.sessions = SqliteSessions(conn)
        self.agents = SqliteAgents(conn)
        self.decay = SqliteDecay(conn)
        self.feedback = SqliteFeedback(conn)
        self.edges = SqliteEdges(conn)
        self.entities = SqliteEntities(conn)
        self.trash = SqliteTrash(conn)
        self.policies = SqlitePolicies(conn)
        self.keys = SqliteKeys(conn)
        self.meta = SqliteMeta(conn)
        self.reindex = SqliteReindex(conn)
        self.namespaces = SqliteNamespaces(conn)
        self.namespace_vectors = SqliteNamespaceVectors(conn)
        self.imports = SqliteImports(conn)


class SqliteStore(SqliteTx):
    backend = "sqlite"

    def __init__(self, path: Path, *, dimension: int, model_id: str,
                 synchronous: str = "full", check_model: bool = True,
                 on_commit: CommitObserver | None = None,
                 sentence_cache_bytes: int = 0) -> None:
        """`sentence_cache_bytes`: how much of the memories' sentence vectors recall may
        keep in this process (app/store/sentences.py); 0 reads them every time."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.location = str(path)
        self.dimension = dimension
        self.model_id = model_id
        self._synchronous = synchronous
        try:
            conn = connect(path, synchronous=synchronous)
        except DatabaseError as exc:  # not a database at all
            raise damaged(path, str(exc)) from None
        try:
            try:
                problems = quick_check(conn)
            except DatabaseError as exc:
                problems = [str(exc)]
            if problems:
                raise damaged(path, "; ".join(problems[:3]))
            migrate(conn, dimension)
            if check_model:
                _check_model(conn, path, model_id, dimension)
        except BaseException:
            conn.close()
            raise
        cache = SentenceCache(sentence_cache_bytes) if sentence_cache_bytes > 0 else None

        def committed(seconds: float, jobs: int) -> None:
            if cache is not None:
                cache.committed()
            if on_commit is not None:
                on_commit(seconds, jobs)

        self.sentence_cache = cache
        self.writer = Writer(conn, lambda: connect(path, synchronous=synchronous),
                             path.parent, committed)
        self._local = threading.local()
        self._readers: list[Connection] = []
        self._readers_lock = threading.Lock()
        super().__init__(self.reader, model_id, dimension, cache)
        self._tx = SqliteTx(lambda: self.writer.connection, model_id, dimension, cache)

    def reader(self) -> Connection:
        """This thread's read-only connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True, synchronous=self._synchronous)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def write(self, job: Callable[[Tx], T], after: Callable[[T], None] | None = None) -> T:
        return self.submit(job, after).result()

    def submit(self, job: Callable[[Tx], T],
               after: Callable[[T], None] | None = None) -> Future[T]:
        tx = self._tx
        return self.writer.submit(lambda conn: job(tx), after)

    def leads(self) -> bool:
        return True  # the data dir's lock makes this server the only one

    def relay_events(self, deliver: Callable[[str, dict[str, Any], str | None, str | None],
                                             None]) -> None:
        return None  # the only server on this file

    def shared_indexes(self, *, namespaces: bool = False) -> None:
        return None  # each server's own indexes (app/index), rebuilt from this file

    def backup(self, target: Path) -> None:
        copy_database(self.path, target)

    def ping(self) -> None:
        self.reader().execute("SELECT 1 FROM memories LIMIT 1").fetchall()

    def pending_writes(self) -> int:
        return self.writer.pending()

    def write_fault(self) -> StorageError | None:
        writer = self.writer
        if not writer.alive() and not writer.closed:
            return StorageError("the database writer has stopped", retry_after=30)
        busy = writer.busy_for()
        if busy > STALLED_AFTER:
            fault = StorageError(f"one write transaction has been running for {busy:.0f} s")
            fault.reason = "writer stalled"
            return fault
        return writer.fault

    def check_writable(self) -> None:
        fault = self.writer.fault
        if fault is not None and still_failing(fault, self.path.parent):
            self.writer.refused += 1
            self.writer.refused_total += 1
            raise fault

    def writes_refused(self) -> int:
        return self.writer.refused_total

    def close(self, timeout: float | None = None) -> None:
        if not self.writer.close(timeout):
            log.error("the writer did not finish within %.0f s: queued writes were failed",
                      timeout or 0)
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(Exception):  # a reader in a finishing thread
                    conn.close()
            self._readers.clear()


def _check_model(conn: Connection, path: Path, model_id: str, dimension: int) -> None:
    """Refuse a database whose vectors another model made: they are never mixed."""
    meta = SqliteMeta(lambda: conn)
    stored = meta.get(MODEL_KEY)
    if stored is None:  # made before the model was recorded: the vectors say
        found = [r[0] for r in conn.execute(
            "SELECT DISTINCT model_id FROM memory_vectors LIMIT 2")]
        stored = found[0] if len(found) == 1 else (None if not found else ", ".join(found))
        if stored is None or stored == model_id:
            conn.execute("BEGIN IMMEDIATE")
            meta.set(MODEL_KEY, model_id)
            conn.execute("COMMIT")
            stored = model_id
    if stored != model_id:
        count = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
        raise DataDirError(
            f"{path} holds {count} memories embedded by the model {stored}, but this server "
            f"runs {model_id}; vectors of two models are never mixed. Either start with the "
            f"model the data dir was made with (DAKERA_EMBEDDING_MODEL), or re-embed every "
            f"memory with the new one while the server is stopped: "
            f"dakera reindex --data-dir {path.parent}")
    stored_dim = conn.execute("SELECT value FROM meta WHERE key='vector_dimension'").fetchone()
    if stored_dim and int(stored_dim[0]) != dimension:
        raise DataDirError(f"{path} holds {stored_dim[0]}-dimensional vectors but the model "
                           f"makes {dimension}; run dakera reindex --data-dir {path.parent}")
