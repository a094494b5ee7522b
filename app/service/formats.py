"""Import files: which format a file is, and its records in dakera's own terms.

A file is a container (JSON lines, CSV, one JSON document, or an SQLite database) holding
records of a tool (dakera, Mem0, Zep, mcp-memory-service). `open_source` sniffs both from
the bytes (the declared format and the file name are hints), refuses what cannot be read at
all with one clear message, and returns a `Source` whose `records()` yields every record
with its line (or position) and either the record, mapped onto the fields of a dakera
export line, or what is wrong with it. Mapping never raises: a bad record is reported and
the import goes on.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import re
from collections.abc import Callable, Iterator
from csv import reader as csv_rows
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec

from app.errors import PayloadTooLargeError, ValidationError
from app.store import ForeignDatabaseError, McpMemoryServiceDb, is_sqlite, snapshot

FORMATS = ("jsonl", "csv", "mem0", "zep", "mcp-memory-service")
ALIASES = {"ndjson": "jsonl", "dakera": "jsonl", "mms": "mcp-memory-service",
           "mcp_memory_service": "mcp-memory-service", "sqlite": "mcp-memory-service"}
MAX_LINE_BYTES = 16 * 1024 * 1024  # a record (100 kB of content, a vector, metadata) fits
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # one JSON document is parsed whole
WRAPPERS = ("memories", "results", "messages", "items", "facts", "edges", "data")
ZEP_ROLES = {"norole", "system", "assistant", "user", "function", "tool"}
_decode = msgspec.json.decode


def normal_format(value: str | None) -> str | None:
    """A declared format by its canonical name (None: sniff it); 400 if unknown."""
    if value is None or not value.strip() or value.strip().lower() in ("auto", "json"):
        return None
    name = value.strip().lower()
    name = ALIASES.get(name, name)
    if name not in FORMATS:
        raise ValidationError(f"'format' must be one of {', '.join(FORMATS)} (or omitted to "
                              f"detect it), not {value!r}")
    return name


@dataclass(slots=True)
class Record:
    """One record of an import file: `data` in dakera's terms (kind "memory" or "session"),
    or `error` saying why it cannot be imported."""

    line: int
    data: dict[str, Any] | None = None
    error: str | None = None
    kind: str = "memory"


class Source(Protocol):
    format: str

    def count(self) -> int: ...
    def records(self) -> Iterator[Record]: ...
    def close(self) -> None: ...


# -- values -------------------------------------------------------------------------------

_FRACTION = re.compile(r"(\.\d{6})\d+")


def seconds(value: Any, field: str) -> int | None:
    """Unix seconds from what tools write: int or float seconds (milliseconds when larger
    than 1e11), ISO-8601 / RFC-3339 text (naive = UTC), or a date."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"'{field}' is not a time")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"'{field}' is not a time")
        return int(value / 1000 if value > 1e11 else value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return seconds(float(text), field)
        text = _FRACTION.sub(r"\1", text.replace("Z", "+00:00").replace("z", "+00:00"))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"'{field}' is not a time: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp())
    raise ValueError(f"'{field}' is not a time")


def iso(value: int | None) -> str | None:
    """RFC-3339 UTC text of unix seconds (what Mem0 and Zep write)."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).isoformat().replace("+00:00", "Z")


def _metadata(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = _decode(value)
    if not isinstance(value, dict):
        raise ValueError("'metadata' is not an object")
    return dict(value)


def _tag_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = _decode(text)
        else:
            return [t.strip() for t in text.split(",") if t.strip()]
    if not isinstance(value, list):
        raise ValueError("'tags' is not a list")
    return [str(t) for t in value]


def derived_id(prefix: str, *parts: Any) -> str:
    """A stable id for a record that has none, so that importing the file again finds it."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode("utf-8",
                                                                       "surrogatepass"))
    return prefix + digest.hexdigest()[:32]


# -- mapping each tool's records onto dakera's -------------------------------------------

