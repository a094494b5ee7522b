"""Backups (/v1/admin/backups and /admin/backups): create, list, get, delete, download
(gzip), upload, the schedule, restore -> service.backups (and service.restores, which
answer while a restore has the parts closed)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from app.api import uploads
from app.api.deps import Service
from app.api.schemas import error_responses
from app.api.scopes import need
from app.api.transfer import answer_within
from app.errors import UnprocessableError, ValidationError

CREATE_FIELDS = {"name", "backup_type", "namespaces", "encrypt", "compression"}
RESTORE_FIELDS = {"backup_id", "overwrite", "point_in_time", "target_namespaces"}


class BackupInfo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A backup: a complete copy of the database and what it holds."""

    backup_id: str
    id: str
    name: str
    kind: str  # manual, scheduled, pre-restore or uploaded
    backup_type: str  # full
    status: str  # completed
    namespaces: list[str]  # empty: every agent
    memory_count: int
    vector_count: int
    agent_count: int
    session_count: int
    model: str | None  # the embedding model of its vectors
    dimension: int | None
    schema_version: int
    size_bytes: int
    created_at: int
    completed_at: int
    duration_seconds: float
    storage_path: str
    encrypted: bool
    compression: str


class BackupCreated(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    backup: BackupInfo


class BackupList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    backups: list[BackupInfo]  # newest first
    total: int


class BackupDeleted(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    deleted: bool
    backup_id: str


class BackupSchedule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool
    interval_hours: float
    keep: int
    backup_dir: str
    last_backup_at: int | None
    next_backup_at: int | None


class RestoreStatus(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    restore_id: str
    status: str  # running, completed or failed (then nothing changed)
    backup_id: str
    namespaces: list[str]
    started_at: int
    completed_at: int | None
    duration_seconds: float | None
    error: str | None
    pre_restore_backup_id: str | None  # the data before the restore, kept as a backup
    memory_count: int  # in the backup


def info_out(info: dict[str, Any]) -> BackupInfo:
    return msgspec.convert(info, BackupInfo)


async def _object(request: Request[Any, Any, Any], fields: set[str] | None) -> dict[str, Any]:
    """The JSON object body; unknown fields refused with 422 where the contract says so."""
    body = await request.json()
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    if fields is not None and set(body) - fields:
        raise UnprocessableError(f"unknown fields: {', '.join(sorted(set(body) - fields))} "
                                 f"(known: {', '.join(sorted(fields))})")
    return body


# Backups hold every agent: each route needs admin over every namespace; a restore, which
# replaces every agent and the stored keys, needs super_admin (as the SDK documents).
ADMIN = need("admin", every_namespace=True)


class BackupAdminController(Controller):
    path = "/backups"

    @post("/", status_code=201, responses=error_responses(422, 501, 507), opt=ADMIN)
    async def create(self, request: Request[Any, Any, Any], service: Service) -> BackupCreated:
        """A full, consistent backup of the database, taken while writes go on."""
        body = await _object(request, CREATE_FIELDS)
        backups = service.backups
        info = await anyio.to_thread.run_sync(lambda: backups.create(
            body.get("name"), backup_type=body.get("backup_type"),
            namespaces=body.get("namespaces"), encrypt=body.get("encrypt"),
            compression=body.get("compression")))
        return BackupCreated(backup=info_out(info))

    @get("/", sync_to_thread=True, responses=error_responses(), opt=ADMIN)
    def list_backups(self, service: Service) -> BackupList:
        backups = service.backups.list()
        return BackupList(backups=[info_out(b) for b in backups], total=len(backups))

    @get("/schedule", sync_to_thread=True, responses=error_responses(), opt=ADMIN)
    def schedule(self, service: Service) -> BackupSchedule:
        return msgspec.convert(service.backups.schedule_info(), BackupSchedule)

    @post("/schedule", status_code=200, responses=error_responses(422), opt=ADMIN)
    async def set_schedule(self, request: Request[Any, Any, Any], service: Service
                           ) -> BackupSchedule:
        """Change the schedule until restart (interval_hours, keep, enabled)."""
        body = await _object(request, None)
        info = await anyio.to_thread.run_sync(service.backups.set_schedule, body)
        return msgspec.convert(info, BackupSchedule)

    @post("/restore", status_code=200, responses=error_responses(404, 409, 422, 501, 507),
          opt=need("super_admin", every_namespace=True))
    async def restore(self, request: Request[Any, Any, Any], service: Service,
                      wait: FromQuery[float] = 60.0) -> Response[RestoreStatus]:
        """Replace the whole database with a backup (a backup of the current data is taken
        first). Answers once done, or after `wait` seconds (at most 3/4 of
        DAKERA_REQUEST_TIMEOUT; 202: follow GET .../backups/restore/{restore_id})."""
        body = await _object(request, RESTORE_FIELDS)
        backups = service.backups
        status = await anyio.to_thread.run_sync(lambda: backups.restore(
            body.get("backup_id"), overwrite=body.get("overwrite"),
            point_in_time=body.get("point_in_time"),
            target_namespaces=body.get("target_namespaces"), wait=max(0.0, min(
                wait, 600.0, answer_within(service.settings.request_timeout)))))
        return Response(msgspec.convert(status, RestoreStatus),
                        status_code=202 if status["status"] == "running" else 200)

    @get("/restore/{restore_id:str}", sync_to_thread=True, responses=error_responses(404),
         opt=ADMIN)
    def restore_status(self, restore_id: FromPath[str], service: Service) -> RestoreStatus:
        return msgspec.convert(service.restores.status(restore_id), RestoreStatus)

    @post("/upload", status_code=201, request_max_body_size=None,
          responses=error_responses(413, 507),
          opt=need("admin", every_namespace=True, upload=True))
    async def upload(self, request: Request[Any, Any, Any], service: Service,
                     name: FromQuery[str | None] = None) -> BackupCreated:
        """Keep an uploaded backup (application/gzip as downloaded, or a bare SQLite file),
        checked before it is listed."""
        backups = service.backups
        uploads.check_length(request, service.settings.max_import_bytes,
                             await anyio.to_thread.run_sync(service.transfer.free_space))
        spool = await anyio.to_thread.run_sync(service.transfer.spool)
        try:
            await uploads.receive(request, spool)
        except BaseException:
            await anyio.to_thread.run_sync(spool.discard)
            raise
        path = await anyio.to_thread.run_sync(spool.finish)
        info = await anyio.to_thread.run_sync(backups.receive, path, name)
        return BackupCreated(backup=info_out(info))

    @get("/{backup_id:str}", sync_to_thread=True, responses=error_responses(404), opt=ADMIN)
    def get_backup(self, backup_id: FromPath[str], service: Service) -> BackupInfo:
        return info_out(service.backups.get(backup_id))

    @delete("/{backup_id:str}", status_code=200, sync_to_thread=True,
            responses=error_responses(404), opt=ADMIN)
    def delete_backup(self, backup_id: FromPath[str], service: Service) -> BackupDeleted:
        return msgspec.convert(service.backups.delete(backup_id), BackupDeleted)

    @get("/{backup_id:str}/download", sync_to_thread=True, media_type="application/gzip",
         responses=error_responses(404), opt=ADMIN)
    def download(self, backup_id: FromPath[str], service: Service) -> Stream:
        """The backup's database file, gzipped."""
        filename, chunks = service.backups.download(backup_id)
        return Stream(uploads.stream(chunks), media_type="application/gzip", headers={
            "Content-Disposition": f'attachment; filename="{filename}"'})
