"""The shapes every layer shares: memories, sessions, filters, recall hits, and the results
of the service's operations."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from app import filter_dsl

MEMORY_TYPES = ("episodic", "semantic", "procedural", "working")
# Edges of the knowledge graph: related_to (similar meaning), shares_entity (the same person,
# place, id...), precedes (the next memory of a session), linked_by (an explicit link),
# supersedes (a newer statement of the same fact with other values).
EDGE_TYPES = ("related_to", "shares_entity", "precedes", "linked_by", "supersedes")
# How the memory browser orders an agent's memories: newest first, oldest first, most
# important first, most recently recalled first.
MEMORY_SORTS = ("recent", "oldest", "importance", "accessed")
PageCursor = tuple[float, int]  # (the sort column's value, rowid) of a memory on a page


@dataclass(slots=True)
class Memory:
    id: str
    agent_id: str
    content: str
    memory_type: str
    importance: float
    tags: list[str]
    metadata: dict[str, Any]
    session_id: str | None
    created_at: int
    updated_at: int
    last_accessed_at: int
    access_count: int
    ttl_seconds: int | None
    expires_at: int | None
    event_time: int | None = None
    rowid: int = 0  # internal label: SQLite rowid, also the vector index label

    def to_dict(self, preview_chars: int | None = None) -> dict[str, Any]:
        """The Dakera {Memory} object as clients read it; with `preview_chars` (listings)
        the content is cut to that many characters and its full length reported."""
        if preview_chars is not None:
            return {**self.to_dict(), "content": self.content[:preview_chars],
                    "content_len": len(self.content),
                    "content_truncated": len(self.content) > preview_chars}
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "content": self.content,
            "memory_type": self.memory_type,
            "importance": round(self.importance, 6),
            "tags": self.tags,
            "session_id": self.session_id,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_accessed_at": self.last_accessed_at,
            "access_count": self.access_count,
            "ttl_seconds": self.ttl_seconds,
            "expires_at": self.expires_at,
        }

    def filter_view(self) -> dict[str, Any]:
        """The document a filter expression sees (see `memory_where`)."""
        return {"id": self.id, "agent_id": self.agent_id, "content": self.content,
                "memory_type": self.memory_type, "importance": self.importance,
                "tags": self.tags, "session_id": self.session_id,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "last_accessed_at": self.last_accessed_at, "access_count": self.access_count,
                "expires_at": self.expires_at, "metadata": self.metadata}

    @property
    def effective_time(self) -> int:
        """When the remembered event happened: event_time if given, else ingest time."""
        return self.event_time if self.event_time is not None else self.created_at


DECAY_STRATEGIES = ("exponential", "linear", "step")


@dataclass(frozen=True, slots=True)
class Edge:
    """A directed edge between two memories of one agent, by their rowids."""

    src: int
    dst: int
    edge_type: str
    weight: float  # 0-1: cosine for related_to and supersedes, 1.0 for explicit links
    created_at: int
    label: str | None = None

    def other(self, rowid: int) -> int:
        return self.dst if self.src == rowid else self.src


@dataclass(frozen=True, slots=True)
class Mention:
    """An entity as it occurs in one memory (what the extractor found)."""

    entity_type: str
    value: str
    normalized: str
    score: float
    start: int
    end: int


@dataclass(slots=True)
class DecayPolicy:
    """How importance fades. Each pass, a memory loses importance for the time since its
    last decay or reinforcement, at `half_life_hours` scaled by its speed: its type's speed,
    x never_accessed_multiplier if never recalled, / (1 + usage_shield * ln(1 + accesses))
    once used, x flag_multiplier once after a `flag` feedback."""

    strategy: str = "exponential"
    half_life_hours: float = 168.0
    min_importance: float = 0.01  # the floor: below it a memory is deleted (or kept)
    delete_below_floor: bool = True
    type_speeds: dict[str, float] = field(default_factory=lambda: {
        "working": 3.0, "episodic": 1.0, "semantic": 0.5, "procedural": 0.3})
    never_accessed_multiplier: float = 1.5
    usage_shield: float = 0.5
    flag_multiplier: float = 2.0
    access_boost: float = 0.05  # relative importance gain of one recall hit


@dataclass(slots=True)
class Session:
    id: str
    agent_id: str
    started_at: int
    last_activity_at: int
    ended_at: int | None = None
    ended_reason: str | None = None  # "client" or "idle"
    idle_timeout_secs: int | None = None  # None: the server's default applies
    metadata: dict[str, Any] | None = None
    summary: str | None = None
    memory_count: int = 0

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.id,
            "agent_id": self.agent_id,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "metadata": self.metadata,
            "summary": self.summary,
            "memory_count": self.memory_count,
            "last_activity_at": self.last_activity_at,
            "ended_reason": self.ended_reason,
            "idle_since": self.last_activity_at if self.ended_reason == "idle" else None,
            "idle_timeout_secs": self.idle_timeout_secs,
        }


@dataclass(slots=True)
class NewMemory:
    """A validated memory ready to be written (id and times assigned by the service)."""

    agent_id: str
    content: str
    memory_type: str = "episodic"
    importance: float = 0.5
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    ttl_seconds: int | None = None
    expires_at: int | None = None
    event_time: int | None = None
    id: str | None = None


# The fields a filter expression names on memories; any other name is a metadata key.
MEMORY_FILTER_FIELDS = ("id", "agent_id", "content", "memory_type", "importance", "tags",
                        "session_id", "created_at", "updated_at", "last_accessed_at",
                        "access_count", "expires_at")


def memory_where(node: filter_dsl.Node | None) -> filter_dsl.Node | None:
    """A filter expression (app/filter_dsl.py) over memories: its fields mapped onto
    `Memory.filter_view()` (a memory field, "metadata.<key>", or a bare metadata key)."""
    def field(name: str) -> str:
        head = name.split(".", 1)[0]
        return name if head in MEMORY_FILTER_FIELDS or head == "metadata" else (
            "metadata." + name)
    return None if node is None else filter_dsl.rename(node, field)


@dataclass(slots=True)
class MemoryFilter:
    """Which of an agent's memories an operation applies to: every given predicate must
    hold. One type for recall, listings, batch recall and forget; the store turns it into
    SQL (app/store/filters.py) and `matches` applies it to a loaded memory."""

    memory_type: str | None = None
    session_id: str | None = None
    tags_any: list[str] | None = None  # carries at least one of these tags
    tags_all: list[str] | None = None  # carries every one of these tags
    min_importance: float | None = None
    max_importance: float | None = None
    created_after: int | None = None  # ingest time, inclusive
    created_before: int | None = None
    since: int | None = None  # event time (ingest time when none), inclusive
    until: int | None = None
    memory_ids: list[str] | None = None
    where: filter_dsl.Node | None = None  # an expression over filter_view(): memory_where

    def any(self) -> bool:
        """Whether anything is asked (an explicit empty `tags_all` list counts)."""
        return any(getattr(self, f) is not None for f in self.__slots__)

    def matches(self, m: Memory) -> bool:
        """The predicates applied to a loaded memory (the same as the store's SQL)."""
        if self.memory_type is not None and m.memory_type != self.memory_type:
            return False
        if self.session_id is not None and m.session_id != self.session_id:
            return False
        if self.tags_any and not set(self.tags_any).intersection(m.tags):
            return False
        if self.tags_all and not set(self.tags_all).issubset(m.tags):
            return False
        if self.memory_ids is not None and m.id not in self.memory_ids:
            return False
        for value, low, high in ((m.importance, self.min_importance, self.max_importance),
                                 (m.created_at, self.created_after, self.created_before),
                                 (m.effective_time, self.since, self.until)):
            if (low is not None and value < low) or (high is not None and value > high):
                return False
        return filter_dsl.matches(self.where, m.filter_view())


@dataclass(slots=True)
class RecallHit:
    memory: Memory
    score: float  # fused relevance, 0-1
    rank_score: float  # final sort key: relevance weighted by importance (and recency)
    vector_score: float | None = None  # cosine similarity
    text_score: float | None = None  # BM25, higher is better
    context_of: str | None = None  # neighbourhood context: the id of the ranked memory
    # what weighted the fused score into rank_score (importance, recency, speaker,
    # question: factors around 1) and the text relevance inherited from the session
    # (context); shown by the memory browser, not sent by the API
    factors: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"memory": self.memory.to_dict(), "score": round(self.score, 6)}
        if self.context_of is not None:  # not ranked: no rank_score, its score is raw
            out["context_of"] = self.context_of
        else:
            out["weighted_score"] = out["rank_score"] = round(self.rank_score, 6)
        if self.vector_score is not None:
            out["vector_score"] = round(self.vector_score, 6)
        if self.text_score is not None:
            out["text_score"] = round(self.text_score, 6)
        return out