DAKERA_FIELDS = ("id", "content", "memory_type", "importance", "tags", "metadata",
                 "session_id", "created_at", "updated_at", "last_accessed_at", "access_count",
                 "ttl_seconds", "expires_at", "event_time", "decayed_at", "vector",
                 "vector_model", "sentence_vectors")


def from_dakera(raw: dict[str, Any]) -> dict[str, Any]:
    """Our own export line (and Dakera's: `content` with any subset of the fields)."""
    out = {k: raw[k] for k in DAKERA_FIELDS if raw.get(k) is not None}
    if "content" not in out:
        for alt in ("memory", "text"):
            if isinstance(raw.get(alt), str):
                out["content"] = raw[alt]
                break
    return out


def from_mem0(raw: dict[str, Any]) -> dict[str, Any]:
    """A Mem0 memory (OSS get_all, the platform API, or Dakera's mem0 export)."""
    content = next((raw[k] for k in ("memory", "content", "text", "data")
                    if isinstance(raw.get(k), str)), None)
    meta = _metadata(raw.get("metadata"))
    tags = _tag_list(raw.get("categories")) + _tag_list(raw.get("tags"))
    if isinstance(meta.get("tags"), list):
        tags += [str(t) for t in meta.pop("tags")]
    for key in ("user_id", "agent_id", "run_id", "actor_id", "role", "app_id", "hash"):
        if raw.get(key) is not None:
            meta.setdefault(f"mem0_{key}", raw[key])
    mtype = raw.get("memory_type")
    if meta.get("memory_type") == "procedural_memory":
        mtype = "procedural"
    out: dict[str, Any] = {
        "content": content, "metadata": meta, "tags": tags,
        "memory_type": mtype or "semantic",  # Mem0 keeps extracted facts
        "created_at": seconds(raw.get("created_at"), "created_at"),
        "updated_at": seconds(raw.get("updated_at"), "updated_at"),
        "id": raw.get("id"), "importance": raw.get("importance"),
        "session_id": raw.get("session_id") or raw.get("run_id"),
    }
    if raw.get("expiration_date"):
        out["expires_at"] = seconds(raw["expiration_date"], "expiration_date")
    return {k: v for k, v in out.items() if v is not None}


def from_zep(raw: dict[str, Any], session: Any = None) -> dict[str, Any]:
    """A Zep message (v2 sessions, v3 threads, v4 message pages) or fact / edge."""
    meta = _metadata(raw.get("metadata"))
    if isinstance(raw.get("fact"), str) and not isinstance(raw.get("content"), str):
        for key in ("name", "valid_at", "invalid_at", "source_node_name", "target_node_name"):
            if raw.get(key) is not None:
                meta.setdefault(f"zep_{key}", raw[key])
        out: dict[str, Any] = {"content": raw["fact"], "memory_type": "semantic",
                               "metadata": meta}
        if raw.get("valid_at"):
            out["event_time"] = seconds(raw["valid_at"], "valid_at")
    else:
        # v2: role = the speaker's name, role_type = the kind; v3/v4: role = the kind,
        # name = the speaker's name
        if "role_type" in raw:
            kind, name = raw.get("role_type"), raw.get("role")
        elif raw.get("role") in ZEP_ROLES:
            kind, name = raw.get("role"), raw.get("name")
        else:
            kind, name = None, raw.get("role") or raw.get("name")
        if kind:
            meta.setdefault("role", kind)
        if name:
            meta.setdefault("speaker", name)
        out = {"content": raw.get("content"), "metadata": meta,
               "memory_type": raw.get("memory_type") or "episodic"}
    for key in ("tags", "importance"):
        if raw.get(key) is not None:
            out[key] = raw[key]
    out["id"] = raw.get("uuid") or raw.get("id")
    out["created_at"] = seconds(raw.get("created_at") or raw.get("reference_time"),
                                "created_at")
    sid = raw.get("session_id") or raw.get("thread_id") or raw.get("thread_uuid") or session
    if sid:
        out["session_id"] = sid
    return {k: v for k, v in out.items() if v is not None}


