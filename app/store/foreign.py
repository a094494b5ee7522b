"""Databases of other memory tools, read-only: what an import reads from them.

mcp-memory-service keeps its memories in one SQLite(-vec) file: table `memories` (tags as
comma-joined text, metadata as JSON text, times as unix float seconds, soft-deleted rows
with `deleted_at` set). Its vectors (a vec0 table) are never read: dakera embeds the text
with its own model. Columns are chosen by name (older versions lack some).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.store.backup import is_sqlite
from app.store.db import DatabaseError, sqlite3

MMS_COLUMNS = ("id", "content_hash", "content", "tags", "memory_type", "metadata",
               "created_at", "updated_at", "deleted_at", "store", "superseded_by")


class ForeignDatabaseError(Exception):
    """The file is not a database of the tool it was taken for."""


def _open_readonly(path: Path, immutable: bool) -> Any:
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def is_mcp_memory_service(path: Path) -> bool:
    """Whether the file is an mcp-memory-service database."""
    if not is_sqlite(path):
        return False
    try:
        db = McpMemoryServiceDb(path)
    except ForeignDatabaseError:
        return False
    db.close()
    return True


class McpMemoryServiceDb:
    """An mcp-memory-service database (its live file or a copy), read-only."""

    def __init__(self, path: Path, *, immutable: bool = True) -> None:
        """`immutable`: nothing else writes the file (an uploaded copy); a live database
        of a running mcp-memory-service is opened with immutable=False to see its WAL."""
        try:
            self._conn = _open_readonly(path, immutable)
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(memories)")}
        except DatabaseError as exc:
            raise ForeignDatabaseError(f"cannot read {path.name}: {exc}") from None
        if not {"id", "content", "content_hash"} <= columns:
            self.close()
            raise ForeignDatabaseError(
                f"{path.name} is an SQLite database but not an mcp-memory-service one "
                "(no memories table with id, content and content_hash)")
        self.columns = [c for c in MMS_COLUMNS if c in columns]
        # live: not soft-deleted, not replaced by a newer version (memory evolution)
        self._live = " AND ".join([
            *(["deleted_at IS NULL"] if "deleted_at" in columns else []),
            *(["superseded_by IS NULL"] if "superseded_by" in columns else [])]) or "1"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    def count(self) -> int:
        """Memories that are neither deleted nor superseded."""
        return int(self._conn.execute(
            f"SELECT count(*) FROM memories WHERE {self._live}").fetchone()[0])

    def rows(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every memory neither deleted nor superseded, oldest row first, as
        {column: value}."""
        cols = ", ".join(self.columns)
        last = -1
        while True:
            rows = self._conn.execute(
                f"SELECT {cols} FROM memories WHERE id > ? AND {self._live} ORDER BY id "
                "LIMIT ?", (last, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield dict(zip(self.columns, row, strict=True))
            last = rows[-1][0]


def snapshot(source: Path, target: Path) -> None:
    """Copy a possibly live SQLite database (its WAL included) into one file with SQLite's
    online backup API: what uploading a running tool's database needs."""
    try:
        src = _open_readonly(source, immutable=False)
    except DatabaseError as exc:
        raise ForeignDatabaseError(f"cannot read {source}: {exc}") from None
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    except DatabaseError as exc:
        raise ForeignDatabaseError(f"cannot read {source}: {exc}") from None
    finally:
        dst.close()
        src.close()
