"""An exclusive lock on the data dir: one process owns the database and the indexes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from app.errors import DataDirError, DataDirInUse


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "dakera.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = self.path.open("a+")
        except OSError as exc:  # a read-only or full filesystem, no permission
            raise DataDirError(
                f"cannot write in the data dir {self.path.parent} ({exc.strerror}): dakera "
                "needs it writable; fix the filesystem or point --data-dir / DAKERA_DATA_DIR "
                "elsewhere", retry_after=30) from None
        try:
            _lock(f)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise DataDirInUse(
                f"the data dir {self.path.parent} is in use by {holder}; stop it or point "
                "--data-dir / DAKERA_DATA_DIR elsewhere") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


def _lock(f: IO[str]) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
