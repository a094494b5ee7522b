"""/v1/export and /v1/import: an agent's memories as a file, streamed; import jobs fed by an
upload streamed to disk -> service.transfer."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from app.api import uploads
from app.api.deps import Principal, Service
from app.api.schemas import error_responses
from app.api.scopes import Locator, in_query, need
from app.errors import NotFoundError, ValidationError
from app.service import Service as ServiceType
from app.service.keys import agent_namespace

MAX_WAIT_SECS = 300.0


class ImportJob(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An import job and how far it got."""

    job_id: str
    agent_id: str
    status: str  # queued, running, done, failed (no record imported), interrupted
    format: str  # jsonl, csv, mem0, zep or mcp-memory-service
    source: str | None  # the uploaded file's name
    total: int  # records in the file
    imported: int
    existing: int  # already there (by id): skipped
    invalid: int  # could not be imported: skipped, listed in errors
    skipped: int  # existing + invalid
    sessions: int  # sessions restored from session lines
    edges: int = 0  # knowledge-graph edges restored from edge lines
    reembedded: int  # embedded here (the rest kept the vectors they came with)
    errors: list[str]  # the first 100: "line N: what is wrong"
    error_count: int
    started_at: int
    finished_at: int | None
    imported_count: int  # the SDK's names for imported and skipped
    skipped_count: int


class ImportJobList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    jobs: list[ImportJob]
    total: int


def answer_within(request_timeout: int) -> float:
    """How long a route may wait for a job before it answers 202: well within the request
    timeout (the gate's 504 would hide the job's id)."""
    return request_timeout * 0.75 if request_timeout else float("inf")


def job_out(job: dict[str, Any]) -> ImportJob:
    return msgspec.convert(job, ImportJob)


def job_in_path(param: str = "job_id") -> tuple[str, Locator]:
    """The agent an import job imports into (an unknown job touches nothing: the handler
    answers 404 for it)."""
    async def locate(connection: ASGIConnection[Any, Any, Any, Any],
                     service: ServiceType) -> list[str]:
        job_id = connection.path_params.get(param)
        try:
            job = await anyio.to_thread.run_sync(lambda: service.transfer.status(job_id))
        except NotFoundError:
            return []
        return [agent_namespace(job["agent_id"])]
    return f"agent of import job {{{param}}}", locate


class TransferController(Controller):
    @get("/v1/export", sync_to_thread=True, media_type="application/x-ndjson",
         responses=error_responses(), opt=need("read", agent=in_query()))
    def export(self, service: Service, agent_id: FromQuery[str | None] = None,
               format: FromQuery[str] = "jsonl", include_vectors: FromQuery[bool] = False,
               include_sessions: FromQuery[bool] = False,
               include_edges: FromQuery[bool] = False) -> Stream:
        """The agent's live memories as JSON lines (dakera's lossless format; with
        include_vectors the vectors and their model, with include_sessions its sessions, with
        include_edges its knowledge-graph edges),
        CSV, or a Mem0 / Zep JSON document; streamed. Headers: x-dakera-export-count,
        x-dakera-export-skipped."""
        if agent_id is None:
            raise ValidationError("the 'agent_id' query parameter is required")
        out = service.transfer.export(agent_id, format, include_vectors=include_vectors,
                                      include_sessions=include_sessions,
                                      include_edges=include_edges)
        return Stream(uploads.stream(out.chunks, out.pool), media_type=out.media_type,
                      headers={
            "Content-Disposition": f'attachment; filename="{out.filename}"',
            "x-dakera-export-skipped": "0", "x-dakera-export-count": str(out.count)})

    @post("/v1/import", request_max_body_size=None, responses=error_responses(413, 507),
          opt=need("write", agent=in_query(), upload=True))
    async def import_file(self, request: Request[Any, Any, Any], service: Service,
                          agent_id: FromQuery[str | None] = None,
                          format: FromQuery[str | None] = None,
                          wait: FromQuery[float] = 10.0) -> Response[ImportJob]:
        """Import a file (multipart/form-data, its first file field; or the bare file) into
        an agent, as a job. Answers the job once it has ended, or after `wait` seconds (at
        most 3/4 of DAKERA_REQUEST_TIMEOUT; 202, still running: follow
        GET /v1/import/{job_id}/status)."""
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
        wait = min(wait, MAX_WAIT_SECS, answer_within(service.settings.request_timeout))
        if wait > 0:
            job = await anyio.to_thread.run_sync(transfer.wait, job["job_id"], wait)
        running = job["status"] in ("queued", "running")
        return Response(job_out(job), status_code=202 if running else 200)

    @get("/v1/import/{job_id:str}/status", sync_to_thread=True,
         responses=error_responses(404), opt=need("read", agent=job_in_path()))
    def status(self, job_id: FromPath[str], service: Service) -> ImportJob:
        return job_out(service.transfer.status(job_id))

    @get("/v1/import/jobs", sync_to_thread=True, responses=error_responses(),
         opt=need("read", listing=True))
    def jobs(self, service: Service, principal: Principal,
             limit: FromQuery[int] = 50) -> ImportJobList:
        """Recent import jobs, newest first (running ones first of all): those into the
        agents the key reaches."""
        jobs = [j for j in service.transfer.jobs(max(1, min(limit, 200)))
                if principal.reaches_agent(j["agent_id"])]
        return ImportJobList(jobs=[job_out(j) for j in jobs], total=len(jobs))
