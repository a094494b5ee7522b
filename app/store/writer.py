"""The one writer thread. Every write runs here inside `BEGIN IMMEDIATE`.

Jobs queued while a transaction runs are committed together (group commit), each inside
its own SAVEPOINT so one failing job rolls back alone. A job's future resolves only after
the COMMIT, so an acknowledged write is on disk. `after_commit` callbacks run on this thread
in commit order: the vector index is updated there, in the same order as the database.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from app.store.db import Connection

log = logging.getLogger("dakera.writer")

Job = Callable[[Connection], Any]
AfterCommit = Callable[[Any], None]
# (seconds from BEGIN to COMMIT, jobs committed): told after each group commit
CommitObserver = Callable[[float, int], None]

MAX_GROUP = 64


class Writer:
    def __init__(self, conn: Connection, on_commit: CommitObserver | None = None) -> None:
        self._conn = conn
        self._on_commit = on_commit
        self._queue: queue.Queue[tuple[Job, AfterCommit | None, Future[Any]] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._run, name="dakera-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, job: Job, after_commit: AfterCommit | None = None) -> Future[Any]:
        """Queue a job; the future holds its result once committed (or its exception)."""
        future: Future[Any] = Future()
        if self._closed:
            future.set_exception(RuntimeError("the writer is closed"))
            return future
        self._queue.put((job, after_commit, future))
        return future

    def pending(self) -> int:
        """Jobs queued and not yet taken into a transaction."""
        return self._queue.qsize()

    def run(self, job: Job, after_commit: AfterCommit | None = None) -> Any:
        """Submit and wait for the committed result."""
        return self.submit(job, after_commit).result()

    def close(self) -> None:
        """Finish queued jobs, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

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
            self._commit_group(group)

    def _commit_group(self, group: list[tuple[Job, AfterCommit | None, Future[Any]]]) -> None:
        conn = self._conn
        done: list[tuple[Any, AfterCommit | None, Future[Any]]] = []
        start = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:  # cannot even start: fail the whole group
            for _, _, fut in group:
                fut.set_exception(exc)
            return
        for job, after, fut in group:
            if not fut.set_running_or_notify_cancel():
                continue
            conn.execute("SAVEPOINT job")
            try:
                result = job(conn)
            except BaseException as exc:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                fut.set_exception(exc)
                continue
            conn.execute("RELEASE job")
            done.append((result, after, fut))
        try:
            conn.execute("COMMIT")
        except Exception as exc:
            log.exception("commit failed")
            conn.execute("ROLLBACK")
            for _, _, fut in done:
                fut.set_exception(exc)
            return
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
