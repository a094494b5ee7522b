"""The truth: the store protocol (protocol.py) and its SQLite backend (sqlite.py): migrations,
the writer thread, memories with FTS5 and sqlite-vec, sessions, agents, lifecycle state."""

from pathlib import Path

from app.store.backup import DatabaseInfo, inspect_database, is_sqlite
from app.store.db import DatabaseError, sqlite_version
from app.store.foreign import (
    ForeignDatabaseError,
    McpMemoryServiceDb,
    is_mcp_memory_service,
    snapshot,
)
from app.store.integrity import DatabaseReport, check_database
from app.store.protocol import ItemWrite, MemoryRow, Store, Tx
from app.store.sqlite import SqliteStore
from app.store.writer import CommitObserver


def open_store(path: Path, *, dimension: int, model_id: str, synchronous: str = "full",
               check_model: bool = True, on_commit: CommitObserver | None = None) -> Store:
    """The store for a data dir's database (SQLite, the only backend so far); `on_commit`
    is told the duration and job count of every commit (metrics)."""
    return SqliteStore(path, dimension=dimension, model_id=model_id,
                       synchronous=synchronous, check_model=check_model, on_commit=on_commit)


__all__ = ["CommitObserver", "DatabaseError", "DatabaseInfo", "DatabaseReport",
           "ForeignDatabaseError", "ItemWrite", "McpMemoryServiceDb", "MemoryRow",
           "SqliteStore", "Store", "Tx", "check_database", "inspect_database",
           "is_mcp_memory_service", "is_sqlite", "open_store", "snapshot", "sqlite_version"]
