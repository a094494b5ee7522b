"""File helpers shared by the store, the model loader and the indexes (which do not import
each other): checksums and making writes durable."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


def sha256_of(path: Path) -> str:
    """The file's sha256, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a written file to the disk: a delayed write error (no space) surfaces here."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in this directory durable (a no-op where directories cannot be
    opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
