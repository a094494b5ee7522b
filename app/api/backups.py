"""Backups (/v1/admin/backups and /admin/backups): create, list, get, delete, download
(gzip), upload, the schedule, restore -> service.backups."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from app.api import uploads
from app.api.deps import Service
from app.errors import UnprocessableError, ValidationError

CREATE_FIELDS = {"name", "backup_type", "namespaces", "encrypt", "compression"}
RESTORE_FIELDS = {"backup_id", "overwrite", "point_in_time", "target_namespaces"}


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


class BackupAdminController(Controller):
    path = "/backups"

    @post("/", status_code=201)
    async def create(self, request: Request[Any, Any, Any], service: Service
                     ) -> dict[str, Any]:
        """A full, consistent backup of the database, taken while writes go on."""
        body = await _object(request, CREATE_FIELDS)
        backups = service.backups
        info = await anyio.to_thread.run_sync(lambda: backups.create(
            body.get("name"), backup_type=body.get("backup_type"),
            namespaces=body.get("namespaces"), encrypt=body.get("encrypt"),
            compression=body.get("compression")))
        return {"backup": info, **info}

    @get("/", sync_to_thread=True)
    def list_backups(self, service: Service) -> dict[str, Any]:
        backups = service.backups.list()
        return {"backups": backups, "total": len(backups)}

    @get("/schedule", sync_to_thread=True)
    def schedule(self, service: Service) -> dict[str, Any]:
        return service.backups.schedule_info()

    @post("/schedule", status_code=200)
    async def set_schedule(self, request: Request[Any, Any, Any], service: Service
                           ) -> dict[str, Any]:
        """Change the schedule until restart (interval_hours, keep, enabled)."""
        body = await _object(request, None)
        return await anyio.to_thread.run_sync(service.backups.set_schedule, body)

    @post("/restore", status_code=200)
    async def restore(self, request: Request[Any, Any, Any], service: Service,
                      wait: FromQuery[float] = 60.0) -> Response[dict[str, Any]]:
        """Replace the whole database with a backup (a backup of the current data is taken
        first). Answers once done, or after `wait` seconds (202: follow
        GET .../backups/restore/{restore_id})."""
        body = await _object(request, RESTORE_FIELDS)
        backups = service.backups
        status = await anyio.to_thread.run_sync(lambda: backups.restore(
            body.get("backup_id"), overwrite=body.get("overwrite"),
            point_in_time=body.get("point_in_time"),
            target_namespaces=body.get("target_namespaces"), wait=max(0.0, min(wait, 600.0))))
        return Response(status, status_code=202 if status["status"] == "running" else 200)

    @get("/restore/{restore_id:str}", sync_to_thread=True)
    def restore_status(self, restore_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.restores.status(restore_id)

    @post("/upload", status_code=201, request_max_body_size=None)
    async def upload(self, request: Request[Any, Any, Any], service: Service,
                     name: FromQuery[str | None] = None) -> dict[str, Any]:
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
        return {"backup": info, **info}

    @get("/{backup_id:str}", sync_to_thread=True)
    def get_backup(self, backup_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.backups.get(backup_id)

    @delete("/{backup_id:str}", status_code=200, sync_to_thread=True)
    def delete_backup(self, backup_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.backups.delete(backup_id)

    @get("/{backup_id:str}/download", sync_to_thread=True)
    def download(self, backup_id: FromPath[str], service: Service) -> Stream:
        """The backup's database file, gzipped."""
        filename, chunks = service.backups.download(backup_id)
        return Stream(uploads.stream(chunks), media_type="application/gzip", headers={
            "Content-Disposition": f'attachment; filename="{filename}"'})
