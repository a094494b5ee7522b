"""Backups: hot, consistent copies of the database (taken while writes go on), listed,
downloaded (gzip), uploaded, deleted, made on a schedule, and restored.

A backup is `<id>.db` (a complete SQLite database) with `<id>.json` beside it saying what
it holds, in DAKERA_BACKUP_DIR (default: backups/ in the data dir). It is written as a
hidden temporary file, fsynced and renamed: a failed backup (a full disk ...) leaves no
partial file and the earlier backups as they were. The vector indexes are not in it: they
are a cache rebuilt from the database.

A restore checks the backup first (integrity, schema, embedding model), takes a backup of
the current data ("pre-restore"), prepares the new database file beside the live one, then
has the service swap it in atomically (see Service._swap_database); anything failing before
the swap leaves the current data untouched.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import Settings
from app.errors import (
    ConflictError,
    DakeraError,
    NotFoundError,
    NotImplementedFeature,
    StorageFullError,
    UnprocessableError,
    ValidationError,
)
from app.files import fsync_dir, fsync_file
from app.store import DatabaseError, Store, inspect_database, open_store
from app.store.backup import remove_sidecars

log = logging.getLogger("dakera.backups")

BACKUP_ID = re.compile(r"^bk_\d{8}T\d{6}Z_[0-9a-f]{6}$")
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
FREE_MARGIN = 64 * 1024 * 1024  # keep this much free besides the backup itself
RESTORE_WAIT_SECS = 60.0


def free_bytes(path: Path) -> int:
    """Free space on the file system holding `path` (or its nearest existing parent)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path).free


