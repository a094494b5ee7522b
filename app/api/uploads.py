"""Large request bodies streamed to disk: an import file (multipart/form-data, its first file
field, as the Dakera clients send it; or the bare file) and a backup upload. Nothing is held
in memory beyond a chunk, the size is capped while reading, and a body that ends early
(a truncated upload, a client gone) is refused with nothing kept.

Also: large response bodies streamed from a blocking iterator, a chunk at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any, Protocol

import anyio
import anyio.to_thread
from litestar import Request
from litestar.exceptions import HTTPException
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from app.errors import PayloadTooLargeError, StorageFullError, ValidationError

FLUSH_BYTES = 1 << 20


class Sink(Protocol):
    limit: int

    def write(self, chunk: bytes) -> None: ...


def check_length(request: Request[Any, Any, Any], limit: int, free: int | None) -> None:
    """Refuse a body announced too large before reading any of it."""
    try:
        length = int(request.headers.get("content-length", ""))
    except ValueError:
        return
    if length > limit:
        raise PayloadTooLargeError(f"the upload is {length} bytes; the limit is {limit} "
                                   "(DAKERA_MAX_IMPORT_BYTES)", details="DAKERA_MAX_IMPORT_BYTES")
    if free is not None and length > free:
        raise StorageFullError(f"the upload is {length} bytes but only {free} are free "
                               "on the data dir's disk; nothing was imported")


async def _chunks(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except HTTPException as exc:  # litestar: "client disconnected prematurely"
        raise ValidationError(f"the upload ended early ({exc.detail}): it is truncated; "
                              "nothing was imported") from None


async def receive(request: Request[Any, Any, Any], sink: Sink) -> str | None:
    """Write the uploaded file to `sink`; returns its file name when the client gave one."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    pending: list[bytes] = []
    size = 0

    async def flush() -> None:
        nonlocal pending, size
        if pending:
            data = b"".join(pending)
            pending, size = [], 0
            await anyio.to_thread.run_sync(sink.write, data)

    async def put(data: bytes) -> None:
        nonlocal size
        pending.append(data)
        size += len(data)
        if size >= FLUSH_BYTES:
            await flush()

    if kind != "multipart/form-data":  # the bare file
        async for chunk in _chunks(request):
            await put(chunk)
        await flush()
        return None
    boundary = options.get("boundary")
    if not boundary:
        raise ValidationError("multipart/form-data without a boundary")
    filename: str | None = None
    state = "before"  # before the file field, in it, after it
    try:
        parser = PushMultipartParser(boundary, max_segment_count=64)
        async for chunk in _chunks(request):
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    if state == "before" and (event.filename is not None or event.name == "file"):
                        state, filename = "in", event.filename
                elif event is None:
                    if state == "in":
                        state = "after"
                elif state == "in":
                    await put(event)
        parser.close()
    except MultipartError as exc:
        raise ValidationError(f"the upload is not complete multipart/form-data ({exc}): it "
                              "may be truncated; nothing was imported") from None
    if state != "after":
        raise ValidationError("the multipart upload has no file field (send the file as "
                              "the field 'file')")
    await flush()
    return filename


async def stream(iterator: Iterator[bytes], pool: Executor | None = None
                 ) -> AsyncIterator[bytes]:
    """The chunks of a blocking iterator, each read on a worker thread: of `pool` when given
    (database reads: a few threads, so a few reader connections and their caches, however
    many exports run), else of the event loop's."""
    done = object()

    def step() -> Any:
        return next(iterator, done)

    async def call(fn: Callable[[], Any]) -> Any:
        if pool is None:
            return await anyio.to_thread.run_sync(fn)
        return await asyncio.wrap_future(pool.submit(fn))

    try:
        while (chunk := await call(step)) is not done:
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await call(close)
