"""The truth: SQLite connection, migrations, writer thread, memories, FTS5 and sqlite-vec."""

from app.store.db import DatabaseError, sqlite_version
from app.store.store import DimensionMismatch, MemoryRow, Store

__all__ = ["DatabaseError", "DimensionMismatch", "MemoryRow", "Store", "sqlite_version"]