def _full_disk(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "full" in text or "no space" in text or getattr(exc, "errno", None) == 28


@dataclass
class Schedule:
    """The backup schedule; held by the service (it outlives a restore) and changeable at
    run time (until restart: DAKERA_BACKUP_INTERVAL_HOURS and DAKERA_BACKUP_KEEP set it)."""

    interval_hours: float
    keep: int
    started: float = field(default_factory=time.time)

    def as_dict(self, backups: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
        last = max((b["created_at"] for b in backups if b.get("kind") == "scheduled"),
                   default=None)
        due = self.due_at(backups)
        return {"enabled": self.interval_hours > 0, "interval_hours": self.interval_hours,
                "keep": self.keep, "backup_dir": str(folder), "last_backup_at": last,
                "next_backup_at": None if due is None else int(due)}

    def due_at(self, backups: list[dict[str, Any]]) -> float | None:
        if self.interval_hours <= 0:
            return None
        last = max((b["created_at"] for b in backups if b.get("kind") == "scheduled"),
                   default=self.started)
        return float(last) + self.interval_hours * 3600


@dataclass
class Restores:
    """Restore operations and their status; held by the service (they outlive the parts a
    restore replaces). `swap` is the service's: it puts a prepared database in place."""

    swap: Callable[[Path], None]
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Condition = field(default_factory=threading.Condition)

    def running(self) -> bool:
        return any(s["status"] == "running" for s in self.statuses.values())

    def status(self, restore_id: Any, *, wait: float = 0.0) -> dict[str, Any]:
        """A restore's status, once it has ended or after `wait` seconds."""
        status = self.statuses.get(restore_id) if isinstance(restore_id, str) else None
        if status is None:
            raise NotFoundError(f"restore {restore_id!r} not found", resource="restore")
        with self.done:
            self.done.wait_for(lambda: status["status"] != "running", wait)
        return dict(status)


class Backups:
    def __init__(self, store: Store, settings: Settings, now: Callable[[], int],
                 schedule: Schedule, restores: Restores, imports_busy: Callable[[], bool],
                 model_id: str, dimension: int) -> None:
        self.db = store
        self.settings = settings
        self.now = now
        self.schedule = schedule
        self.restores = restores
        self.imports_busy = imports_busy
        self.model_id = model_id
        self.dimension = dimension
        self.folder = settings.backups_path

    # -- listing --------------------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        """Every backup, newest first."""
        if not self.folder.is_dir():
            return []
        out = []
        for sidecar in self.folder.glob("bk_*.json"):
            try:
                info = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                continue
            if BACKUP_ID.match(info.get("backup_id", "")) and self._file(info["backup_id"]
                                                                          ).is_file():
                out.append(info)
        return sorted(out, key=lambda b: (b["created_at"], b["backup_id"]), reverse=True)

    def get(self, backup_id: Any) -> dict[str, Any]:
        info_path = self._sidecar(self._id(backup_id))
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError):
            info = None
        if info is None or not self._file(info["backup_id"]).is_file():
            raise NotFoundError(f"backup {backup_id!r} not found", resource="backup")
        return dict(info)

    def delete(self, backup_id: Any) -> dict[str, Any]:
        info = self.get(backup_id)
        self._sidecar(info["backup_id"]).unlink(missing_ok=True)
        self._file(info["backup_id"]).unlink(missing_ok=True)
        log.info("deleted backup %s", info["backup_id"])
        return {"deleted": True, "backup_id": info["backup_id"]}

    def path(self, backup_id: Any) -> Path:
        return self._file(self.get(backup_id)["backup_id"])

    def _id(self, value: Any) -> str:
        if not isinstance(value, str) or not BACKUP_ID.match(value):
            raise NotFoundError(f"backup {value!r} not found (ids look like "
                                "bk_20250101T000000Z_abcdef)", resource="backup")
        return value

    def _file(self, backup_id: str) -> Path:
        return self.folder / f"{backup_id}.db"

    def _sidecar(self, backup_id: str) -> Path:
        return self.folder / f"{backup_id}.json"

    # -- making one -------------------------------------------------------------------------

    def create(self, name: Any, *, backup_type: Any = None, namespaces: Any = None,
               encrypt: Any = None, compression: Any = None, kind: str = "manual"
               ) -> dict[str, Any]:
        """A full, consistent backup of the database, taken while writes go on: it holds
        every write committed before it began."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ValidationError("'name' is required: a string of 1 to 200 characters")
        if backup_type not in (None, "full", "snapshot"):
            raise NotImplementedFeature(f"backup_type {backup_type!r} is not offered: every "
                                        "backup is a full copy (backup_type full)")
        if namespaces is not None:
            raise NotImplementedFeature("a backup holds every agent; 'namespaces' is not "
                                        "offered (export one agent with GET /v1/export)")
        if encrypt:
            raise NotImplementedFeature("encrypted backups are not offered")
        if compression not in (None, "none", "gzip"):
            raise NotImplementedFeature(f"compression {compression!r} is not offered: "
                                        "backups are stored as SQLite files and downloaded "
                                        "gzipped")
        self.folder.mkdir(parents=True, exist_ok=True)
        needed = _db_size(Path(self.db.location)) + FREE_MARGIN
        if free_bytes(self.folder) < needed:
            raise StorageFullError(
                f"not enough free space in {self.folder} for a backup (about {needed} bytes "
                "needed); free some space or delete old backups", details="DAKERA_BACKUP_DIR")
        backup_id = _new_id()
        tmp = self.folder / f".{backup_id}.db.tmp"
        start = time.monotonic()
        created = self.now()
        try:
            self.db.backup(tmp)
        except DatabaseError as exc:
            if _full_disk(exc):
                raise StorageFullError(f"the backup did not fit: {exc}; nothing was "
                                       "kept") from None
            raise
        return self._keep(tmp, backup_id, name.strip(), kind, created,
                          time.monotonic() - start)

    def _keep(self, tmp: Path, backup_id: str, name: str, kind: str, created: int,
              seconds: float) -> dict[str, Any]:
        """Name a complete database file as a backup: describe it, rename it into place."""
        try:
            info = inspect_database(tmp, integrity=False)
            target = self._file(backup_id)
            os.replace(tmp, target)
            fsync_dir(self.folder)
            meta = {"backup_id": backup_id, "id": backup_id, "name": name, "kind": kind,
                    "backup_type": "full", "status": "completed", "namespaces": [],
                    "vector_count": info.memories, **info.as_dict(),
                    "size_bytes": target.stat().st_size, "created_at": created,
                    "completed_at": self.now(), "duration_seconds": round(seconds, 3),
                    "storage_path": str(target), "encrypted": False, "compression": "none"}
            side_tmp = self.folder / f".{backup_id}.json.tmp"
            side_tmp.write_text(json.dumps(meta, indent=1))
            fsync_file(side_tmp)
            os.replace(side_tmp, self._sidecar(backup_id))
            fsync_dir(self.folder)
        except BaseException as exc:
            for leftover in (tmp, self._file(backup_id), self.folder / f".{backup_id}.json.tmp"):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            if isinstance(exc, OSError) and _full_disk(exc):
                raise StorageFullError(f"the backup did not fit: {exc}") from None
            raise
        log.info("backup %s (%s): %d memories, %d bytes in %.2fs", backup_id, name,
                 meta["memory_count"], meta["size_bytes"], seconds)
        return meta

    def recover(self) -> None:
        """At start: temporary files of backups and restores a stopped process left."""
        if self.folder.is_dir():
            for leftover in self.folder.glob(".bk_*.tmp"):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        tmp = _restore_tmp(Path(self.db.location))
        with contextlib.suppress(OSError):
            tmp.unlink()
        remove_sidecars(tmp)

    # -- moving them around ----------------------------------------------------------------

    def download(self, backup_id: Any) -> tuple[str, Iterator[bytes]]:
        """(file name, gzip chunks) of a backup."""
        path = self.path(backup_id)
        handle = path.open("rb")  # open now: a deletion meanwhile does not cut the download

        def chunks() -> Iterator[bytes]:
            packer = zlib.compressobj(3, zlib.DEFLATED, 31)  # gzip framing
            with handle:
                while block := handle.read(CHUNK):
                    if out := packer.compress(block):
                        yield out
            yield packer.flush()

        return f"{path.stem}.db.gz", chunks()

    def receive(self, upload: Path, name: Any = None) -> dict[str, Any]:
        """Keep an uploaded backup (gzip, or a bare SQLite file): checked before it is
        listed; a damaged or foreign file is refused and removed."""
        backup_id = _new_id()
        tmp = self.folder / f".{backup_id}.db.tmp"
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with upload.open("rb") as f:
                magic = f.read(2)
            if magic == GZIP_MAGIC:
                self._gunzip(upload, tmp)
            else:
                shutil.move(upload, tmp)
            info = inspect_database(tmp)
            if info.problem is not None:
                raise ValidationError(f"the upload is not a dakera backup this server can "
                                      f"restore: {info.problem}")
            fsync_file(tmp)
            label = name if isinstance(name, str) and name.strip() else "uploaded"
            return self._keep(tmp, backup_id, label.strip()[:200], "uploaded", self.now(), 0.0)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        finally:
            with contextlib.suppress(OSError):
                upload.unlink()

    def _gunzip(self, source: Path, target: Path) -> None:
        limit = self.settings.max_import_bytes
        written = 0
        try:
            with gzip.open(source, "rb") as src, target.open("wb") as dst:
                while block := src.read(CHUNK):
                    written += len(block)
                    if written > limit:
                        raise ValidationError(f"the backup unpacks to more than {limit} bytes "
                                              "(DAKERA_MAX_IMPORT_BYTES)")
                    dst.write(block)
        except (OSError, EOFError, zlib.error) as exc:
            if isinstance(exc, OSError) and _full_disk(exc):
                raise StorageFullError(f"the backup did not fit: {exc}") from None
            raise ValidationError(f"the upload is not a complete gzip file ({exc}); nothing "
                                  "was kept") from None

    # -- the schedule -----------------------------------------------------------------------

    def schedule_info(self) -> dict[str, Any]:
        return self.schedule.as_dict(self.list(), self.folder)

    def set_schedule(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"enabled", "interval_hours", "keep"}
        if unknown:
            raise UnprocessableError(f"unknown fields: {', '.join(sorted(unknown))} (known: "
                                     "enabled, interval_hours, keep)")
        interval = body.get("interval_hours", self.schedule.interval_hours)
        keep = body.get("keep", self.schedule.keep)
        enabled = body.get("enabled")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
                or not 0 <= interval <= 8760:
            raise ValidationError("'interval_hours' must be a number from 0 to 8760")
        if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= 10_000:
            raise ValidationError("'keep' must be an integer from 1 to 10000")
        if enabled is not None and not isinstance(enabled, bool):
            raise ValidationError("'enabled' must be true or false")
        if enabled is False:
            interval = 0
        elif enabled and interval <= 0:
            interval = self.settings.backup_interval_hours or 24.0
        self.schedule.interval_hours, self.schedule.keep = float(interval), keep
        return self.schedule_info()

    def run_schedule(self) -> dict[str, Any] | None:
        """Take the scheduled backup if it is due, then keep only the newest `keep`
        scheduled ones (the maintenance thread calls this every minute)."""
        if self.db.backend != "sqlite":  # backed up by the database's own tools (pg_dump)
            return None
        due = self.schedule.due_at(self.list())
        if due is None or time.time() < due or self.restores.running():
            return None
        made = self.create("scheduled", kind="scheduled")
        scheduled = [b for b in self.list() if b.get("kind") == "scheduled"]
        for old in scheduled[self.schedule.keep:]:
            self.delete(old["backup_id"])
        return made

    # -- restoring ----------------------------------------------------------------------------

    def restore(self, backup_id: Any, *, overwrite: Any = None, point_in_time: Any = None,
                target_namespaces: Any = None, wait: float = RESTORE_WAIT_SECS
                ) -> dict[str, Any]:
        """Replace the whole database with a backup. Checked first (a backup this server
        cannot use is refused and nothing changes); a backup of the current data is taken;
        then the swap. Waits up to `wait` seconds for it to finish."""
        if point_in_time is not None:
            raise NotImplementedFeature("point-in-time restore is not offered: restore one "
                                        "of the backups")
        if self.db.backend != "sqlite":
            raise NotImplementedFeature(
                "a PostgreSQL database is restored with PostgreSQL's own tools (pg_restore "
                "of a pg_dump, or your service's point-in-time recovery): see "
                "docs/postgres.md")
        if target_namespaces is not None:
            raise NotImplementedFeature("a restore replaces every agent; "
                                        "'target_namespaces' is not offered (import one "
                                        "agent's export with POST /v1/import)")
        if overwrite is not None and not isinstance(overwrite, bool):
            raise ValidationError("'overwrite' must be true or false")
        path = self.path(backup_id)
        info = inspect_database(path)
        if info.problem is not None:
            raise ValidationError(f"backup {backup_id} cannot be restored: {info.problem}")
        if info.model_id is not None and info.model_id != self.model_id:
            raise ConflictError(
                f"backup {backup_id} holds vectors of the model {info.model_id}, but this "
                f"server runs {self.model_id}: start a server with that model "
                "(DAKERA_EMBEDDING_MODEL) to restore it, then `dakera reindex`")
        with self.restores.lock:
            if self.restores.running():
                raise ConflictError("a restore is already running")
            if self.imports_busy():
                raise ConflictError("an import is running: restore once it has finished "
                                    "(GET /v1/import/{job_id}/status)")
            restore_id = "restore_" + uuid.uuid4().hex[:16]
            status: dict[str, Any] = {
                "restore_id": restore_id, "status": "running", "backup_id": backup_id,
                "namespaces": [], "started_at": self.now(), "completed_at": None,
                "duration_seconds": None, "error": None, "pre_restore_backup_id": None,
                "memory_count": info.memories}
            self.restores.statuses[restore_id] = status
        threading.Thread(target=self._restore, args=(status, path), daemon=True,
                         name="dakera-restore").start()
        return self.restores.status(restore_id, wait=wait)

    def _restore(self, status: dict[str, Any], path: Path) -> None:
        start = time.monotonic()
        live = Path(self.db.location)
        tmp = _restore_tmp(live)
        try:
            before = self.create(f"before restoring {status['backup_id']}",
                                 kind="pre-restore")
            status["pre_restore_backup_id"] = before["backup_id"]
            if free_bytes(live.parent) < _db_size(path) + FREE_MARGIN:
                raise StorageFullError(f"not enough free space in {live.parent} to "
                                       "restore this backup")
            shutil.copyfile(path, tmp)
            # Migrations run on the copy, and the model is checked, before it goes live.
            prepared = open_store(tmp, dimension=self.dimension, model_id=self.model_id)
            prepared.close()
            remove_sidecars(tmp)
            fsync_file(tmp)
            self.restores.swap(tmp)
            status["status"] = "completed"
            log.info("restored backup %s (%d memories); the data before it is backup %s",
                     status["backup_id"], status["memory_count"], before["backup_id"])
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            remove_sidecars(tmp)
            status["status"] = "failed"
            status["error"] = exc.message if isinstance(exc, DakeraError) else str(exc)
            log.error("restore of backup %s failed: %s", status["backup_id"], status["error"])
        finally:
            status["completed_at"] = self.now()
            status["duration_seconds"] = round(time.monotonic() - start, 3)
            with self.restores.done:
                self.restores.done.notify_all()


def _new_id() -> str:
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"bk_{stamp}_{secrets.token_hex(3)}"


def _db_size(path: Path) -> int:
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total


def _restore_tmp(live: Path) -> Path:
    return live.with_name(live.name + ".restore")
