"""The shapes every layer shares: memories, sessions, filters, recall hits, and the results
of the service's operations."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

MEMORY_TYPES = ("episodic", "semantic", "procedural", "working")


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

    @property
    def effective_time(self) -> int:
        """When the remembered event happened: event_time if given, else ingest time."""
        return self.event_time if self.event_time is not None else self.created_at


DECAY_STRATEGIES = ("exponential", "linear", "step")


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
        return True


@dataclass(slots=True)
class RecallHit:
    memory: Memory
    score: float  # fused relevance, 0-1
    rank_score: float  # final sort key: relevance weighted by importance (and recency)
    vector_score: float | None = None  # cosine similarity
    text_score: float | None = None  # BM25, higher is better
    context_of: str | None = None  # neighbourhood context: the id of the ranked memory

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


@dataclass
class StoreResult:
    """What a store (single or batch) did: the memories in request order (a merged
    duplicate is replaced by the memory it was merged into)."""

    memories: list[Memory]
    embedding_ms: float
    session_states: dict[str, str] = field(default_factory=dict)  # session id -> state
    # position in the request -> id of the duplicate merged into memories[position]
    duplicates: dict[int, str] = field(default_factory=dict)

    @property
    def memory(self) -> Memory:
        return self.memories[0]


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


class IndexSource(Protocol):
    """Stored vectors, texts and the index log, as the store offers them and the indexes
    load and replay them (the store's `vectors`; app/index/registry.py reads it)."""

    dimension: int

    def agents(self) -> list[str]: ...
    def has(self, agent_id: str) -> bool: ...
    def count(self, agent_id: str) -> int: ...
    def of_agent(self, agent_id: str, batch: int = 10_000
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...
    def get(self, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]: ...
    def texts(self, labels: Sequence[int]) -> list[tuple[int, str, int | None]]: ...
    def texts_of_agent(self, agent_id: str, batch: int = 10_000
                       ) -> Iterator[list[tuple[int, str, int | None]]]: ...
    def log(self, agent_id: str, after_seq: int) -> list[tuple[int, int, str]]: ...
    def log_head(self, agent_id: str) -> int: ...
    def log_trimmed(self, agent_id: str) -> int: ...


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
