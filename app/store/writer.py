"""The one writer thread. Every write runs here inside `BEGIN IMMEDIATE`.

Jobs queued while a transaction runs are committed together (group commit), each inside
its own SAVEPOINT so one failing job rolls back alone. A job's future resolves only after
the COMMIT, so an acknowledged write is on disk. `after_commit` callbacks run on this thread
in commit order: the vector index is updated there, in the same order as the database.

The thread survives any error. When the disk fails a transaction (full, read-only, an I/O
error), every job of the group is answered with the storage error (none was committed),
the transaction is rolled back (or, if SQLite cannot, the connection is reopened) and the
next jobs are tried as usual: writes resume by themselves once the disk accepts them.
`fault` holds the last storage error until a transaction that changed something commits
while the cause no longer visibly holds (a write small enough for the space SQLite already
holds can commit on a full disk: that alone does not end the fault).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from app.errors import ServiceUnavailableError, StorageError
from app.store.db import Connection
from app.store.faults import classify, still_failing

log = logging.getLogger("dakera.writer")

Job = Callable[[Connection], Any]
AfterCommit = Callable[[Any], None]
Item = tuple[Job, AfterCommit | None, Future[Any]]
# (seconds from BEGIN to COMMIT, jobs committed): told after each group commit
CommitObserver = Callable[[float, int], None]

MAX_GROUP = 64


class Writer:
    def __init__(self, conn: Connection, reconnect: Callable[[], Connection],
                 folder: Path, on_commit: CommitObserver | None = None) -> None:
        """`reconnect()` opens a new writer connection (after one is left unusable);
        `folder` is the data dir, named in storage errors."""
        self._conn: Connection | None = conn
        self._on_commit = on_commit
        self._reconnect = reconnect
        self._folder = folder
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._lock = threading.Lock()  # orders submit() against close()
        self._closed = False
        self.fault: StorageError | None = None
        self.refused = 0  # jobs failed for storage since the fault began
        self.refused_total = 0  # and since start (metrics)
        self._busy_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="dakera-writer", daemon=True)
        self._thread.start()

    @property
    def connection(self) -> Connection:
        """The connection jobs run on (only valid on the writer thread, inside a job)."""
        assert self._conn is not None
        return self._conn

    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._closed

    def busy_for(self) -> float:
        """Seconds the current transaction has been running (0 when idle)."""
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    def submit(self, job: Job, after_commit: AfterCommit | None = None) -> Future[Any]:
        """Queue a job; the future holds its result once committed (or its exception)."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                future.set_exception(ServiceUnavailableError(
                    "the server is shutting down: nothing was written"))
            elif not self._thread.is_alive():
                future.set_exception(StorageError("the database writer has stopped: nothing "
                                                  "was written; restart the server"))
            else:
                self._queue.put((job, after_commit, future))
        return future

    def pending(self) -> int:
        """Jobs queued and not yet taken into a transaction."""
        return self._queue.qsize()

    def run(self, job: Job, after_commit: AfterCommit | None = None) -> Any:
        """Submit and wait for the committed result."""
        return self.submit(job, after_commit).result()

    def close(self, timeout: float | None = None) -> bool:
        """Finish queued jobs, then stop the thread and close the connection. Jobs still
        queued after `timeout` seconds are failed (never left waiting); returns whether
        everything queued was done."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():  # stuck in a transaction (a hung disk): give up on it
            self._fail_queued(ServiceUnavailableError(
                "the server shut down before this write could be done: nothing was written"))
            self._queue.put(None)
            return False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        return True

    def _fail_queued(self, error: BaseException) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and not item[2].done():
                item[2].set_exception(error)

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            group = [item]
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
            self._busy_since = time.monotonic()
            try:
                self._commit_group(group)
            except BaseException as exc:  # a bug here must not stop every later write
                log.exception("the writer failed a group of %d job(s)", len(group))
                self._answer(group, exc)
                self._recover()
            finally:
                self._busy_since = None

    def _commit_group(self, group: list[Item]) -> None:
        conn = self._conn
        if conn is None:  # left unusable by an earlier failure: open a new one
            try:
                conn = self._conn = self._reconnect()
            except Exception as exc:
                self._abort(group, exc)
                return
        start = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:  # cannot even start: fail the whole group
            self._abort(group, exc)
            return
        before = conn.total_changes
        done: list[tuple[Any, AfterCommit | None, Future[Any]]] = []
        for job, after, fut in group:
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                conn.execute("SAVEPOINT job")
            except Exception as exc:
                self._abort(group, exc)
                return
            try:
                result = job(conn)
            except BaseException as exc:
                if classify(exc, self._folder) is not None or not conn.in_transaction:
                    # The disk failed (or SQLite dropped the transaction): nothing of the
                    # group can commit.
                    self._abort(group, exc)
                    return
                try:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                except Exception as undo:
                    self._abort(group, undo)
                    return
                fut.set_exception(exc)
                continue
            try:
                conn.execute("RELEASE job")
            except Exception as exc:
                self._abort(group, exc)
                return
            done.append((result, after, fut))
        try:
            conn.execute("COMMIT")
        except Exception as exc:
            self._abort(group, exc)
            return
        if (self.fault is not None and conn.total_changes > before
                and not still_failing(self.fault, self._folder)):
            log.warning("writes succeed again (%d refused while %s)", self.refused,
                        self.fault.reason)
            self.fault, self.refused = None, 0
        if self._on_commit is not None:
            try:
                self._on_commit(time.perf_counter() - start, len(done))
            except Exception:
                log.exception("commit observer failed")
        for result, after, fut in done:
            if after is not None:
                try:
                    after(result)
                except Exception:  # the database is the truth; the index heals on restart
                    log.exception("after-commit hook failed")
            fut.set_result(result)

    def _abort(self, group: list[Item], exc: BaseException) -> None:
        """The transaction failed as a whole: answer every job of the group (none was
        committed) and bring the connection back to a clean state."""
        error = classify(exc, self._folder)
        if error is None:
            log.error("a write transaction failed: %s", exc, exc_info=exc)
            error = StorageError(f"the write failed ({exc}): nothing was written")
        else:
            if self.fault is None or type(self.fault) is not type(error):
                log.error("writes refused: %s", error.message)
            self.fault = error
            failed = sum(1 for _, _, fut in group if not fut.done())
            self.refused += failed
            self.refused_total += failed
        self._answer(group, error, cause=exc)
        self._recover()

    @staticmethod
    def _answer(group: list[Item], error: BaseException,
                cause: BaseException | None = None) -> None:
        if cause is not None and error is not cause:
            error.__cause__ = cause
        for _, _, fut in group:
            if not fut.done():
                fut.set_exception(error)

    def _recover(self) -> None:
        """End any open transaction; reopen the connection when it cannot be."""
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not conn.in_transaction:
                return
        except Exception as exc:
            log.warning("rollback failed (%s): reopening the database connection", exc)
        self._conn = None
        with contextlib.suppress(Exception):
            conn.close()
        try:
            self._conn = self._reconnect()
        except Exception as exc:  # tried again before the next transaction
            log.warning("cannot reopen the database yet: %s", exc)
