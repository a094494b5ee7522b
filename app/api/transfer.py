"""/v1/export and /v1/import: an agent's memories as a file, streamed; import jobs fed by an
upload streamed to disk -> service.transfer."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from app.api import uploads
from app.api.deps import Service
from app.errors import ValidationError

MAX_WAIT_SECS = 300.0


class TransferController(Controller):
    @get("/v1/export", sync_to_thread=True)
    def export(self, service: Service, agent_id: FromQuery[str | None] = None,
               format: FromQuery[str] = "jsonl", include_vectors: FromQuery[bool] = False,
               include_sessions: FromQuery[bool] = False) -> Stream:
        """The agent's live memories as JSON lines (dakera's lossless format; with
        include_vectors the vectors and their model, with include_sessions its sessions),
        CSV, or a Mem0 / Zep JSON document."""
        if agent_id is None:
            raise ValidationError("the 'agent_id' query parameter is required")
        out = service.transfer.export(agent_id, format, include_vectors=include_vectors,
                                      include_sessions=include_sessions)
        return Stream(uploads.stream(out.chunks), media_type=out.media_type, headers={
            "Content-Disposition": f'attachment; filename="{out.filename}"',
            "x-dakera-export-skipped": "0", "x-dakera-export-count": str(out.count)})

    @post("/v1/import", request_max_body_size=None)
    async def import_file(self, request: Request[Any, Any, Any], service: Service,
                          agent_id: FromQuery[str | None] = None,
                          format: FromQuery[str | None] = None,
                          wait: FromQuery[float] = 10.0) -> Response[dict[str, Any]]:
        """Import a file (multipart/form-data, its first file field; or the bare file) into
        an agent, as a job. Answers the job once it has ended, or after `wait` seconds
        (202, still running: follow GET /v1/import/{job_id}/status)."""
        transfer = service.transfer
        agent = transfer.check_agent(agent_id)
        uploads.check_length(request, service.settings.max_import_bytes,
                             await anyio.to_thread.run_sync(transfer.free_space))
        spool = await anyio.to_thread.run_sync(transfer.spool)
        try:
            filename = await uploads.receive(request, spool)
        except BaseException:
            await anyio.to_thread.run_sync(spool.discard)
            raise
        path = await anyio.to_thread.run_sync(spool.finish)
        job = await anyio.to_thread.run_sync(partial(
            transfer.submit, agent, path, format, filename=filename))
        if wait > 0:
            job = await anyio.to_thread.run_sync(
                transfer.wait, job["job_id"], min(wait, MAX_WAIT_SECS))
        running = job["status"] in ("queued", "running")
        return Response(job, status_code=202 if running else 200)

    @get("/v1/import/{job_id:str}/status", sync_to_thread=True)
    def status(self, job_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.transfer.status(job_id)

    @get("/v1/import/jobs", sync_to_thread=True)
    def jobs(self, service: Service, limit: FromQuery[int] = 50) -> dict[str, Any]:
        """Recent import jobs, newest first (running ones first of all)."""
        jobs = service.transfer.jobs(max(1, min(limit, 200)))
        return {"jobs": jobs, "total": len(jobs)}
