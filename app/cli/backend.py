"""Where the client verbs go: a running dakera server over its REST API, or the data dir
opened in this process when no server holds it (the data dir's lock decides, as for
`dakera mcp`). Both answer the REST API's JSON shapes and fail with `CliError`, whose exit
code scripts can rely on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import click

from app.config import Settings
from app.errors import DakeraError, DataDirInUse

OK, FAILED, UNREACHABLE, NOT_FOUND, REFUSED, INVALID, SERVER_ERROR = range(7)
TIMEOUT = 60.0
STREAM_TIMEOUT = 600.0  # between two chunks of a long export, upload or restore


class CliError(click.ClickException):
    """A failure with the exit code that says what kind it is."""

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"dakera: {self.format_message()}", err=True)


def code_for(status: int) -> int:
    if status in (401, 403, 421):
        return REFUSED
    if status == 404:
        return NOT_FOUND
    if status in (400, 413, 415, 422):
        return INVALID
    if status >= 500:
        return SERVER_ERROR
    return FAILED


def from_dakera(exc: DakeraError) -> CliError:
    return CliError(exc.message, code_for(exc.status))


class Backend(Protocol):
    where: str

    def store(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def recall(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def forget(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def agents(self) -> list[dict[str, Any]]: ...
    def stats(self, agent_id: str) -> dict[str, Any]: ...
    def export(self, agent_id: str, fmt: str, vectors: bool, sessions: bool, edges: bool
               ) -> tuple[int, Iterator[bytes]]: ...
    def start_import(self, agent_id: str, path: Path, fmt: str | None,
                     progress: Callable[[int], None]) -> dict[str, Any]: ...
    def job(self, job_id: str) -> dict[str, Any]: ...
    def backup_create(self, name: str) -> dict[str, Any]: ...
    def backup_list(self) -> list[dict[str, Any]]: ...
    def backup_delete(self, backup_id: str) -> dict[str, Any]: ...
    def backup_download(self, backup_id: str) -> tuple[str, Iterator[bytes]]: ...
    def backup_upload(self, path: Path, name: str | None,
                      progress: Callable[[int], None]) -> dict[str, Any]: ...
    def backup_restore(self, backup_id: str) -> dict[str, Any]: ...
    def close(self) -> None: ...


# -- the data dir in this process -----------------------------------------------------------

class Local:
    """The engine of this process over a data dir it holds the lock of."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.where = f"the data dir {service.settings.data_dir}"

    def close(self) -> None:
        self.service.close()

    def _run(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except DakeraError as exc:
            raise from_dakera(exc) from None

    def store(self, body: dict[str, Any]) -> dict[str, Any]:
        result = self._run(lambda: self.service.memories.store(
            body.get("agent_id"), body.get("content"), memory_type=body.get("memory_type"),
            importance=body.get("importance"), tags=body.get("tags"),
            metadata=body.get("metadata"), session_id=body.get("session_id")))
        return {"memory": result.memory.to_dict()}

    def recall(self, body: dict[str, Any]) -> dict[str, Any]:
        out = self._run(lambda: self.service.recall.recall(
            body.get("agent_id"), body.get("query"), top_k=body.get("top_k", 5),
            memory_type=body.get("memory_type"), tags=body.get("tags"),
            session_id=body.get("session_id")))
        return {"memories": [h.to_dict() for h in out.hits]}

    def forget(self, body: dict[str, Any]) -> dict[str, Any]:
        count = self._run(lambda: self.service.memories.forget(
            body.get("agent_id"), memory_ids=body.get("memory_ids"), tags=body.get("tags"),
            session_id=body.get("session_id")))
        return {"deleted_count": count}

    def agents(self) -> list[dict[str, Any]]:
        return list(self._run(lambda: self.service.agents.all()))

    def stats(self, agent_id: str) -> dict[str, Any]:
        return dict(self._run(lambda: self.service.agents.stats(agent_id)))

    def export(self, agent_id: str, fmt: str, vectors: bool, sessions: bool, edges: bool
               ) -> tuple[int, Iterator[bytes]]:
        out = self._run(lambda: self.service.transfer.export(
            agent_id, fmt, include_vectors=vectors, include_sessions=sessions,
            include_edges=edges))
        return out.count, out.chunks

    def start_import(self, agent_id: str, path: Path, fmt: str | None,
                     progress: Callable[[int], None]) -> dict[str, Any]:
        progress(path.stat().st_size)  # read in place: nothing to upload
        return dict(self._run(lambda: self.service.transfer.submit(
            agent_id, path, fmt, filename=path.name, owned=False)))

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self._run(lambda: self.service.transfer.status(job_id)))

    def backup_create(self, name: str) -> dict[str, Any]:
        return dict(self._run(lambda: self.service.backups.create(name)))

    def backup_list(self) -> list[dict[str, Any]]:
        return list(self._run(lambda: self.service.backups.list()))

    def backup_delete(self, backup_id: str) -> dict[str, Any]:
        return dict(self._run(lambda: self.service.backups.delete(backup_id)))

    def backup_download(self, backup_id: str) -> tuple[str, Iterator[bytes]]:
        name, chunks = self._run(lambda: self.service.backups.download(backup_id))
        return str(name), chunks

    def backup_upload(self, path: Path, name: str | None,
                      progress: Callable[[int], None]) -> dict[str, Any]:
        spool = self._run(lambda: self.service.transfer.spool())
        try:
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    self._run(lambda: spool.write(block))
                    progress(len(block))
        except BaseException:
            spool.discard()
            raise
        kept = spool.finish()
        return dict(self._run(lambda: self.service.backups.receive(kept, name)))

    def backup_restore(self, backup_id: str) -> dict[str, Any]:
        return dict(self._run(lambda: self.service.backups.restore(backup_id, wait=86_400.0)))


# -- choosing ---------------------------------------------------------------------------------

def connect(settings: Settings, url: str | None, *, quiet: bool = False) -> Backend:
    """The server at `url`; else the data dir in this process; else, when a server holds the
    data dir, that server (at DAKERA_HOST:DAKERA_PORT)."""
    from app.cli.remote import Remote, answers

    if url:
        return Remote(url, settings.api_key)
    from app.service import Service

    service = Service(settings)
    try:
        service.start()
    except DataDirInUse as exc:
        fallback = settings.local_url
        if answers(fallback):
            if not quiet:
                click.echo(f"dakera: the data dir is in use; using the dakera server at "
                           f"{fallback}", err=True)
            return Remote(fallback, settings.api_key)
        raise CliError(f"{exc.message}; and no dakera server answers at {fallback}: pass "
                       "--url (or set DAKERA_URL) to reach the server that holds it",
                       UNREACHABLE) from None
    try:
        service.wait_ready()
    except DakeraError as exc:
        service.close()
        raise from_dakera(exc) from None
    except Exception as exc:
        service.close()
        raise CliError(f"cannot open the data dir {settings.data_dir}: {exc}") from None
    return Local(service)


def move_into_place(tmp: Path, target: Path) -> None:
    """Finish a download: the complete file (synced) takes the target's name."""
    with contextlib.suppress(OSError):
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    shutil.move(tmp, target)
