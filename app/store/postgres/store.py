"""The PostgreSQL backend: any number of servers share one database (DAKERA_DATABASE_URL).

Reads run on a connection pool, writes on this server's writer thread (conn.py). Nothing
is cached in the server: vectors and text are searched in SQL (search.py), so what one
server commits the next request to any server sees.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from app.errors import DataDirError, NotImplementedFeature, StorageError
from app.store.postgres.conn import PgWriter, Reader, connect, leader_connection, open_pool
from app.store.postgres.events import Deliver, EventRelay
from app.store.postgres.memories import PgMemories, PgVectors
from app.store.postgres.schema import migrate
from app.store.postgres.search import SEARCH_SETTINGS, PgIndexes, PgNamespaceIndexes
from app.store.postgres.tables import (
    PgAgents,
    PgDecay,
    PgEdges,
    PgEntities,
    PgFeedback,
    PgImports,
    PgKeys,
    PgMeta,
    PgNamespaces,
    PgNamespaceVectors,
    PgPolicies,
    PgReindex,
    PgSessions,
    PgTrash,
)
from app.store.protocol import ConnSource, Tx

T = TypeVar("T")
log = logging.getLogger("dakera.store")
MODEL_KEY = "embedding_model"
STALLED_AFTER = 30.0
LEADER_LOCK = 0x64616B66  # pg_try_advisory_lock key of the background work's leader


def redact(url: str) -> str:
    """The URL without its password (for logs and messages)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


class PgTx:
    """The objects of the store over one connection source: the writer's connection inside
    its transaction (as `Tx`), or the pool (as the store's read side)."""

    def __init__(self, conn: ConnSource, model_id: str, dimension: int) -> None:
        self.memories = PgMemories(conn, model_id, dimension)
        self.vectors = PgVectors(conn, dimension)
        self.sessions = PgSessions(conn)
        self.agents = PgAgents(conn)
        self.decay = PgDecay(conn)
        self.feedback = PgFeedback(conn)
        self.edges = PgEdges(conn)
        self.entities = PgEntities(conn)
        self.trash = PgTrash(conn)
        self.policies = PgPolicies(conn)
        self.keys = PgKeys(conn)
        self.meta = PgMeta(conn)
        self.reindex = PgReindex(conn)
        self.namespaces = PgNamespaces(conn)
        self.namespace_vectors = PgNamespaceVectors(conn)
        self.imports = PgImports(conn)


