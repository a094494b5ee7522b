"""Is the database file sound? `PRAGMA quick_check` at every start (a damaged file is never
served) and the fuller report of `dakera check` (integrity_check, tables that must agree)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import DataDirError
from app.store.db import Connection, DatabaseError, connect

MAX_PROBLEMS = 20


@dataclass
class DatabaseReport:
    """What `check_database` found: problems (empty when sound) and, when the file could be
    read, what the index files are checked against."""

    path: Path
    problems: list[str] = field(default_factory=list)
    memories: int = 0
    model_id: str | None = None
    dimension: int | None = None
    agents: dict[str, int] = field(default_factory=dict)  # agent -> log trimmed up to seq


def quick_check(conn: Connection) -> list[str]:
    """The problems `PRAGMA quick_check` reports (empty: the file is sound)."""
    rows = conn.execute(f"PRAGMA quick_check({MAX_PROBLEMS})").fetchall()
    return [str(r[0]) for r in rows if r[0] != "ok"]


def damaged(path: Path, problem: str) -> DataDirError:
    problem = " ".join(problem.split())  # SQLite's report spans lines: keep the log to one
    if len(problem) > 160:
        problem = problem[:160] + "..."
    return DataDirError(
        f"the database {path} is damaged ({problem}); dakera will not serve it. Run "
        f"`dakera check --data-dir {path.parent}` for a report, then restore a backup (or "
        "move the file away to start with an empty data dir)", retry_after=30)


def check_database(path: Path, *, full: bool = True) -> DatabaseReport:
    """Check the database file without changing it: SQLite's own checks (integrity_check,
    or quick_check when not `full`), then the tables that must agree row for row."""
    report = DatabaseReport(path)
    if not path.exists():
        report.problems.append(f"{path} does not exist")
        return report
    conn = None
    try:
        conn = connect(path, readonly=True)
        pragma = "integrity_check" if full else "quick_check"
        rows = conn.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})").fetchall()
        report.problems += [str(r[0]) for r in rows if r[0] != "ok"]
        if report.problems:
            return report
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("memories", "memory_vectors")}
        report.memories = counts["memories"]
        if len(set(counts.values())) != 1:
            report.problems.append("memories and their vectors disagree: "
                                   + ", ".join(f"{t} {n} rows" for t, n in counts.items()))
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        model = meta.get("embedding_model")
        with contextlib.suppress(ValueError, TypeError):
            model = json.loads(str(model))
        report.model_id = None if model is None else str(model)
        dim = meta.get("vector_dimension")
        report.dimension = int(dim) if dim else None
        for (agent,) in conn.execute("SELECT DISTINCT agent_id FROM memories"):
            report.agents[agent] = int(meta.get(f"index_trim:{agent}", 0))
    except DatabaseError as exc:
        report.problems.append(str(exc))
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
    return report
