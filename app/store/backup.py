"""Whole-database copies: a consistent copy of a live database (a backup), and what a copy
holds (checked before one is restored).

A copy is taken with `VACUUM INTO` from a connection of its own: one read transaction, so it
holds exactly the writes committed before it began, while the writer goes on. The vector
index files are not copied: they are a cache rebuilt from the database.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.files import fsync_file
from app.store.db import DatabaseError, connect, sqlite3
from app.store.migrations import MIGRATIONS

SQLITE_MAGIC = b"SQLite format 3\x00"


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def copy_database(source: Path, target: Path) -> None:
    """Copy the live database `source` to `target` (which must not exist) as one consistent
    snapshot, and fsync it. On failure (a full disk ...) nothing is left at `target`."""
    conn = connect(source)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
        fsync_file(target)
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    finally:
        conn.close()


def remove_sidecars(db: Path) -> None:
    """Remove the -wal and -shm files of a closed database (a stale WAL must never meet
    another database file under the same name)."""
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            db.with_name(db.name + suffix).unlink()


@dataclass
class DatabaseInfo:
    """What a database file holds, as far as a restore cares."""

    schema_version: int
    model_id: str | None
    dimension: int | None
    memories: int
    agents: int
    sessions: int
    problem: str | None = None  # why it cannot be restored, if it cannot

    def as_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "model": self.model_id,
                "dimension": self.dimension, "memory_count": self.memories,
                "agent_count": self.agents, "session_count": self.sessions}


def inspect_database(path: Path, *, integrity: bool = True) -> DatabaseInfo:
    """Open a database copy read-only (nothing else may be writing it) and say what it
    holds; `problem` says why it is not a dakera database this version can restore."""
    if not is_sqlite(path):
        return DatabaseInfo(0, None, None, 0, 0, 0, "not an SQLite database")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                               isolation_level=None, check_same_thread=False)
    except DatabaseError as exc:
        return DatabaseInfo(0, None, None, 0, 0, 0, f"cannot open it: {exc}")
    try:
        return _inspect(conn, integrity)
    except DatabaseError as exc:
        return DatabaseInfo(0, None, None, 0, 0, 0, f"it is damaged or not a dakera "
                                                    f"database: {exc}")
    finally:
        conn.close()


def _inspect(conn: Any, integrity: bool) -> DatabaseInfo:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"meta", "memories", "sessions", "agents"} <= tables or version < 1:
        return DatabaseInfo(version, None, None, 0, 0, 0, "not a dakera database")
    if version > len(MIGRATIONS):
        return DatabaseInfo(version, None, None, 0, 0, 0,
                            f"its schema (version {version}) is newer than this dakera "
                            f"knows ({len(MIGRATIONS)}): restore it with the newer dakera")
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN "
                             "('embedding_model', 'vector_dimension')").fetchall())
    model = meta.get("embedding_model")
    if model is not None and model.startswith('"'):  # stored as JSON text
        model = json.loads(model)
    dim = int(meta["vector_dimension"]) if "vector_dimension" in meta else None
    memories, agents, sessions = (int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                                  for t in ("memories", "agents", "sessions"))
    info = DatabaseInfo(version, model, dim, memories, agents, sessions)
    if integrity:
        # the plain tables and indexes (the vector table is a virtual table whose shadow
        # tables are plain tables: they are checked too)
        result = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        if result != ["ok"]:
            info.problem = "it fails the integrity check: " + "; ".join(result[:5])
    return info
