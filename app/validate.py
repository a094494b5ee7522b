"""Input rules of the Dakera contract, shared by every adapter. Each raises ValidationError
(400) with a message that names the field."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from app.errors import ValidationError
from app.models import MEMORY_TYPES

AGENT_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-.]*$")
SESSION_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-.:]*$")
MEMORY_ID = re.compile(r"^[^\s/?#]{1,256}$")
DERIVED_ID = re.compile(r"^mem_s[0-9a-f]{24}$")
MAX_AGENT_ID_BYTES = 241
MAX_METADATA_FIELDS = 100
MAX_TAGS = 100
MAX_TAG_CHARS = 256
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600
MAX_EVENT_TIME = 10_000_000_000  # year 2286
MAX_TOP_K = 1000
MAX_BATCH = 1000
MAX_BATCH_RECALL = 10_000
RESERVED_TAG = "dakera-curated"
ALLOWED_RESERVED_METADATA = {"_dakera_content_date", "_dakera_lang"}


def agent_id(value: Any, field: str = "agent_id") -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"'{field}' is required and must be a non-empty string")
    if len(value.encode()) > MAX_AGENT_ID_BYTES:
        raise ValidationError(f"'{field}' is longer than {MAX_AGENT_ID_BYTES} bytes")
    if not AGENT_ID.match(value):
        raise ValidationError(
            f"'{field}' must match ^[a-zA-Z0-9][a-zA-Z0-9_\\-.]*$ (got {value[:60]!r})")
    return value


def session_id(value: Any, field: str = "session_id") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError(f"'{field}' must be a non-empty string")
    if len(value.encode()) > MAX_AGENT_ID_BYTES or not SESSION_ID.match(value):
        raise ValidationError(f"'{field}' must match ^[a-zA-Z0-9][a-zA-Z0-9_\\-.:]*$ "
                              f"and be at most {MAX_AGENT_ID_BYTES} bytes")
    return value


def memory_id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not MEMORY_ID.match(value):
        raise ValidationError(f"'{field}' must be 1-256 characters without spaces, '/', '?' "
                              "or '#'")
    if DERIVED_ID.match(value):
        raise ValidationError(f"'{field}' {value!r} is reserved for derived memories "
                              "(mem_s + 24 hex)")
    return value


def content(value: Any, max_bytes: int, field: str = "content") -> str:
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' is required and must be a string")
    if not value.strip():
        raise ValidationError(f"'{field}' must not be empty")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ValidationError(
            f"'{field}' is {size} bytes; the limit is {max_bytes} UTF-8 bytes",
            details="DAKERA_MAX_MEMORY_CONTENT_BYTES")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValidationError(f"'{field}' is not valid UTF-8 (lone surrogate)")
    return value


def memory_type(value: Any, field: str = "memory_type") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in MEMORY_TYPES:
        raise ValidationError(f"'{field}' must be one of {', '.join(MEMORY_TYPES)}")
    return value.lower()


def importance(value: Any, field: str = "importance") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValidationError(f"'{field}' must be a number between 0 and 1")
    if not 0.0 <= float(value) <= 1.0:
        raise ValidationError(f"'{field}' must be between 0 and 1 (got {value})")
    return float(value)


def tags(value: Any, field: str = "tags", *, storing: bool = True) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValidationError(f"'{field}' must be a list of strings")
    if len(value) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in value):
        raise ValidationError(f"'{field}': at most {MAX_TAGS} tags of {MAX_TAG_CHARS} chars")
    if storing and RESERVED_TAG in value:
        raise ValidationError(f"'{field}': the tag '{RESERVED_TAG}' is reserved")
    return list(dict.fromkeys(value))


def metadata(value: Any, field: str = "metadata", max_bytes: int | None = None
             ) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(f"'{field}' must be an object")
    if max_bytes is not None:
        size = len(msgspec.json.encode(value))
        if size > max_bytes:
            raise ValidationError(f"'{field}' is {size} bytes of JSON; at most {max_bytes} "
                                  "are allowed (DAKERA_MAX_METADATA_BYTES)")
    if len(value) > MAX_METADATA_FIELDS:
        raise ValidationError(f"'{field}' has {len(value)} fields; at most "
                              f"{MAX_METADATA_FIELDS} are allowed")
    for key in value:
        if key.startswith("_dakera_") and key not in ALLOWED_RESERVED_METADATA:
            raise ValidationError(f"'{field}' key {key!r} is reserved (keys starting _dakera_)")
    return dict(value)


def ttl_seconds(value: Any, field: str = "ttl_seconds") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"'{field}' must be an integer number of seconds")
    if not 0 < value <= MAX_TTL_SECONDS:
        raise ValidationError(f"'{field}' must be between 1 and {MAX_TTL_SECONDS} (100 years)")
    return value


def unix_seconds(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_EVENT_TIME:
        raise ValidationError(f"'{field}' must be unix seconds between 1970 and 2286")
    return value


def event_time(value: Any, field: str = "event_time") -> int | None:
    """Unix seconds (int or float) or an RFC-3339 string, as integer seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        seconds = iso_timestamp(value, field)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = int(value)
    else:
        raise ValidationError(f"'{field}' must be unix seconds or an RFC-3339 timestamp")
    if not 0 <= seconds < MAX_EVENT_TIME:
        raise ValidationError(f"'{field}' is out of range (1970 to 2286)")
    return seconds


def iso_timestamp(value: Any, field: str) -> int:
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' must be an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"'{field}' is not an ISO-8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def top_k(value: Any, field: str = "top_k") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise ValidationError(f"'{field}' must be an integer between 1 and {MAX_TOP_K}")
    return value


def query(value: Any, field: str = "query") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"'{field}' is required and must be a non-empty string")
    if len(value.encode("utf-8", "surrogatepass")) > 100_000:
        raise ValidationError(f"'{field}' is longer than 100000 bytes")
    return value


def choice(value: Any, allowed: tuple[str, ...], field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValidationError(f"'{field}' must be one of {', '.join(allowed)}")
    return value.lower()


def unit_float(value: Any, field: str) -> float | None:
    return importance(value, field)


def limit(value: Any, maximum: int, field: str = "limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(f"'{field}' must be an integer between 1 and {maximum}")
    return value


def offset(value: Any, field: str = "offset") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"'{field}' must be a non-negative integer")
    return value


def preview_chars(value: Any, field: str = "content_preview_chars") -> int | None:
    if value is None:
        return None
    return limit(value, 10_000, field)
