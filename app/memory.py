"""The process's memory policy with glibc's allocator (a no-op elsewhere).

glibc gives each thread that allocates its own arena (up to 8 per core) and keeps what is
freed in them: onnxruntime's pool, the writer, the request threads and the index builders
each left tens of MB behind after a large batch (ten agents storing 600 memories each:
276 MB resident, 227 MB with two arenas). Two arenas, and the free pages handed back after
large work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger("dakera")

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
ARENAS = 2


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc has them; musl has neither
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas() -> None:
    """At most ARENAS malloc arenas for the threads started from now on (call it early)."""
    if _LIBC is not None and not _LIBC.mallopt(M_ARENA_MAX, ARENAS):
        log.debug("mallopt(M_ARENA_MAX) was refused")


def give_back() -> None:
    """Return the allocator's free pages to the system (after large, short-lived work)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