MMS_SEMANTIC = {"decision", "learning", "pattern", "insight", "reference", "research",
                "fact", "stakeholder", "documentation", "knowledge", "preference", "concept",
                "architecture", "policy", "rule"}
MMS_PROCEDURAL = {"procedure", "howto", "how-to", "workflow", "process", "recipe",
                  "instruction", "runbook", "ceremony"}


def from_mcp_memory_service(raw: dict[str, Any]) -> dict[str, Any]:
    """An mcp-memory-service memory: a row of its database (tags as comma text, metadata as
    JSON text) or an item of its JSON export (a tag list, a metadata object)."""
    meta = _metadata(raw.get("metadata"))
    tags = [t for t in _tag_list(raw.get("tags")) if t != "untagged"]
    source_type = raw.get("memory_type")
    mtype = "episodic"
    if isinstance(source_type, str):
        meta.setdefault("source_memory_type", source_type)
        if source_type.lower() in MMS_SEMANTIC:
            mtype = "semantic"
        elif source_type.lower() in MMS_PROCEDURAL:
            mtype = "procedural"
    for key in ("content_hash", "store"):
        if raw.get(key):
            meta.setdefault(key if key == "content_hash" else "mms_store", raw[key])
    importance = meta.get("quality_score")
    content_hash = raw.get("content_hash")
    out = {"content": raw.get("content"), "tags": tags, "metadata": meta,
           "memory_type": mtype,
           "importance": importance if isinstance(importance, (int, float)) and
           not isinstance(importance, bool) and 0 <= importance <= 1 else None,
           "id": f"mms_{content_hash}" if isinstance(content_hash, str) and content_hash
           else None,
           "created_at": seconds(raw.get("created_at"), "created_at"),
           "updated_at": seconds(raw.get("updated_at"), "updated_at")}
    return {k: v for k, v in out.items() if v is not None}


def _mapper(fmt: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return {"jsonl": from_dakera, "csv": from_dakera, "mem0": from_mem0,
            "zep": from_zep, "mcp-memory-service": from_mcp_memory_service}[fmt]


def _record(line: int, raw: Any, mapper: Callable[[dict[str, Any]], dict[str, Any]]) -> Record:
    if not isinstance(raw, dict):
        return Record(line, error="not a JSON object")
    if raw.get("record") == "session":
        return Record(line, data=raw, kind="session")
    if raw.get("record") == "edge":
        return Record(line, data=raw, kind="edge")
    try:
        return Record(line, data=mapper(raw))
    except (ValueError, TypeError, msgspec.DecodeError) as exc:  # (UnicodeDecodeError too)
        return Record(line, error=str(exc))


# -- containers ---------------------------------------------------------------------------

class JsonLines:
    """One JSON object per line; blank lines are skipped."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self._map = _mapper(fmt)

    def count(self) -> int:
        n = 0
        for _, line in _lines(self.path):
            n += line is None or bool(line.strip())
        return n

    def records(self) -> Iterator[Record]:
        for number, line in _lines(self.path):
            if line is None:
                yield Record(number, error=f"the line is longer than {MAX_LINE_BYTES} bytes")
                continue
            if not line.strip():
                continue
            try:
                raw = _decode(line)
            except msgspec.DecodeError as exc:
                yield Record(number, error=f"not valid JSON ({exc})")
                continue
            except UnicodeDecodeError:
                yield Record(number, error="not valid UTF-8")
                continue
            yield _record(number, raw, self._map)

    def close(self) -> None:
        pass


def _lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of every line; None for a line longer than MAX_LINE_BYTES
    (skipped without holding it in memory)."""
    with path.open("rb") as f:
        number = 0
        while True:
            line = f.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):
                    line = f.readline(1 << 20)
                yield number, None
                continue
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            yield number, line


class Document:
    """One JSON document (Mem0, Zep, mcp-memory-service export), parsed whole."""

    def __init__(self, doc: Any, fmt: str) -> None:
        self.format = fmt
        self._items, self._session = _items_of(doc)

    def count(self) -> int:
        return len(self._items)

    def records(self) -> Iterator[Record]:
        mapper = _mapper(self.format)
        if self.format == "zep" and self._session:
            session = self._session

            def mapper(raw: dict[str, Any]) -> dict[str, Any]:
                return from_zep(raw, session)

        for position, raw in enumerate(self._items, start=1):
            yield _record(position, raw, mapper)

    def close(self) -> None:
        self._items = []


