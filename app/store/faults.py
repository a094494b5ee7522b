"""What a failed write says about the disk: full, read-only, or another I/O error.

SQLite reports a full disk as SQLITE_FULL and a filesystem remounted read-only as
SQLITE_READONLY or as a plain write error (SQLITE_IOERR_*): the filesystem's own state
(`os.statvfs`) settles which. The errors name the data dir and what to do; `reason` is the
short form the health probes show.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from app.errors import StorageError, StorageFullError, StorageReadOnlyError
from app.store.db import DatabaseError

SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
STORAGE_CODES = {SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN}
# Under this much free space a filesystem that has failed a write for space still counts as
# full: writes are refused before any work is done.
FULL_BELOW = 1 << 20


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem holding `folder`."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # Windows has no statvfs
        return None
    return int(st.f_bavail * st.f_frsize)


def read_only(folder: Path) -> bool:
    """Whether the filesystem holding `folder` refuses writes as read-only. A filesystem the
    kernel turned read-only after an error (ext4 errors=remount-ro) may not say so in its
    flags: creating a file tells."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return True
    except (OSError, AttributeError):
        pass
    probe = folder / f".dakera-write-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        return exc.errno == errno.EROFS
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()
    return False


def _size(n: int | None) -> str:
    if n is None:
        return "unknown"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MB"
    return f"{n / 1024:.0f} KB"


def full_error(folder: Path) -> StorageFullError:
    return StorageFullError(
        f"the disk holding the data dir {folder} is full ({_size(free_bytes(folder))} free): "
        "nothing was written; free some space there and writes resume by themselves",
        retry_after=30)


def read_only_error(folder: Path) -> StorageReadOnlyError:
    return StorageReadOnlyError(
        f"the filesystem holding the data dir {folder} is read-only: nothing was written; "
        "make it writable again (check the disk and the system log) and writes resume by "
        "themselves", retry_after=30)


def classify(exc: BaseException, folder: Path) -> StorageError | None:
    """The storage error `exc` amounts to, or None when it is not about the disk (a
    constraint, a bug, an error the job raised on purpose)."""
    if isinstance(exc, StorageError):
        return exc
    code = None
    if isinstance(exc, DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc).lower()
        if primary is None:  # a binding without error codes: the message says
            if "disk is full" in text:
                primary = SQLITE_FULL
            elif "readonly" in text or "read-only" in text:
                primary = SQLITE_READONLY
            elif "disk i/o error" in text:
                primary = SQLITE_IOERR
        if primary not in STORAGE_CODES:
            return None
        code = primary
    elif isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            code = SQLITE_FULL
        elif exc.errno == errno.EROFS:
            code = SQLITE_READONLY
        else:
            code = SQLITE_IOERR
    else:
        return None
    if read_only(folder):
        return read_only_error(folder)
    free = free_bytes(folder)
    if code == SQLITE_FULL or (free is not None and free < FULL_BELOW):
        return full_error(folder)
    if code == SQLITE_READONLY:
        return read_only_error(folder)
    if code == SQLITE_CORRUPT:
        return StorageError(f"the database in {folder} is damaged ({exc}): nothing was "
                            f"written; run `dakera check --data-dir {folder}` and restore a "
                            "backup", retry_after=30)
    return StorageError(f"the database in {folder} could not be written ({exc}): nothing "
                        "was written; check the disk and the system log", retry_after=5)


def still_failing(fault: StorageError, folder: Path) -> bool:
    """Whether the condition behind `fault` visibly holds: writes can be refused up front."""
    if isinstance(fault, StorageReadOnlyError):
        return read_only(folder)
    if isinstance(fault, StorageFullError):
        free = free_bytes(folder)
        return free is not None and free < FULL_BELOW
    return False
