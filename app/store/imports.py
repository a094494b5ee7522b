"""Import jobs as the store keeps them: one row per job, its state as JSON."""

from __future__ import annotations

from typing import Any

import msgspec

from app.store.protocol import ConnSource

_encode = msgspec.json.encode
_decode = msgspec.json.decode

ACTIVE = ("queued", "running")


class SqliteImports:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT state FROM import_jobs WHERE job_id = ?",
                                   (job_id,)).fetchone()
        return None if row is None else dict(_decode(row[0]))

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest jobs first."""
        return [dict(_decode(r[0])) for r in self._conn().execute(
            "SELECT state FROM import_jobs ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (limit,))]

    def save(self, job: dict[str, Any]) -> None:
        """Record a job's current state (a write)."""
        self._conn().execute(
            "INSERT INTO import_jobs (job_id, agent_id, status, started_at, finished_at, state) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET status = "
            "excluded.status, finished_at = excluded.finished_at, state = excluded.state",
            (job["job_id"], job["agent_id"], job["status"], job["started_at"],
             job.get("finished_at"), _encode(job).decode()))

    def interrupt(self, now: int, reason: str) -> int:
        """Mark the jobs a stopped process left queued or running as interrupted (a write)."""
        conn = self._conn()
        rows = conn.execute("SELECT state FROM import_jobs WHERE status IN (?, ?)",
                            ACTIVE).fetchall()
        for (state,) in rows:
            job = dict(_decode(state))
            job.update(status="interrupted", finished_at=now,
                       errors=[*job.get("errors", []), reason][-100:])
            self.save(job)
        return len(rows)

    def prune(self, keep: int) -> int:
        """Forget all but the newest `keep` finished jobs (a write)."""
        cur = self._conn().execute(
            "DELETE FROM import_jobs WHERE status NOT IN (?, ?) AND job_id NOT IN (SELECT "
            "job_id FROM import_jobs ORDER BY started_at DESC, rowid DESC LIMIT ?)",
            (*ACTIVE, keep))
        return int(cur.rowcount)