def _items_of(doc: Any) -> tuple[list[Any], str | None]:
    """The record list of a document and the session it belongs to (Zep)."""
    if isinstance(doc, list):
        return doc, None
    if not isinstance(doc, dict):
        raise ValidationError("the JSON document is neither a list nor an object")
    if isinstance(doc.get("data"), dict):  # some APIs wrap the page in `data`
        return _items_of(doc["data"])
    session = next((doc[k] for k in ("session_id", "thread_id", "thread_uuid")
                    if isinstance(doc.get(k), str)), None)
    items: list[Any] = []
    found = False
    for key in WRAPPERS:
        if isinstance(doc.get(key), list):
            items += doc[key]
            found = True
    if not found:
        raise ValidationError("the JSON document holds no list of records (expected one of "
                              f"{', '.join(WRAPPERS)}, or a list)")
    return items, session


def _document_format(doc: Any) -> str:
    """Which tool wrote a JSON document."""
    if isinstance(doc, dict):
        if "export_metadata" in doc:
            return "mcp-memory-service"
        if any(isinstance(doc.get(k), list) for k in ("messages", "items", "facts", "edges")):
            return "zep"
    items, _ = _items_of(doc)
    first = next((i for i in items if isinstance(i, dict)), {})
    if "content_hash" in first:
        return "mcp-memory-service"
    if "uuid" in first or "role_type" in first:
        return "zep"
    return "mem0"


class Csv:
    """A header row naming the columns (`content` required), then one memory per row.
    `tags`: a JSON list or comma-separated; `metadata`: a JSON object; empty = absent."""

    NUMBERS = {"importance": float, "created_at": int, "updated_at": int,
               "last_accessed_at": int, "access_count": int, "ttl_seconds": int,
               "expires_at": int, "event_time": int, "decayed_at": int}

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = "csv"
        with self._open() as f:
            try:
                header = next(csv_rows(f))
            except StopIteration:
                raise ValidationError("the CSV file is empty") from None
            except csv.Error as exc:
                raise ValidationError(f"the CSV header cannot be read: {exc}") from None
        self.header = [h.strip() for h in header]
        if "content" not in self.header:
            alt = next((a for a in ("memory", "text") if a in self.header), None)
            if alt is None:
                raise ValidationError(
                    "the CSV has no 'content' column (its header: "
                    f"{', '.join(self.header[:20]) or 'empty'}); the first row must name the "
                    "columns, one of them content")
            self.header[self.header.index(alt)] = "content"

    def _open(self) -> io.TextIOWrapper:
        return self.path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")

    def count(self) -> int:
        with self._open() as f:
            reader = csv_rows(f)
            n = -1
            with contextlib.suppress(csv.Error):
                for _ in reader:
                    n += 1
            return max(n, 0)

    def records(self) -> Iterator[Record]:
        with self._open() as f:
            reader = csv_rows(f)
            width = len(self.header)
            first = True
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield Record(reader.line_num, error=f"not valid CSV ({exc})")
                    continue
                if first:
                    first = False
                    continue
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != width:
                    yield Record(reader.line_num, error=f"it has {len(row)} fields where the "
                                                        f"header names {width}")
                    continue
                try:
                    yield Record(reader.line_num, data=self._row(row))
                except (ValueError, msgspec.DecodeError) as exc:
                    yield Record(reader.line_num, error=str(exc))

    def _row(self, row: list[str]) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for name, cell in zip(self.header, row, strict=True):
            if cell == "" or name not in DAKERA_FIELDS:
                continue
            if name in self.NUMBERS:
                try:
                    raw[name] = self.NUMBERS[name](float(cell)) if self.NUMBERS[name] is int \
                        else float(cell)
                except ValueError:
                    raise ValueError(f"'{name}' is not a number: {cell[:40]!r}") from None
            elif name == "tags":
                raw[name] = _tag_list(cell)
            elif name == "metadata":
                raw[name] = _metadata(cell)
            else:
                raw[name] = cell
        return from_dakera(raw)

    def close(self) -> None:
        pass


