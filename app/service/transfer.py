"""Data in and out: an agent's memories exported page by page, and import jobs.

An import is a job: the file waits on disk (an upload is spooled there, never held in
memory), one importer thread reads it record by record and writes it in batches. A batch is
one transaction: its memories, their sessions and the job's counts commit together, so a
job killed half-way has imported whole batches and says how far it got. Importing is
idempotent by memory id (a record without one gets an id derived from its line and
content): running the same import again skips what is already there, which is how an
interrupted import is finished. Records that cannot be imported are skipped and reported
with their line; the rest go in. Vectors exported by the same model are written as they
are; everything else is embedded in batches while the previous batch commits.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from app import validate
from app.config import Settings
from app.embed import Embedder
from app.errors import (
    DakeraError,
    NotFoundError,
    PayloadTooLargeError,
    StorageFullError,
    ValidationError,
)
from app.models import EDGE_TYPES, Edge, Indexes, MemoryFilter, Session
from app.service import exports
from app.service.backups import free_bytes
from app.service.formats import Record, Source, open_source
from app.service.memories import content_hash, embed_with_sentences
from app.service.records import Imported, to_memory, to_session
from app.store import MemoryRow, Store, Tx

log = logging.getLogger("dakera.transfer")

PAGE = 1000  # memories per export page
EXPORT_THREADS = 2
BATCH = 256  # records per import transaction (and embedding call)
MAX_ERRORS = 100  # error lines a job keeps (it counts them all)
KEEP_JOBS = 200  # finished jobs remembered


@dataclass
class Export:
    format: str
    media_type: str
    filename: str
    count: int  # live memories of the agent when the export began
    chunks: Iterator[bytes]  # read them on `pool`'s threads (see Transfer.export_pool)
    pool: Executor


class Spool:
    """An upload being written to disk, refused past `limit` bytes; removed unless kept."""

    def __init__(self, folder: Path, limit: int, suffix: str = ".upload") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{uuid.uuid4().hex}{suffix}"
        self.limit = limit
        self.size = 0
        self._file = self.path.open("wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            raise PayloadTooLargeError(
                f"the upload is larger than {self.limit} bytes (DAKERA_MAX_IMPORT_BYTES)",
                details="DAKERA_MAX_IMPORT_BYTES")
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.discard()
            raise StorageFullError(f"cannot store the upload: {exc.strerror}; nothing "
                                   "was imported") from None

    def finish(self) -> Path:
        try:
            self._file.close()
        except OSError as exc:
            self.discard()
            raise StorageFullError(f"cannot store the upload: {exc.strerror}") from None
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


@dataclass
class _Work:
    job: dict[str, Any]
    source: Source
    path: Path
    owned: bool  # the file is a spooled upload: removed when the job ends


@dataclass
class _Batch:
    rows: list[MemoryRow] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)


class _Stopped(Exception):
    pass


def _public(job: dict[str, Any]) -> dict[str, Any]:
    """A job as the API answers it (the SDK reads imported/skipped and *_count)."""
    return {**job, "imported_count": job["imported"], "skipped_count": job["skipped"]}


class Transfer:
    def __init__(self, store: Store, indexes: Indexes, embedder: Embedder,
                 settings: Settings, now: Callable[[], int],
                 expire_idle: Callable[[], object]) -> None:
        self.db = store
        self.expire_idle = expire_idle
        self.indexes = indexes
        self.embedder = embedder
        self.settings = settings
        self.now = now
        self.spool_dir = settings.spool_dir
        self._live: dict[str, dict[str, Any]] = {}
        self._queue: queue.Queue[_Work | None] = queue.Queue()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Exports read on these threads only: each thread has its own reader connection
        # (and page cache), so exports hold a bounded amount of memory however many run.
        self.export_pool = ThreadPoolExecutor(max_workers=EXPORT_THREADS,
                                              thread_name_prefix="dakera-export")

    # -- export -------------------------------------------------------------------------

    def export(self, agent_id: Any, fmt: Any = "jsonl", *, include_vectors: bool = False,
               include_sessions: bool = False, include_edges: bool = False) -> Export:
        """An agent's live memories as a file, read a page at a time in stored order.
        Writes made during the export may or may not be in it (a backup is a point-in-time
        copy); an agent without memories gives an empty file."""
        agent = validate.agent_id(agent_id)
        name = validate.choice(fmt or "jsonl", exports.EXPORT_FORMATS, "format")
        assert name is not None
        now = self.now()
        count = self.db.memories.count(agent, MemoryFilter(), now)
        with_vectors = include_vectors and name in ("jsonl", "csv")
        if include_sessions:
            self.expire_idle()  # sessions idle past their timeout are exported as ended
        chunks = exports.write(
            name, self._pages(agent, now, with_vectors),
            self._session_pages(agent) if include_sessions and name == "jsonl" else [],
            self.embedder.model_id, with_vectors,
            self._edge_lines(agent, now) if include_edges and name == "jsonl" else [])
        return Export(name, exports.MEDIA_TYPES[name], f"{agent}.{exports.EXTENSIONS[name]}",
                      count, chunks, self.export_pool)

    def _pages(self, agent: str, now: int, with_vectors: bool) -> Iterator[exports.Page]:
        """Pages of memories; with the vectors, each memory's sentence vectors too (an
        import then uses them as they are, as it uses the vectors)."""
        after = 0
        while page := self.db.memories.page(agent, now, after, PAGE, with_vectors):
            found = (self.db.memories.sentence_vectors([m.rowid for m, _, _ in page])
                     if with_vectors else {})
            yield [(m, v, d, found[m.rowid].astype("<f4").tobytes()
                    if m.rowid in found else None) for m, v, d in page]
            after = page[-1][0].rowid

    def _edge_lines(self, agent: str, now: int) -> Iterator[list[dict[str, Any]]]:
        """The agent's knowledge-graph edges by memory id (read once the memories are out)."""
        edges = self.db.edges.of_agent(agent, now)
        for start in range(0, len(edges), PAGE):
            yield [_edge_line(e, a, b) for e, a, b in edges[start:start + PAGE]]

    def _session_pages(self, agent: str) -> Iterator[list[Session]]:
        after = 0
        while page := self.db.sessions.page(agent, after, PAGE):
            yield [s for _, s in page]
            after = page[-1][0]

    # -- import jobs --------------------------------------------------------------------

    def check_agent(self, agent_id: Any) -> str:
        """The agent id an import names, checked before its upload is read."""
        return validate.agent_id(agent_id)

    def free_space(self) -> int:
        """Free bytes where uploads are spooled."""
        return free_bytes(self.spool_dir)

    def spool(self) -> Spool:
        """A new upload file under the data dir, refused past DAKERA_MAX_IMPORT_BYTES."""
        return Spool(self.spool_dir, self.settings.max_import_bytes)

    def submit(self, agent_id: Any, path: Path, fmt: Any = None, *,
               filename: str | None = None, owned: bool = True) -> dict[str, Any]:
        """Queue the import of a file into an agent. The file is checked first: one that
        cannot be read as any format (or as the declared one) is refused with a 400 and
        nothing is queued. `owned`: the file is removed when the job ends (or is refused)."""
        try:
            agent = validate.agent_id(agent_id)
            if fmt is not None and not isinstance(fmt, str):
                raise ValidationError("'format' must be a string")
            source = open_source(path, fmt)
        except BaseException:
            if owned:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        job: dict[str, Any] = {"job_id": "import_" + uuid.uuid4().hex[:20], "agent_id": agent,
               "status": "queued", "format": source.format, "source": filename,
               "total": 0, "imported": 0, "skipped": 0, "existing": 0, "invalid": 0,
               "sessions": 0, "edges": 0, "reembedded": 0, "errors": [], "error_count": 0,
               "started_at": self.now(), "finished_at": None}
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="dakera-import",
                                                 daemon=True)
                self._thread.start()
            self.db.write(lambda tx: tx.imports.save(job))
            with self._changed:
                self._live[job["job_id"]] = job
            self._queue.put(_Work(job, source, path, owned))
        log.info("import %s: %s into %s queued", job["job_id"], source.format, agent)
        return _public(dict(job))

    def status(self, job_id: Any) -> dict[str, Any]:
        if not isinstance(job_id, str) or not job_id:
            raise ValidationError("'job_id' is required")
        with self._changed:
            job = self._live.get(job_id)
            if job is not None:
                return _public(dict(job))
        found = self.db.imports.get(job_id)
        if found is None:
            raise NotFoundError(f"import job {job_id!r} not found", code="JOB_NOT_FOUND",
                                resource="job")
        return _public(found)

    def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job's status once it has ended, or after `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: job_id not in self._live, timeout)
        return self.status(job_id)

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._changed:
            live = [_public(dict(j)) for j in self._live.values()]
        done = [_public(j) for j in self.db.imports.recent(limit)
                if j["job_id"] not in {x["job_id"] for x in live}]
        return (live + done)[:limit]

    def busy(self) -> bool:
        with self._changed:
            return bool(self._live)

    def recover(self) -> int:
        """At start: jobs a stopped process left queued or running are marked interrupted
        (run the import again: what was imported is skipped), their uploads removed."""
        now = self.now()
        count = self.db.write(lambda tx: tx.imports.interrupt(
            now, "the server stopped during this import; run it again: the memories "
                 "already imported are skipped"))
        if self.spool_dir.is_dir():
            for leftover in self.spool_dir.iterdir():
                with contextlib.suppress(OSError):
                    leftover.unlink()
        return int(count)

    def close(self) -> None:
        """Stop after the batch in progress; the running job is marked interrupted."""
        self.export_pool.shutdown(wait=False, cancel_futures=True)
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        while True:  # jobs still queued: interrupted too
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                break
            if work is not None:
                self._end(work, "interrupted", "the server stopped before this import ran")

    # -- the importer thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            work = self._queue.get()
            if work is None or self._stop.is_set():
                if work is not None:
                    self._end(work, "interrupted", "the server stopped before this import ran")
                return
            try:
                self._import(work)
            except _Stopped:
                self._end(work, "interrupted", "the server stopped during this import; run "
                                               "it again: the memories already imported are "
                                               "skipped")
            except DakeraError as exc:
                self._end(work, "failed", exc.message)
            except Exception as exc:
                log.exception("import %s failed", work.job["job_id"])
                self._end(work, "failed", f"the import stopped: {exc}")

    def _end(self, work: _Work, status: str, error: str | None = None) -> None:
        job = work.job
        job.update(status=status, finished_at=self.now())
        if error:
            job["errors"] = [*job["errors"], error][-MAX_ERRORS:]
        with contextlib.suppress(Exception):  # the store may be closing: best effort
            self.db.write(partial(_save_and_prune, job=job))
        work.source.close()
        if work.owned:
            with contextlib.suppress(OSError):
                work.path.unlink()
        with self._changed:
            self._live.pop(job["job_id"], None)
            self._changed.notify_all()
        log.info("import %s %s: %d imported, %d already there, %d skipped as invalid",
                 job["job_id"], status, job["imported"], job["existing"], job["invalid"])

    def _import(self, work: _Work) -> None:
        job = work.job
        job["status"] = "running"
        job["total"] = work.source.count()
        self.db.write(lambda tx: tx.imports.save(dict(job)))
        pending = None
        records: list[Record] = []
        edges: list[Record] = []
        try:
            for record in work.source.records():
                if record.kind == "edge":  # restored once every memory is in
                    edges.append(record)
                    continue
                records.append(record)
                if len(records) >= BATCH:
                    pending = self._next(job, records, pending)
                    records = []
            pending = self._next(job, records, pending)
        finally:
            if pending is not None:  # the batch in flight counts, however this ends
                with contextlib.suppress(Exception):
                    self._finish(job, pending)
        if pending is not None:
            self._finish(job, pending)  # (raises if its commit failed)
        if edges:
            self._restore_edges(job, edges)
        failed = job["imported"] + job["existing"] + job["sessions"] == 0 and job["invalid"]
        self._end(work, "failed" if failed else "done",
                  "no record could be imported" if failed else None)

    def _next(self, job: dict[str, Any], records: list[Record], pending: Any) -> Any:
        """Prepare a batch (validate, embed) while the previous one commits, then queue its
        write; returns the write in flight."""
        if self._stop.is_set():
            if pending is not None:
                self._finish(job, pending)
            raise _Stopped
        batch = self._prepare(job, records)
        if pending is not None:
            self._finish(job, pending)
        if not batch.rows and not batch.sessions:
            return None
        base = dict(job)
        agent = job["agent_id"]

        def write(tx: Tx) -> tuple[list[MemoryRow], int, dict[str, int]]:
            sessions = sum(tx.sessions.restore(s) for s in batch.sessions)
            present = set(tx.memories.existing_ids(agent, [r.memory.id for r in batch.rows]))
            inserted: list[MemoryRow] = []
            seq = 0
            for row in batch.rows:
                if row.memory.id in present:
                    continue
                present.add(row.memory.id)
                seq = tx.memories.insert(row)
                inserted.append(row)
            for session in _implied_sessions(inserted):
                tx.sessions.restore(session)
            delta = {"imported": len(inserted), "existing": len(batch.rows) - len(inserted),
                     "sessions": sessions}
            state = {**base, **{k: base[k] + v for k, v in delta.items()}}
            state["skipped"] = state["existing"] + state["invalid"]
            tx.imports.save(state)
            return inserted, seq, delta

        def after(result: tuple[list[MemoryRow], int, dict[str, int]]) -> None:
            inserted, seq, _ = result
            if inserted:
                self.indexes.added(agent, [r.memory.rowid for r in inserted],
                                   np.stack([r.vector for r in inserted]),
                                   [(r.memory.content, r.memory.event_time) for r in inserted],
                                   seq)

        return self.db.submit(write, after)

    def _finish(self, job: dict[str, Any], pending: Any) -> None:
        """Wait for a batch's commit and take its counts, once (a failed commit fails the
        job)."""
        if getattr(pending, "counted", False):
            pending.result()
            return
        try:
            _, _, delta = pending.result()
        except DakeraError:
            raise
        except Exception as exc:
            if "full" in str(exc).lower():
                raise StorageFullError(f"the disk is full: {exc}; the batches "
                                       "committed before stay imported") from None
            raise
        pending.counted = True
        with self._changed:
            for key, value in delta.items():
                job[key] += value
            job["skipped"] = job["existing"] + job["invalid"]

    def _prepare(self, job: dict[str, Any], records: list[Record]) -> _Batch:
        """Validate a batch's records, leave out those already imported, and embed the
        rest that did not come with a usable vector."""
        agent, now, s = job["agent_id"], self.now(), self.settings
        batch = _Batch()
        items: list[Imported] = []
        for record in records:
            if record.error is not None or record.data is None:
                self._invalid(job, record.line, record.error or "empty record")
                continue
            try:
                if record.kind == "session":
                    batch.sessions.append(to_session(record.data, agent_id=agent, now=now))
                else:
                    items.append(to_memory(
                        record.data, agent_id=agent, line=record.line, now=now,
                        max_content_bytes=s.max_content_bytes,
                        model_id=self.embedder.model_id,
                        dimension=self.embedder.preset.dimension))
            except ValidationError as exc:
                self._invalid(job, record.line, exc.message)
        if not items:
            return batch
        # Already imported (an import run again): not embedded again. The write checks
        # once more, inside its transaction.
        present = set(self.db.memories.existing_ids(agent, [i.memory.id for i in items]))
        fresh = [i for i in items if i.memory.id not in present]
        with self._changed:
            job["existing"] += len(items) - len(fresh)
            job["skipped"] = job["existing"] + job["invalid"]
        need = sum(i.vector is None for i in fresh)
        # the sentences' vectors are embedded for every memory that has several sentences,
        # also when its own vector came with the file (an export does not carry them)
        # a memory that came with its sentence vectors (an export with vectors) keeps them
        carried = [i for i in fresh if i.vector is not None and i.sentences is not None]
        rest = [i for i in fresh if not (i.vector is not None and i.sentences is not None)]
        vectors, sentence_vectors = embed_with_sentences(
            self.embedder, s.recall_sentence_weight > 0, s.recall_sentence_vectors == "pooled",
            [i.memory.content for i in rest], [i.vector for i in rest])
        made = {id(i): (v, sv) for i, v, sv in zip(rest, vectors, sentence_vectors,
                                                    strict=True)}
        made.update({id(i): (i.vector, i.sentences if s.recall_sentence_weight > 0 else None)
                     for i in carried})
        fresh_rows = [(i, *made[id(i)]) for i in fresh]
        if need:
            with self._changed:
                job["reembedded"] += need
        batch.rows = [MemoryRow(i.memory, vector, content_hash(i.memory.content),
                                i.decayed_at, sentences=sentence)
                      for i, vector, sentence in fresh_rows]
        return batch

    def _restore_edges(self, job: dict[str, Any], records: list[Record]) -> None:
        """Edge lines between memories the agent now holds, written in one transaction (an
        edge already there keeps the higher weight); one naming a memory the agent does not
        hold, or an unknown type, is invalid."""
        agent = job["agent_id"]
        ids = {str(r.data.get(k)) for r in records if r.data for k in ("from_id", "to_id")}
        rowids = self.db.memories.rowids_by_id(agent, sorted(ids))
        now, out = self.now(), []
        for r in records:
            e = r.data or {}
            src, dst = rowids.get(str(e.get("from_id"))), rowids.get(str(e.get("to_id")))
            weight, created = e.get("weight", 1.0), e.get("created_at")
            if e.get("edge_type") not in EDGE_TYPES:
                self._invalid(job, r.line, f"unknown edge type {e.get('edge_type')!r}")
            elif src is None or dst is None or src == dst:
                self._invalid(job, r.line, "the edge joins a memory this agent does not hold")
            elif isinstance(weight, bool) or not isinstance(weight, int | float) or not (
                    0.0 <= weight <= 1.0):
                self._invalid(job, r.line, "'weight' must be a number from 0 to 1")
            else:
                label = e.get("label")
                out.append(Edge(src, dst, str(e["edge_type"]), float(weight),
                                created if isinstance(created, int) else now,
                                label if isinstance(label, str) else None))
        if out:
            self.db.write(lambda tx: tx.edges.add(out))
        with self._changed:
            job["edges"] += len(out)

    def _invalid(self, job: dict[str, Any], line: int, message: str) -> None:
        with self._changed:
            job["invalid"] += 1
            job["skipped"] = job["existing"] + job["invalid"]
            job["error_count"] += 1
            if len(job["errors"]) < MAX_ERRORS:
                job["errors"].append(f"line {line}: {message}")


def _save_and_prune(tx: Tx, job: dict[str, Any]) -> None:
    tx.imports.save(job)
    tx.imports.prune(KEEP_JOBS)


def _implied_sessions(rows: list[MemoryRow]) -> list[Session]:
    """Sessions the imported memories name, spanning their times (created only where the
    file brought no session line for them)."""
    spans: dict[tuple[str, str], tuple[int, int]] = {}
    for row in rows:
        m = row.memory
        if m.session_id is not None:
            key = (m.session_id, m.agent_id)
            lo, hi = spans.get(key, (m.created_at, m.created_at))
            spans[key] = (min(lo, m.created_at), max(hi, m.created_at))
    return [Session(id=sid, agent_id=agent, started_at=lo, last_activity_at=hi)
            for (sid, agent), (lo, hi) in spans.items()]


__all__ = ["Export", "Spool", "Transfer"]


def _edge_line(e: Edge, from_id: str, to_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"from_id": from_id, "to_id": to_id, "edge_type": e.edge_type,
                           "weight": round(e.weight, 6), "created_at": e.created_at}
    if e.label is not None:
        out["label"] = e.label
    return out