@dataclass(slots=True)
class Associated:
    """A graph neighbour of recall hits (include_associated): reached in `depth` edges from
    the hit `via`, the last edge of type `edge_type`; score = the hit's score times the
    weights of the edges on the way."""

    memory: Memory
    score: float
    depth: int
    edge_type: str
    via: str

    def to_dict(self) -> dict[str, Any]:
        return {"memory": self.memory.to_dict(), "score": round(self.score, 6),
                "depth": self.depth, "edge_type": self.edge_type, "associated_with": self.via,
                "retrieval": "associated"}


@dataclass
class StoreResult:
    """What a store (single or batch) did: the memories in request order (a merged
    duplicate is replaced by the memory it was merged into)."""

    memories: list[Memory]
    embedding_ms: float
    session_states: dict[str, str] = field(default_factory=dict)  # session id -> state
    # position in the request -> id of the duplicate merged into memories[position]
    duplicates: dict[int, str] = field(default_factory=dict)
    tokens: list[int] = field(default_factory=list)  # per memory: tokens of its content
    max_tokens: int = 0  # the model's window: content beyond it is not embedded

    @property
    def memory(self) -> Memory:
        return self.memories[0]

    def truncation(self, position: int) -> dict[str, Any] | None:
        """The contract's truncation report of one memory, when its content was longer
        than the model's window (None otherwise)."""
        if position >= len(self.tokens) or self.tokens[position] <= self.max_tokens:
            return None
        return {"truncated": True, "content_tokens": self.tokens[position],
                "embedded_tokens": self.max_tokens, "max_tokens": self.max_tokens,
                "tokens_estimated": False, "windows": 1}