class McpMemoryServiceFile:
    """An mcp-memory-service SQLite database (a copy: nothing else writes it)."""

    def __init__(self, path: Path) -> None:
        self.format = "mcp-memory-service"
        try:
            self._db = McpMemoryServiceDb(path)
        except ForeignDatabaseError as exc:
            raise ValidationError(
                f"{exc}. To bring back a dakera backup, upload it to the backups "
                "(POST /v1/admin/backups/upload, or `dakera backup restore FILE`)") from None

    def count(self) -> int:
        return self._db.count()

    def records(self) -> Iterator[Record]:
        for position, row in enumerate(self._db.rows(), start=1):
            yield _record(position, row, from_mcp_memory_service)

    def close(self) -> None:
        self._db.close()


# -- sniffing -----------------------------------------------------------------------------

def _first_line(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.readline(MAX_LINE_BYTES).removeprefix(b"\xef\xbb\xbf")


def _container(path: Path) -> str:
    """sqlite, jsonl, document or csv: how the file is laid out."""
    if is_sqlite(path):
        return "sqlite"
    with path.open("rb") as f:
        head = f.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise ValidationError("the file is empty")
    if head[:1] == b"[":
        return "document"
    if head[:1] == b"{":
        try:
            first = _decode(_first_line(path))
        except (msgspec.DecodeError, UnicodeDecodeError):
            return "document"  # a pretty-printed document spans lines
        if isinstance(first, dict) and any(isinstance(first.get(k), list) for k in WRAPPERS) \
                and "content" not in first:
            return "document"
        return "jsonl"
    if b"\x00" in head:
        raise ValidationError("the file is binary and not a format dakera imports (JSON "
                              "lines, CSV, Mem0 or Zep JSON, an mcp-memory-service database)")
    return "csv"


def open_source(path: Path, declared: str | None) -> Source:
    """The records of an import file; ValidationError (400) naming the problem when the file
    cannot be read as the declared format or as any format."""
    fmt = normal_format(declared)
    kind = _container(path)
    if kind == "sqlite":
        if fmt not in (None, "mcp-memory-service"):
            raise ValidationError(f"format={fmt} but the file is an SQLite database")
        return McpMemoryServiceFile(path)
    if kind == "jsonl":
        if fmt == "csv":
            raise ValidationError("format=csv but the file holds JSON lines")
        return JsonLines(path, fmt or "jsonl")
    if kind == "document":
        if fmt == "csv":
            raise ValidationError("format=csv but the file is a JSON document")
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise PayloadTooLargeError(
                f"the JSON document is {size} bytes; documents are read whole, up to "
                f"{MAX_DOCUMENT_BYTES}: send larger imports as JSON lines (one record per "
                "line, e.g. a dakera export)")
        try:
            doc = _decode(path.read_bytes())
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise ValidationError(f"the file is not valid JSON ({exc}); nothing was "
                                  "imported") from None
        if fmt in (None, "jsonl"):
            fmt = _document_format(doc)
        return Document(doc, fmt)
    if fmt not in (None, "csv"):
        raise ValidationError(f"format={fmt} but the file is neither JSON nor an SQLite "
                              "database" + (" (it reads as CSV)" if fmt != "jsonl" else ""))
    return Csv(path)


def consistent_copy(path: Path, folder: Path) -> Path | None:
    """A database file another program may be writing (its WAL beside it: a running
    mcp-memory-service) copied into one consistent file in `folder`, ready to upload; None
    when the file can be sent as it is."""
    if not is_sqlite(path) or not path.with_name(path.name + "-wal").exists():
        return None
    target = folder / f"{path.name}.snapshot"
    try:
        snapshot(path, target)
    except ForeignDatabaseError as exc:
        raise ValidationError(str(exc)) from None
    return target
