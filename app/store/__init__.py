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
               check_model: bool = True, on_commit: CommitObserver | None = None,
               url: str | None = None, sentence_cache_bytes: int = 0) -> Store:
    """The store: the PostgreSQL database at `url` when one is given, else the SQLite file
    at `path` (a data dir's database); `on_commit` is told the duration and job count of
    every SQLite commit (metrics); `sentence_cache_bytes` bounds the SQLite backend's
    in-process copy of the sentence vectors recall reads (app/store/sentences.py)."""
    if url is not None:
        from app.store.postgres import PgStore  # psycopg is loaded only for this backend

        return PgStore(url, dimension=dimension, model_id=model_id, check_model=check_model)
    return SqliteStore(path, dimension=dimension, model_id=model_id,
                       synchronous=synchronous, check_model=check_model, on_commit=on_commit,
                       sentence_cache_bytes=sentence_cache_bytes)


def unique_violation(exc: BaseException) -> bool:
    """Whether a write failed on a unique constraint (an id already taken), in either
    backend."""
    return "UNIQUE constraint failed" in str(exc) or getattr(exc, "sqlstate", None) == "23505"


__all__ = ["CommitObserver", "DatabaseError", "DatabaseInfo", "DatabaseReport",
           "ForeignDatabaseError", "ItemWrite", "McpMemoryServiceDb", "MemoryRow",
           "SqliteStore", "Store", "Tx", "check_database", "inspect_database",
           "is_mcp_memory_service", "is_sqlite", "open_store", "snapshot", "sqlite_version",
           "unique_violation"]
