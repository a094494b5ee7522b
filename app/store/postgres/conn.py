"""Connections to PostgreSQL: a pool for reads (each statement borrows a connection and
returns it with its rows) and one writer thread per server with a connection of its own.

The writer keeps the store protocol's promise: jobs run one at a time, each in its own
transaction, and a job's result (and its `after` callback, in commit order) comes only once
that transaction has committed. Several servers each have a writer; PostgreSQL orders their
transactions (row locks, unique constraints), so nothing here assumes one writer overall.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from app.errors import StorageError

log = logging.getLogger("dakera.store")
T = TypeVar("T")

POOL_SIZE = 16  # reader connections per server
CONNECT_TIMEOUT = 10
POOL_WAIT = 10  # seconds a read waits for a connection before answering 503
# Every connection of this process says whose it is (pg_stat_activity.application_name):
# `dakera reindex` refuses to run while another process's connections are there.
APP_NAME = f"dakera/{os.getpid()}"


class Rows:
    """A read's result, fetched before its connection went back to the pool: the parts of
    a cursor the store's objects use (fetchone, fetchall, iteration, rowcount)."""

    __slots__ = ("_pos", "_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._pos = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchall(self) -> list[Any]:
        rest = self._rows[self._pos:]
        self._pos = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class Reader:
    """What the read side's objects call `.execute()` on: one autocommit statement on a
    pooled connection (like a SQLite reader outside a transaction: its own snapshot).

    A connection the database dropped (a restart, a failover) is discarded by the pool and
    the read is tried once more on a fresh one; a database that cannot be reached answers
    StorageError (503 with Retry-After), not a 500."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def run(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """fn over a pooled connection, tried twice when the connection fails."""
        for attempt in (1, 2):
            try:
                with self.pool.connection() as conn:
                    return fn(conn)
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise unreachable(exc) from None
            except PoolTimeout as exc:
                raise unreachable(exc) from None
        raise AssertionError("unreachable")

    def execute(self, sql: Any, params: Sequence[Any] | dict[str, Any] | None = None) -> Rows:
        def read(conn: psycopg.Connection[Any]) -> Rows:
            cur = conn.execute(sql, params)
            return Rows(cur.fetchall() if cur.description is not None else [], cur.rowcount)

        return self.run(read)

    def cursor(self) -> Any:
        raise TypeError("reads run one statement at a time (Reader.execute)")


def unreachable(exc: BaseException) -> StorageError:
    error = StorageError(f"the PostgreSQL database cannot be reached: {exc}".strip(),
                         retry_after=5)
    error.reason = "database unreachable"
    return error


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                           application_name=APP_NAME)


def leader_connection(url: str) -> psycopg.Connection[Any]:
    """A connection that notices a dead peer within about a minute (TCP keepalives): it
    holds the leader's advisory lock."""
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                           application_name=APP_NAME, keepalives=1,
                           keepalives_idle=20, keepalives_interval=10, keepalives_count=3)


def open_pool(url: str, settings: dict[str, str] | None = None) -> ConnectionPool:
    """The readers' pool; `settings` are set on each of its connections (SET name = value)."""

    def configure(conn: psycopg.Connection[Any]) -> None:
        for name, value in (settings or {}).items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))

    pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False,
                          kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT,
                                  "application_name": APP_NAME},
                          configure=configure, name="dakera-readers", timeout=POOL_WAIT)
    pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    return pool


Job = Callable[[Any], Any]
After = Callable[[Any], None]


class PgWriter:
    """One thread running write jobs in order, each in a transaction of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = connect(url)
        self._queue: queue.Queue[tuple[Job, After | None, Future[Any]] | None] = queue.Queue()
        self.fault: StorageError | None = None
        self.refused_total = 0
        self.closed = False
        self._busy_since = 0.0
        self._thread = threading.Thread(target=self._run, name="dakera-pg-writer",
                                        daemon=True)
        self._thread.start()

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The writer's connection (its transaction, inside a job)."""
        assert self._conn is not None
        return self._conn

    def alive(self) -> bool:
        return self._thread.is_alive()

    def busy_for(self) -> float:
        since = self._busy_since
        return time.monotonic() - since if since else 0.0

    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job, after: After | None = None) -> Future[Any]:
        future: Future[Any] = Future()
        if self.closed:
            future.set_exception(StorageError("the store is closed"))
            return future
        self._queue.put((job, after, future))
        return future

    def close(self, timeout: float | None = None) -> bool:
        """Finish the queued jobs (within `timeout`), then stop; False when some were
        failed instead."""
        if self.closed:
            return True
        self.closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        finished = not self._thread.is_alive()
        if not finished:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[2].set_exception(StorageError("the server is shutting down"))
        elif self._conn is not None:
            self._conn.close()
        return finished

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, after, future = item
            if not future.set_running_or_notify_cancel():
                continue
            self._busy_since = time.monotonic()
            try:
                result = self._transaction(job)
            except BaseException as exc:
                future.set_exception(exc)
                continue
            finally:
                self._busy_since = 0.0
            if after is not None:
                try:
                    after(result)
                except Exception:
                    log.exception("an after-commit callback failed")
            future.set_result(result)

    def _transaction(self, job: Job) -> Any:
        """Run a job in a transaction. When the connection fails before the commit (the
        database restarted or failed over since the last job), nothing was committed: the
        job runs once more on a new connection. A failure during the commit is not retried
        (whether it committed is unknown): the caller gets StorageError."""
        for attempt in (1, 2):
            committing = False
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self.url)
                with self._conn.transaction():
                    result = job(self._conn)
                    committing = True
            except psycopg.OperationalError as exc:  # the connection or the server failed
                if self._conn is not None and (self._conn.broken or self._conn.closed):
                    self._conn = None
                if attempt == 1 and not committing:
                    log.info("the database connection failed (%s): running the write again "
                             "on a new connection", exc)
                    continue
                self.refused_total += 1
                self.fault = unreachable(exc)
                log.warning("a write failed: %s", exc)
                raise self.fault from None
            self.fault = None
            return result
        raise AssertionError("unreachable")
