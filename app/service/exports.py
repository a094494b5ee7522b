"""Export files: an agent's memories as JSON lines, CSV, a Mem0 or a Zep JSON document,
written page by page so that an export of any size holds one page in memory.

JSON lines are dakera's own lossless format (see records.memory_line); the others carry
what their tools know (and dakera's importance, type and tags beside it, so importing them
back keeps those).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from csv import writer as csv_writer
from typing import Any

import msgspec

from app.models import Memory, Session
from app.service.formats import iso
from app.service.records import encode_vector, memory_line, session_line

_encode = msgspec.json.encode

EXPORT_FORMATS = ("jsonl", "csv", "mem0", "zep")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
               "mem0": "application/json", "zep": "application/json"}
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "mem0": "mem0.json", "zep": "zep.json"}
CSV_COLUMNS = ("id", "agent_id", "content", "memory_type", "importance", "tags", "metadata",
               "session_id", "created_at", "updated_at", "last_accessed_at", "access_count",
               "ttl_seconds", "expires_at", "decayed_at")

# memory, vector, decayed_at, its sentences' vectors (float32 bytes, n x dimension; with the
# vectors, for a memory of several sentences)
Page = list[tuple[Memory, bytes | None, int | None, bytes | None]]


def mem0_item(m: Memory) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": m.id, "memory": m.content,
        "hash": hashlib.md5(m.content.encode("utf-8", "surrogatepass"),
                            usedforsecurity=False).hexdigest(),
        "metadata": m.metadata or None, "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at), "agent_id": m.agent_id, "categories": m.tags,
        "memory_type": m.memory_type, "importance": m.importance}
    if m.session_id is not None:
        item["run_id"] = m.session_id
    if m.expires_at is not None:
        item["expiration_date"] = iso(m.expires_at)
    return item


def zep_message(m: Memory) -> dict[str, Any]:
    meta = m.metadata or {}
    role = meta.get("role") if meta.get("role") in ("system", "assistant", "user", "function",
                                                   "tool") else "norole"
    out: dict[str, Any] = {
        "uuid": m.id, "content": m.content, "role_type": role,
        "role": str(meta.get("speaker") or meta.get("name") or ""),
        "created_at": iso(m.created_at), "updated_at": iso(m.updated_at), "metadata": meta,
        "memory_type": m.memory_type, "importance": m.importance, "tags": m.tags}
    if m.session_id is not None:
        out["session_id"] = m.session_id
    return out


def write(fmt: str, pages: Iterable[Page], sessions: Iterable[list[Session]],
          model_id: str, with_vectors: bool,
          edges: Iterable[list[dict[str, Any]]] = ()) -> Iterator[bytes]:
    """The export file in chunks (one per page). Edge lines come last (JSON lines): an
    import restores them once every memory they join is in."""
    if fmt == "jsonl":
        for group in sessions:
            yield b"".join(_encode(session_line(s)) + b"\n" for s in group)
        for page in pages:
            yield b"".join(_encode(memory_line(m, v, d, model_id, sv)) + b"\n"
                           for m, v, d, sv in page)
        for lines in edges:
            yield b"".join(_encode({"record": "edge", **e}) + b"\n" for e in lines)
    elif fmt == "csv":
        yield from _csv(pages, model_id, with_vectors)
    else:
        key, item = ("memories", mem0_item) if fmt == "mem0" else ("messages", zep_message)
        yield b'{"' + key.encode() + b'": ['
        first = True
        for page in pages:
            if not page:
                continue
            chunk = b",\n".join(_encode(item(m)) for m, _, _, _ in page)
            yield (b"\n" if first else b",\n") + chunk
            first = False
        yield b"\n]}\n"


def _csv(pages: Iterable[Page], model_id: str, with_vectors: bool) -> Iterator[bytes]:
    buf = io.StringIO()
    out = csv_writer(buf, lineterminator="\n")
    out.writerow([*CSV_COLUMNS, *(("vector", "vector_model") if with_vectors else ())])
    yield buf.getvalue().encode()
    buf.seek(0)
    buf.truncate()
    for page in pages:
        for m, v, decayed, _ in page:
            row = [m.id, m.agent_id, m.content, m.memory_type, repr(m.importance),
                   _encode(m.tags).decode(), _encode(m.metadata).decode(), m.session_id or "",
                   m.created_at, m.updated_at, m.last_accessed_at, m.access_count,
                   "" if m.ttl_seconds is None else m.ttl_seconds,
                   "" if m.expires_at is None else m.expires_at,
                   "" if decayed is None else decayed]
            if with_vectors:
                row += [encode_vector(v), model_id] if v is not None else ["", ""]
            out.writerow(row)
        yield buf.getvalue().encode("utf-8", "surrogatepass")
        buf.seek(0)
        buf.truncate()
