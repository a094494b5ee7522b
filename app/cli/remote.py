"""The client verbs' backend for a running dakera server: its REST API over httpx (imported
only when a verb goes to a server, so that `dakera serve` does not load the HTTP client)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from app import __version__
from app.cli.backend import STREAM_TIMEOUT, TIMEOUT, UNREACHABLE, CliError, code_for


class _Counted:
    """A file read for an upload, reporting each chunk read (for a progress bar)."""

    def __init__(self, f: IO[bytes], progress: Callable[[int], None]) -> None:
        self._f = f
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._progress(len(data))
        return data

    def fileno(self) -> int:
        return self._f.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


class Remote:
    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url.rstrip("/")
        self.where = f"the dakera server at {self.url}"
        headers = {"User-Agent": f"dakera-cli/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(base_url=self.url, headers=headers,
                                   timeout=httpx.Timeout(TIMEOUT, connect=5.0))

    def close(self) -> None:
        self.client.close()

    def _fail(self, response: httpx.Response) -> CliError:
        try:
            data = response.json()
        except ValueError:
            data = None
        message = (data.get("error") if isinstance(data, dict) else None) or \
            response.text.strip()[:300] or response.reason_phrase
        return CliError(f"{message} ({response.status_code} from {self.url})",
                        code_for(response.status_code))

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self.client.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {self.where}: {exc}", UNREACHABLE) from None
        if not response.is_success:
            raise self._fail(response)
        return response.json() if response.content else {}

    def _stream(self, path: str, params: dict[str, Any] | None = None
                ) -> tuple[httpx.Response, Iterator[bytes]]:
        try:
            response = self.client.send(
                self.client.build_request("GET", path, params=params,
                                          timeout=httpx.Timeout(STREAM_TIMEOUT, connect=5.0)),
                stream=True)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {self.where}: {exc}", UNREACHABLE) from None
        if not response.is_success:
            response.read()
            response.close()
            raise self._fail(response)

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_bytes()
            except httpx.TransportError as exc:
                raise CliError(f"the download from {self.url} broke off: {exc}",
                               UNREACHABLE) from None
            finally:
                response.close()

        return response, chunks()

    def store(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._send("POST", "/v1/memory/store", json=body))

    def recall(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._send("POST", "/v1/memory/recall", json=body))

    def forget(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._send("POST", "/v1/memory/forget", json=body))

    def agents(self) -> list[dict[str, Any]]:
        return list(self._send("GET", "/v1/agents"))

    def stats(self, agent_id: str) -> dict[str, Any]:
        return dict(self._send("GET", f"/v1/agents/{agent_id}/stats"))

    def export(self, agent_id: str, fmt: str, vectors: bool, sessions: bool, edges: bool
               ) -> tuple[int, Iterator[bytes]]:
        response, chunks = self._stream("/v1/export", {
            "agent_id": agent_id, "format": fmt, "include_vectors": str(vectors).lower(),
            "include_sessions": str(sessions).lower(), "include_edges": str(edges).lower()})
        return int(response.headers.get("x-dakera-export-count", "0") or 0), chunks

    def start_import(self, agent_id: str, path: Path, fmt: str | None,
                     progress: Callable[[int], None]) -> dict[str, Any]:
        params = {"agent_id": agent_id, "wait": "0", **({"format": fmt} if fmt else {})}
        with path.open("rb") as f:
            files = {"file": (path.name, _Counted(f, progress), "application/octet-stream")}
            return dict(self._send("POST", "/v1/import", params=params, files=files,
                                   timeout=httpx.Timeout(STREAM_TIMEOUT, connect=5.0)))

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self._send("GET", f"/v1/import/{job_id}/status"))

    def backup_create(self, name: str) -> dict[str, Any]:
        out = self._send("POST", "/v1/admin/backups", json={"name": name},
                         timeout=httpx.Timeout(STREAM_TIMEOUT, connect=5.0))
        return dict(out.get("backup", out))

    def backup_list(self) -> list[dict[str, Any]]:
        return list(self._send("GET", "/v1/admin/backups")["backups"])

    def backup_delete(self, backup_id: str) -> dict[str, Any]:
        return dict(self._send("DELETE", f"/v1/admin/backups/{backup_id}"))

    def backup_download(self, backup_id: str) -> tuple[str, Iterator[bytes]]:
        _, chunks = self._stream(f"/v1/admin/backups/{backup_id}/download")
        return f"{backup_id}.db.gz", chunks

    def backup_upload(self, path: Path, name: str | None,
                      progress: Callable[[int], None]) -> dict[str, Any]:
        with path.open("rb") as f:
            out = self._send("POST", "/v1/admin/backups/upload", content=_chunked(f, progress),
                             params={"name": name} if name else None,
                             headers={"Content-Type": "application/gzip"},
                             timeout=httpx.Timeout(STREAM_TIMEOUT, connect=5.0))
        return dict(out.get("backup", out))

    def backup_restore(self, backup_id: str) -> dict[str, Any]:
        status = dict(self._send("POST", "/v1/admin/backups/restore",
                                 json={"backup_id": backup_id}, params={"wait": "600"},
                                 timeout=httpx.Timeout(STREAM_TIMEOUT + 60, connect=5.0)))
        while status.get("status") == "running":
            time.sleep(1)
            status = dict(self._send("GET",
                                     f"/v1/admin/backups/restore/{status['restore_id']}"))
        return status


def _chunked(f: IO[bytes], progress: Callable[[int], None]) -> Iterator[bytes]:
    while block := f.read(1 << 20):
        progress(len(block))
        yield block


def answers(url: str) -> bool:
    try:
        response = httpx.get(url.rstrip("/") + "/health/live", timeout=2.0)
        return response.status_code == 200 and response.json().get("alive") is True
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