class PgStore(PgTx):
    backend = "postgresql"

    def __init__(self, url: str, *, dimension: int, model_id: str,
                 check_model: bool = True) -> None:
        self.url = url
        self.location = redact(url)
        self.dimension = dimension
        self.model_id = model_id
        try:
            with connect(url) as conn:
                migrate(conn, dimension, self.location)
                if check_model:
                    _check_model(conn, self.location, model_id, dimension)
            self._pool = open_pool(url, SEARCH_SETTINGS)
        except psycopg.Error as exc:
            raise DataDirError(f"cannot open the PostgreSQL database {self.location}: "
                               f"{exc}".strip()) from None
        try:
            self.writer = PgWriter(url)
        except BaseException:
            self._pool.close()
            raise
        self._reader = Reader(self._pool)
        super().__init__(lambda: self._reader, model_id, dimension)
        self._tx = PgTx(lambda: self.writer.connection, model_id, dimension)
        self._indexes = PgIndexes(self._reader, dimension)
        self._namespace_indexes = PgNamespaceIndexes(self._reader, dimension)
        self._leader: psycopg.Connection[Any] | None = None
        self._leader_lock = threading.Lock()
        self._relay: EventRelay | None = None

    def relay_events(self, deliver: Deliver) -> Callable[
            [str, dict[str, Any], str | None, str | None], None]:
        """LISTEN to the other servers' events and NOTIFY ours (events.py)."""
        if self._relay is None:
            self._relay = EventRelay(self.url, deliver)
        return self._relay.send

    def leads(self) -> bool:
        """Hold (or try to take) the leader's advisory lock on a connection of its own:
        PostgreSQL releases it when that connection ends, so a server that dies (or is
        cut off: TCP keepalives notice within about a minute) hands the lead to the next
        server that asks."""
        with self._leader_lock:
            held = self._leader
            if held is not None:
                try:
                    held.execute("SELECT 1")  # still connected: still the leader
                    return True
                except psycopg.Error as exc:  # the lock went with the connection
                    log.warning("lost the lead of background work: %s", exc)
                    with contextlib.suppress(Exception):
                        held.close()
                    self._leader = None
            conn = None
            try:
                conn = leader_connection(self.url)
                row = conn.execute("SELECT pg_try_advisory_lock(%s)",
                                   (LEADER_LOCK,)).fetchone()
            except psycopg.Error:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                return False
            if not (row and row[0]):
                conn.close()
                return False
            self._leader = conn
            log.info("this server now runs the background work for %s", self.location)
            return True

    def shared_indexes(self, *, namespaces: bool = False
                       ) -> PgIndexes | PgNamespaceIndexes:
        return self._namespace_indexes if namespaces else self._indexes

    def write(self, job: Callable[[Tx], T], after: Callable[[T], None] | None = None) -> T:
        return self.submit(job, after).result()

    def submit(self, job: Callable[[Tx], T],
               after: Callable[[T], None] | None = None) -> Future[T]:
        tx: Any = self._tx
        return self.writer.submit(lambda conn: job(tx), after)

    def backup(self, target: Path) -> None:
        raise NotImplementedFeature(
            "backups of a PostgreSQL database are made with PostgreSQL's own tools: "
            f"pg_dump (e.g. pg_dump -Fc -f dakera.dump '{self.location}') or the "
            "continuous archiving of your PostgreSQL service; see docs/postgres.md")

    def ping(self) -> None:
        self._reader.execute("SELECT 1 FROM memories LIMIT 1")

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
        return None  # a write tells: PostgreSQL's state is not visible from here

    def writes_refused(self) -> int:
        return self.writer.refused_total

    def close(self, timeout: float | None = None) -> None:
        if self._relay is not None:
            self._relay.close()
        if not self.writer.close(timeout):
            log.error("the writer did not finish within %.0f s: queued writes were failed",
                      timeout or 0)
        with contextlib.suppress(Exception):
            self._pool.close()
        with self._leader_lock, contextlib.suppress(Exception):
            if self._leader is not None:
                # Unlock before closing: PostgreSQL ends a closed connection's backend (and
                # drops its locks) a moment later, so another server asking at once was
                # refused. Unlocked, the lead passes at once.
                with contextlib.suppress(Exception):
                    self._leader.execute("SELECT pg_advisory_unlock(%s)", (LEADER_LOCK,))
                self._leader.close()
                self._leader = None


def _check_model(conn: Any, location: str, model_id: str, dimension: int) -> None:
    """Refuse a database whose vectors another model made (as the SQLite store does)."""
    row = conn.execute("SELECT value FROM meta WHERE key = %s", (MODEL_KEY,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (MODEL_KEY, f'"{model_id}"'))
        row = conn.execute("SELECT value FROM meta WHERE key = %s", (MODEL_KEY,)).fetchone()
    stored = str(row[0]).strip('"')
    if stored != model_id:
        count = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
        raise DataDirError(
            f"{location} holds {count} memories embedded by the model {stored}, but this "
            f"server runs {model_id}; vectors of two models are never mixed. Start with the "
            "model the database was made with (DAKERA_EMBEDDING_MODEL).")
    stored_dim = conn.execute("SELECT value FROM meta WHERE key = 'vector_dimension'"
                              ).fetchone()
    if stored_dim and int(stored_dim[0]) != dimension:
        raise DataDirError(f"{location} holds {stored_dim[0]}-dimensional vectors but the "
                           f"model makes {dimension}")
