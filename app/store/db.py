"""SQLite connections: a binding that can load extensions, sqlite-vec loaded, WAL, pragmas."""

from __future__ import annotations

import sqlite3 as _stdlib_sqlite3
from pathlib import Path
from typing import Any

import sqlite_vec

from app.store import filters

try:  # the stock sqlite3 of many Python builds cannot load extensions
    from pysqlite3 import dbapi2 as sqlite3
except ImportError:  # pragma: no cover - platforms without pysqlite3-binary
    sqlite3 = _stdlib_sqlite3  # type: ignore[no-redef,unused-ignore]

Connection = Any  # sqlite3.Connection of whichever binding is in use
DatabaseError = sqlite3.DatabaseError
OperationalError = sqlite3.OperationalError
IntegrityError = sqlite3.IntegrityError


def connect(path: Path, *, readonly: bool = False, synchronous: str = "full") -> Connection:
    """Open a connection in autocommit mode (transactions are explicit) with sqlite-vec loaded."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                           timeout=30.0)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.enable_load_extension(False)
    filters.register(conn)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-16000")
    conn.execute("PRAGMA temp_store=MEMORY")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


def sqlite_version() -> str:
    return str(sqlite3.sqlite_version)
