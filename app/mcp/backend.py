"""Where the tools' requests go: the Service of this process, or a running server.

Both backends take and return the REST API's JSON bodies, so a tool behaves the same in
either mode, and both fail with ToolFailure carrying the REST API's error envelope
{"error", "code", "status", ...}: the same message the API would have answered.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
import httpx

from app import __version__
from app.errors import DakeraError, ServiceUnavailableError, ValidationError
from app.mcp.ops import CALLER, NO_ENGINE, OPS

if TYPE_CHECKING:
    from app.service import Service

log = logging.getLogger("dakera.mcp")

T = TypeVar("T")

READY_WAIT_SECS = 120.0  # a tool call during start-up waits this long for the model


class ToolFailure(Exception):
    """A request the backend refused or could not serve, as the REST error envelope."""

    def __init__(self, envelope: dict[str, Any]) -> None:
        super().__init__(envelope.get("error", "error"))
        self.envelope = envelope

    @classmethod
    def of(cls, error: DakeraError) -> ToolFailure:
        return cls(error.envelope())


class Backend(Protocol):
    async def store(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def recall(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def search(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def forget(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def batch_recall(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def batch_forget(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def start_session(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def end_session(self, session_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """One of app.mcp.ops.OPS: the JSON body its route answers (a list as {"result"},
        text as {"text"})."""
        ...


def as_body(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return result
    if isinstance(result, str):
        return {"text": result}
    return {"result": result}


class LocalBackend:
    """The Service of this process (the server's /mcp, or `dakera mcp` on its own)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def _run(self, fn: Callable[[Service], T]) -> T:
        """fn(service) on a worker thread, once the service is ready (parts are looked up
        there: while the model loads, a call waits rather than fails)."""
        def call() -> T:
            if not self.service.ready:
                # If start-up failed, the service's own error (503) follows.
                with contextlib.suppress(Exception):
                    self.service.wait_ready(READY_WAIT_SECS)
            return fn(self.service)

        try:
            return await anyio.to_thread.run_sync(call)
        except DakeraError as exc:
            raise ToolFailure.of(exc) from None

    async def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        local = OPS[op].local
        caller = CALLER.get()
        if OPS[op].admin and caller is not None:  # what its route would check
            try:
                caller.require("admin")
                caller.require_every_namespace()
            except DakeraError as exc:
                raise ToolFailure.of(exc) from None
        if op in NO_ENGINE:  # answers while the model loads
            try:
                return as_body(await anyio.to_thread.run_sync(lambda: local(self.service, args)))
            except DakeraError as exc:
                raise ToolFailure.of(exc) from None
        return as_body(await self._run(lambda s: local(s, args)))

    async def store(self, body: dict[str, Any]) -> dict[str, Any]:
        result = await self._run(lambda s: s.memories.store(
            body.get("agent_id"), body.get("content"),
            memory_type=body.get("memory_type"), importance=body.get("importance"),
            tags=body.get("tags"), metadata=body.get("metadata"),
            session_id=body.get("session_id"), ttl_seconds=body.get("ttl_seconds"),
            expires_at=body.get("expires_at")))
        out: dict[str, Any] = {"memory": result.memory.to_dict()}
        if result.memory.session_id is not None:
            out["session_state"] = result.session_states.get(result.memory.session_id)
        return out

    async def recall(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._recall(body, reinforce=True)

    async def search(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._recall(body, reinforce=False)

    async def _recall(self, body: dict[str, Any], *, reinforce: bool) -> dict[str, Any]:
        out = await self._run(lambda s: s.recall.recall(
            body.get("agent_id"), body.get("query"),
            top_k=body.get("top_k", 5), memory_type=body.get("memory_type"),
            min_importance=body.get("min_importance"), tags=body.get("tags"),
            session_id=body.get("session_id"), since=body.get("since"),
            until=body.get("until"), routing=body.get("routing"),
            vector_weight=body.get("vector_weight"), reinforce=reinforce,
            include_associated=body.get("include_associated"),
            associated_memories_cap=body.get("associated_memories_cap"),
            associated_memories_depth=body.get("associated_memories_depth"),
            associated_memories_min_weight=body.get("associated_memories_min_weight")))
        answer: dict[str, Any] = {"memories": [h.to_dict() for h in out.hits]}
        if out.associated is not None:
            answer["associated_memories"] = [a.to_dict() for a in out.associated]
        return answer

    async def forget(self, body: dict[str, Any]) -> dict[str, Any]:
        count = await self._run(lambda s: s.memories.forget(
            body.get("agent_id"), memory_ids=body.get("memory_ids"), tags=body.get("tags")))
        return {"deleted_count": count}

    async def batch_recall(self, body: dict[str, Any]) -> dict[str, Any]:
        out = await self._run(lambda s: s.memories.batch_recall(
            body.get("agent_id"), body.get("filter"), body.get("limit", 100)))
        return {**out, "memories": [m.to_dict() for m in out["memories"]]}

    async def batch_forget(self, body: dict[str, Any]) -> dict[str, Any]:
        count = await self._run(lambda s: s.memories.batch_forget(body.get("agent_id"),
                                                                  body.get("filter")))
        return {"deleted_count": count}

    async def start_session(self, body: dict[str, Any]) -> dict[str, Any]:
        session = await self._run(lambda s: s.sessions.start(
            body.get("agent_id"), metadata=body.get("metadata"),
            idle_timeout_secs=body.get("idle_timeout_secs")))
        return {"session": session.to_dict()}

    async def end_session(self, session_id: str, body: dict[str, Any]) -> dict[str, Any]:
        session = await self._run(lambda s: s.sessions.end(session_id,
                                                           summary=body.get("summary")))
        return {"session": session.to_dict(), "memory_count": session.memory_count,
                "ended_reason": session.ended_reason}


RETRY_STATUSES = frozenset({429, 503})  # refused before anything was applied: safe to repeat
ATTEMPTS = 3


class RemoteBackend:
    """A running dakera server, through its REST API (Bearer key from DAKERA_API_KEY)."""

    def __init__(self, url: str, api_key: str | None = None, *,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"dakera-mcp/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.AsyncClient(base_url=self.url, headers=headers,
                                        timeout=httpx.Timeout(timeout, connect=5.0))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def probe(self) -> str | None:
        """None when the server answers and accepts the key, else what is wrong."""
        try:
            await self._call("GET", "/v1/capabilities", None)
        except ToolFailure as exc:
            return str(exc.envelope.get("error"))
        return None

    async def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        spec = OPS[op]
        rest = dict(args)
        path = spec.path
        for name in re.findall(r"{(\w+)}", spec.path):
            if name not in rest:
                raise ToolFailure.of(ValidationError(f"'{name}' is required"))
            path = path.replace("{" + name + "}", quote(str(rest.pop(name)), safe=":"))
        if spec.method in ("GET", "DELETE"):
            params, body = rest, None
        else:
            params = {k: rest.pop(k) for k in spec.query if k in rest}
            body = rest
        query = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}
        return await self._call(spec.method, path, body, query)

    async def _call(self, method: str, path: str, body: dict[str, Any] | None,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = None
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self.client.request(method, path, json=body, params=params)
            except httpx.ConnectError as exc:  # nothing was sent: safe to repeat
                if attempt < ATTEMPTS:
                    await anyio.sleep(0.2 * attempt)
                    continue
                raise ToolFailure.of(ServiceUnavailableError(
                    f"cannot reach the dakera server at {self.url}: {exc}")) from None
            except httpx.HTTPError as exc:
                raise ToolFailure.of(ServiceUnavailableError(
                    f"request to the dakera server at {self.url} failed: {exc}")) from None
            if response.status_code in RETRY_STATUSES and attempt < ATTEMPTS:
                await anyio.sleep(_retry_after(response))
                continue
            break
        assert response is not None
        if response.is_success:
            if "json" not in response.headers.get("content-type", "json"):
                return {"text": response.text}
            return as_body(response.json() if response.content else {})
        raise ToolFailure(_envelope(response))

    async def store(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/memory/store", body)

    async def recall(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/memory/recall", body)

    async def search(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/memory/search", body)

    async def forget(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/memory/forget", body)

    async def batch_recall(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/memories/recall/batch", body)

    async def batch_forget(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("DELETE", "/v1/memories/forget/batch", body)

    async def start_session(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/sessions/start", body)

    async def end_session(self, session_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", f"/v1/sessions/{quote(session_id, safe=':')}/end",
                                body)


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "1")), 0.1), 2.0)
    except ValueError:
        return 1.0


def _envelope(response: httpx.Response) -> dict[str, Any]:
    """The server's error envelope as it sent it; a body that is not one is wrapped."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data:
        envelope = dict(data)
        envelope.setdefault("status", response.status_code)
        return envelope
    text = response.text.strip()[:500] or response.reason_phrase
    return {"error": text, "code": "UNKNOWN", "status": response.status_code}