@dataclass
class RecallResult:
    hits: list[RecallHit]
    embed_ms: float = 0.0
    search_ms: float = 0.0
    candidates: int = 0
    context: list[RecallHit] = field(default_factory=list)  # session neighbours of the hits
    context_mode: str = "off"  # where they go: inline, separate or off
    # seconds spent in each stage: embed, vector, bm25, fusion, load, neighbourhood (metrics)
    stages: dict[str, float] = field(default_factory=dict)
    associated: list[Associated] | None = None  # graph neighbours, when asked for


class VectorSource(Protocol):
    """Stored vectors and the index log, as the store offers them and the vector indexes
    load and replay them (the store's `vectors` and `namespace_vectors`; app/index/registry.py
    reads it). Keys are agent ids or namespace names."""

    def layout(self, agent_id: str) -> tuple[int, str] | None:
        """(dimension, hnswlib space) of a key's vectors (an agent's, or a namespace's);
        None when it has none."""
        ...
    def agents(self) -> list[str]: ...
    def has(self, agent_id: str) -> bool: ...
    def count(self, agent_id: str) -> int: ...
    def of_agent(self, agent_id: str, batch: int = 10_000
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...
    def get(self, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]: ...
    def log(self, agent_id: str, after_seq: int) -> list[tuple[int, int, str]]: ...
    def log_head(self, agent_id: str) -> int: ...
    def log_trimmed(self, agent_id: str) -> int: ...


class IndexSource(VectorSource, Protocol):
    """The agents' source: their memories' texts too, for the per-agent BM25 indexes."""

    def texts(self, labels: Sequence[int]) -> list[tuple[int, str, int | None]]: ...
    def texts_of_agent(self, agent_id: str, batch: int = 10_000
                       ) -> Iterator[list[tuple[int, str, int | None]]]: ...


class VectorSearch(Protocol):
    """Nearest-neighbour search over one key's vectors: an in-memory index (app/index) or
    the database itself (PostgreSQL's pgvector). Scores are higher-is-better (cosine)."""

    def __len__(self) -> int: ...
    def search(self, vector: np.ndarray, k: int,
               accept: Callable[[int], bool] | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def search_many(self, vectors: np.ndarray, k: int, *, exhaustive: bool = True,
                    ef: int | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def vectors(self, labels: list[int]) -> tuple[list[int], np.ndarray]: ...


class TextSearch(Protocol):
    """BM25 over one agent's memories (app/index/text.py), by stems (app/text.tokens)."""

    def search(self, terms: Sequence[str], k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def holding_all(self, terms: Sequence[str]) -> np.ndarray: ...


class Indexes(Protocol):
    """Where recall and the service find candidates: each key's vector search and each
    agent's text search, kept in step with the store after each commit (`added`,
    `deleted`). With SQLite they are caches in this process (app/index/registry.py); with
    PostgreSQL the database answers itself and the upkeep calls do nothing
    (app/store/postgres/search.py), so every server sees every commit at once."""

    builds: dict[str, int]

    def find(self, agent_id: str) -> VectorSearch | None: ...
    def find_text(self, agent_id: str) -> TextSearch | None: ...
    def added(self, agent_id: str, labels: list[int], vectors: np.ndarray,
              texts: Sequence[tuple[str, int | None]], seq: int) -> None: ...
    def deleted(self, agent_id: str, labels: list[int], seq: int) -> None: ...
    def drop(self, agent_id: str) -> None: ...
    def compact(self) -> int: ...
    def save_dirty(self, deadline: float | None = None) -> list[tuple[str, int]]: ...
    def stats(self) -> dict[str, int]: ...
    def rebuilding(self) -> list[str]: ...
    def open_all(self, *, background: bool = False) -> None: ...
    def close(self, timeout: float | None = None) -> None: ...


# -- namespaces of raw vectors and text (the contract's §2.1) ---------------------------

DISTANCES = ("cosine", "dot_product", "euclidean")


@dataclass(slots=True)
class Namespace:
    """A data namespace: vectors of one dimension compared by one distance, and text."""

    name: str
    dimension: int | None  # None until its first vector
    distance: str = "cosine"
    index_type: str = "hnsw"
    metadata: dict[str, Any] | None = None
    model: str | None = None  # the server model that embedded its vectors, if it did
    created_at: int = 0
    updated_at: int = 0


@dataclass(slots=True)
class Item:
    """One record of a namespace: a vector and/or a full-text document, with metadata."""

    id: str
    vector: Any = None  # float32 numpy array, or None (a full-text document only)
    metadata: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # None: not in the full-text index
    created_at: int = 0
    updated_at: int = 0
    expires_at: int | None = None
    rowid: int = 0  # internal label: SQLite rowid, also the vector index label


@dataclass(slots=True)
class ApiKey:
    """An API key as stored: never the key itself, only its SHA-256."""

    key_id: str
    key_hash: str
    name: str
    scope: str
    namespaces: list[str] | None  # None = every namespace; [] = none
    created_at: int
    expires_at: int | None = None
    active: bool = True
    created_by: str | None = None
    rotated_to: str | None = None
    last_used_at: int | None = None
    total_requests: int = 0
    failed_requests: int = 0
