"""Settings: one declarative table of (name, env vars, default, help), built once and passed down.

`Settings.from_env(**overrides)` reads the environment; CLI flags arrive as overrides.
`dakera settings` prints this table, and a test checks that the README documents every row.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs


def _default_data_dir() -> str:
    return platformdirs.user_data_dir("dakera", appauthor=False)


def _default_models_dir() -> str:
    bundled = getattr(sys, "_MEIPASS", None)  # set inside the frozen binary
    if bundled:
        return str(Path(bundled) / "models")
    return str(Path(__file__).resolve().parent.parent / "models")


def _bool(value: str) -> bool:
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _one_of(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.strip().lower() not in allowed:
            raise ValueError(f"not one of {', '.join(allowed)}")
        return value.strip().lower()
    return parse


@dataclass(frozen=True)
class Setting:
    name: str
    env: tuple[str, ...]
    default: Any
    help: str
    parse: Callable[[str], Any] = str


SETTINGS: tuple[Setting, ...] = (
    Setting("host", ("DAKERA_HOST",), "127.0.0.1",
            "Address to bind. Anything but loopback requires an API key."),
    Setting("port", ("DAKERA_PORT",), 7700, "TCP port to listen on.", int),
    Setting("data_dir", ("DAKERA_DATA_DIR",), _default_data_dir,
            "Directory holding the SQLite database and the index cache."),
    Setting("api_key", ("DAKERA_API_KEY", "DAKERA_ROOT_API_KEY"), None,
            "Bearer key every request but the health probes must carry. Unset: loopback only."),
    Setting("log_level", ("DAKERA_LOG_LEVEL",), "info", "debug, info, warning or error."),
    Setting("embedding_model", ("DAKERA_EMBEDDING_MODEL",), "all-minilm-l6-v2",
            "Embedding model preset (all-minilm-l6-v2; 'hash' is a deterministic test embedder)."),
    Setting("models_dir", ("DAKERA_MODELS_DIR",), _default_models_dir,
            "Directory holding the model files written by scripts/fetch_models.py."),
    Setting("embed_threads", ("DAKERA_EMBED_THREADS",), 0,
            "onnxruntime intra-op threads; 0 uses every core.", int),
    Setting("max_content_bytes", ("DAKERA_MAX_MEMORY_CONTENT_BYTES",), 100_000,
            "Largest memory content in UTF-8 bytes.", int),
    Setting("max_body_size", ("DAKERA_MAX_BODY_SIZE",), 16 * 1024 * 1024,
            "Largest request body in bytes.", int),
    Setting("recall_candidates", ("DAKERA_RECALL_CANDIDATES",), 100,
            "Candidates taken from each of the vector and BM25 channels before fusion.", int),
    Setting("rrf_k", ("DAKERA_RRF_K",), 60, "Reciprocal Rank Fusion constant k.", int),
    Setting("vector_weight", ("DAKERA_SCORE_W_VEC",), 0.5,
            "Weight of vector similarity in hybrid fusion; BM25 gets the rest.", float),
    Setting("recall_context_weight", ("DAKERA_RECALL_CONTEXT_WEIGHT",), 0.5,
            "Share of a memory's BM25 relevance passed to the next memory of its session "
            "(squared for the one after); 0 turns conversation context off.", float),
    Setting("speaker_boost", ("DAKERA_SCORE_W_SPEAKER",), 0.3,
            "Boost (factor 1 + w) for a memory whose author the query names: a memory "
            "written 'Name: text' and a query naming Name.", float),
    Setting("question_penalty", ("DAKERA_SCORE_W_QUESTION",), 0.2,
            "Penalty (factor 1 - w) for a memory that ends with a question mark.", float),
    Setting("recall_phrases", ("DAKERA_RECALL_PHRASES",), False,
            "BM25 also matches adjacent query words as phrases (off: on LoCoMo it moved "
            "results at 10 up and at 5 down by a few questions).", _bool),
    Setting("neighborhood_mode", ("DAKERA_NEIGHBORHOOD_MODE",), "inline",
            "Where recall puts session neighbours of its results by default: inline (after "
            "the ranked results), separate (context_memories) or off.",
            _one_of("inline", "separate", "off")),
    Setting("importance_weight", ("DAKERA_SCORE_W_IMP",), 0.5,
            "How much importance moves the final score: factor 1 + w * (importance - 0.5).",
            float),
    Setting("recency_weight", ("DAKERA_SCORE_W_REC",), 0.2,
            "How much recent use moves the final score: factor 1 + w * (r - 0.5), r halving "
            "with each DAKERA_SCORE_RECENCY_HALF_LIFE_HOURS since a memory was stored or last "
            "recalled.", float),
    Setting("recency_half_life_hours", ("DAKERA_SCORE_RECENCY_HALF_LIFE_HOURS",), 336.0,
            "Half-life of the recency factor in hours (14 days, as wake-up uses).", float),
    Setting("hnsw_ef", ("DAKERA_HNSW_EF",), 128, "hnswlib ef at query time.", int),
    Setting("exact_search_limit", ("DAKERA_EXACT_SEARCH_LIMIT",), 5000,
            "A filtered recall matching at most this many memories is scored exactly.", int),
    Setting("index_save_interval", ("DAKERA_INDEX_SAVE_INTERVAL_SECS",), 300,
            "Seconds between saves of changed vector indexes (they are also saved on shutdown).",
            int),
    Setting("session_idle_timeout", ("DAKERA_SESSION_IDLE_TIMEOUT_SECS",), 14_400,
            "Seconds of inactivity after which a session ends (ended_reason idle); 0 = never. "
            "A session may set its own at start.", int),
    Setting("decay_strategy", ("DAKERA_DECAY_STRATEGY",), "exponential",
            "How importance fades: exponential, linear or step.", str),
    Setting("decay_half_life_hours", ("DAKERA_DECAY_HALF_LIFE_HOURS",), 168.0,
            "Hours for an episodic memory's importance to halve (types decay at their own "
            "speed: working 3x, episodic 1x, semantic 0.5x, procedural 0.3x).", float),
    Setting("decay_interval", ("DAKERA_DECAY_INTERVAL_SECS",), 3600,
            "Seconds between background decay passes (0 turns decay off).", int),
    Setting("decay_min_importance", ("DAKERA_DECAY_MIN_IMPORTANCE",), 0.01,
            "The floor: a memory whose importance decays below it is deleted (or kept).",
            float),
    Setting("decay_delete_below_floor", ("DAKERA_DECAY_DELETE_BELOW_FLOOR",), True,
            "Delete memories that decay below the floor (false keeps them).", _bool),
    Setting("dedup_on_store", ("DAKERA_DEDUP_ON_STORE",), True,
            "Merge a stored memory into an existing near-identical one of the same agent and "
            "type (default for agents without their own memory policy).", _bool),
    Setting("dedup_threshold", ("DAKERA_DEDUP_THRESHOLD",), 0.95,
            "Cosine similarity at or above which two memories are duplicates.", float),
    Setting("dedup_memory_types", ("DAKERA_DEDUP_MEMORY_TYPES",), "semantic,procedural",
            "Comma-separated memory types deduplicated on store (episodic memories are events "
            "and are kept by default)."),
    Setting("dedup_retention_hours", ("DAKERA_DEDUP_RETENTION_HOURS",), 720,
            "How long a merged duplicate stays restorable.", int),
    Setting("sqlite_synchronous", ("DAKERA_SQLITE_SYNCHRONOUS",), "full",
            "SQLite synchronous mode: full (survives power loss) or normal (survives crashes)."),
)


@dataclass(frozen=True)
class Settings:
    """Field order and names follow SETTINGS; defaults live only in that table."""

    host: str
    port: int
    data_dir: str
    api_key: str | None
    log_level: str
    embedding_model: str
    models_dir: str
    embed_threads: int
    max_content_bytes: int
    max_body_size: int
    recall_candidates: int
    rrf_k: int
    vector_weight: float
    recall_context_weight: float
    speaker_boost: float
    question_penalty: float
    recall_phrases: bool
    neighborhood_mode: str
    importance_weight: float
    recency_weight: float
    recency_half_life_hours: float
    hnsw_ef: int
    exact_search_limit: int
    index_save_interval: int
    session_idle_timeout: int
    decay_strategy: str
    decay_half_life_hours: float
    decay_interval: int
    decay_min_importance: float
    decay_delete_below_floor: bool
    dedup_on_store: bool
    dedup_threshold: float
    dedup_memory_types: str
    dedup_retention_hours: int
    sqlite_synchronous: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for s in SETTINGS:
            values[s.name] = s.default() if callable(s.default) else s.default
            raw = next((env[name] for name in s.env if env.get(name)), None)
            if raw is not None:
                try:
                    values[s.name] = s.parse(raw)
                except ValueError as exc:
                    raise ValueError(f"{s.env[0]}={raw!r}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "dakera.db"

    @property
    def index_dir(self) -> Path:
        return Path(self.data_dir) / "indexes"


def describe() -> list[tuple[str, str, str]]:
    """(env vars, default, help) for every setting: what `dakera settings` prints."""
    rows = []
    for s in SETTINGS:
        default = s.default() if callable(s.default) else s.default
        rows.append((" / ".join(s.env), "" if default is None else str(default), s.help))
    return rows


__all__ = ["SETTINGS", "Setting", "Settings", "_bool", "describe"]
