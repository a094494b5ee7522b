"""An imported record made a memory (or a session): the contract's input rules, with what an
import may also carry (its id, times, access statistics and vector), and the export line
that carries all of it back out."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np

from app import validate
from app.errors import ValidationError
from app.models import Memory, Session
from app.service.formats import derived_id

EVENT_TIME_KEY = "_dakera_event_time"
MAX_IDLE_TIMEOUT = 2_592_000


@dataclass(slots=True)
class Imported:
    """A memory ready to be written, with the vector it came with when that can be used
    as it is (same model, same dimension), and when its importance last decayed: as the
    export says, else the import (its importance is the one it has now: it decays from
    here, not for all the time since it was created)."""

    memory: Memory
    vector: np.ndarray | None
    decayed_at: int
    sentences: np.ndarray | None = None  # its sentences' vectors, when the export had them


def _int(value: Any, field: str, *, low: int = 0, high: int = validate.MAX_EVENT_TIME
         ) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise ValidationError(f"'{field}' must be an integer from {low} to {high - 1}")
    return value


def decode_vector(value: Any, dimension: int) -> np.ndarray:
    """A vector as exported (base64 of little-endian float32) or as a list of numbers."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("'vector' is not base64") from None
        if len(raw) != 4 * dimension:
            raise ValidationError(f"'vector' has {len(raw) // 4} dimensions, not {dimension}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                       for x in value):
        if len(value) != dimension:
            raise ValidationError(f"'vector' has {len(value)} dimensions, not {dimension}")
        vec = np.asarray(value, dtype=np.float32)
        if not np.all(np.isfinite(vec)):
            raise ValidationError("'vector' holds a value that is not a finite number")
        return vec
    raise ValidationError("'vector' must be base64 text or a list of numbers")


def encode_vector(blob: bytes) -> str:
    return base64.b64encode(blob).decode("ascii")


def to_memory(data: dict[str, Any], *, agent_id: str, line: int, now: int,
              max_content_bytes: int, model_id: str, dimension: int) -> Imported:
    """The memory an import record makes; ValidationError naming the field otherwise.
    A record without an id gets one derived from its line and content, so importing the
    same file again finds it instead of adding it twice."""
    content = validate.content(data.get("content"), max_content_bytes)
    if not isinstance(data.get("metadata") or {}, dict):
        raise ValidationError("'metadata' must be an object")
    meta = dict(data.get("metadata") or {})
    kept_event_time = meta.pop(EVENT_TIME_KEY, None)
    meta = validate.metadata(meta) or {}
    event_time = validate.event_time(data.get("event_time", kept_event_time))
    if event_time is not None:
        meta[EVENT_TIME_KEY] = event_time
    created = _int(data.get("created_at"), "created_at")
    raw_id = data.get("id")
    memory_id = (validate.memory_id(str(raw_id)) if raw_id not in (None, "")
                 else derived_id("imp_", line, content, data.get("created_at", "")))
    created = now if created is None else created
    updated = _int(data.get("updated_at"), "updated_at") or created
    ttl = validate.ttl_seconds(data.get("ttl_seconds"))
    expires = _int(data.get("expires_at"), "expires_at")
    if expires is None and ttl is not None:
        expires = created + ttl
    if expires is not None and expires <= now:
        raise ValidationError(f"it expired at {expires} (expires_at); not imported")
    importance = validate.importance(data.get("importance"))
    memory = Memory(
        id=memory_id, agent_id=agent_id, content=content,
        memory_type=validate.memory_type(data.get("memory_type")) or "episodic",
        importance=0.5 if importance is None else importance,
        tags=validate.tags(data.get("tags")) or [], metadata=meta,
        session_id=validate.session_id(data.get("session_id")),
        created_at=created, updated_at=max(updated, created),
        last_accessed_at=_int(data.get("last_accessed_at"), "last_accessed_at") or created,
        access_count=_int(data.get("access_count"), "access_count", high=2**31) or 0,
        ttl_seconds=ttl, expires_at=expires, event_time=event_time)
    vector = sentences = None
    if data.get("vector") is not None and data.get("vector_model") == model_id:
        vector = decode_vector(data["vector"], dimension)
        sentences = decode_sentences(data.get("sentence_vectors"), dimension)
    decayed = _int(data.get("decayed_at"), "decayed_at")
    return Imported(memory, vector, now if decayed is None else min(decayed, now), sentences)


def decode_sentences(value: Any, dimension: int) -> np.ndarray | None:
    """A memory's sentence vectors as exported (base64 of n x dimension little-endian
    float32), or None when absent or unusable (they are made again)."""
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    if not raw or len(raw) % (4 * dimension):
        return None
    vectors = np.frombuffer(raw, dtype="<f4").reshape(-1, dimension).astype(np.float32)
    return vectors if np.isfinite(vectors).all() else None


def to_session(data: dict[str, Any], *, agent_id: str, now: int) -> Session:
    """A session line of a dakera export."""
    sid = validate.session_id(data.get("id"), "id")
    if sid is None:
        raise ValidationError("a session line needs its 'id'")
    started = _int(data.get("started_at"), "started_at") or now
    timeout = _int(data.get("idle_timeout_secs"), "idle_timeout_secs",
                   high=MAX_IDLE_TIMEOUT + 1)
    reason = data.get("ended_reason")
    if reason not in (None, "client", "idle"):
        raise ValidationError("'ended_reason' must be client or idle")
    summary = data.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise ValidationError("'summary' must be a string")
    return Session(
        id=sid, agent_id=agent_id, started_at=started,
        last_activity_at=_int(data.get("last_activity_at"), "last_activity_at") or started,
        ended_at=_int(data.get("ended_at"), "ended_at"), ended_reason=reason,
        idle_timeout_secs=timeout, metadata=validate.metadata(data.get("metadata")),
        summary=summary)


def memory_line(m: Memory, vector: bytes | None, decayed_at: int | None,
                model_id: str, sentences: bytes | None = None) -> dict[str, Any]:
    """A memory as a dakera export line: everything needed to bring it back as it was
    (importance unrounded, when it last decayed; the vector as base64 float32 with the
    model that made it)."""
    out: dict[str, Any] = {
        "id": m.id, "agent_id": m.agent_id, "content": m.content,
        "memory_type": m.memory_type, "importance": m.importance, "tags": m.tags,
        "metadata": m.metadata, "session_id": m.session_id, "created_at": m.created_at,
        "updated_at": m.updated_at, "last_accessed_at": m.last_accessed_at,
        "access_count": m.access_count, "ttl_seconds": m.ttl_seconds,
        "expires_at": m.expires_at}
    if decayed_at is not None:
        out["decayed_at"] = decayed_at
    if vector is not None:
        out["vector"] = encode_vector(vector)
        out["vector_model"] = model_id
        if sentences is not None:  # the best-sentence lever's, as stored (n x dimension)
            out["sentence_vectors"] = encode_vector(sentences)
    return out


def session_line(s: Session) -> dict[str, Any]:
    return {"record": "session", "id": s.id, "agent_id": s.agent_id,
            "started_at": s.started_at, "last_activity_at": s.last_activity_at,
            "ended_at": s.ended_at, "ended_reason": s.ended_reason,
            "idle_timeout_secs": s.idle_timeout_secs, "metadata": s.metadata,
            "summary": s.summary}
