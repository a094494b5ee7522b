"""Settings: one declarative table, built once and passed down.

Each field of `Settings` is a setting: its type and constraints (msgspec), its default, its
environment variables and its help text are declared together, and everything else is
derived from that declaration: parsing and validation (`Settings.from_env`), the
`dakera settings` listing (`describe`), and the README table a test checks. A bad value
refuses to start with one line that names the variable and what it accepts.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import platformdirs

from app.models import MEMORY_TYPES


class SettingError(ValueError):
    """A setting's value is not acceptable; the message names the variable."""


def _default_data_dir() -> str:
    return platformdirs.user_data_dir("dakera", appauthor=False)


def _default_models_dir() -> str:
    bundled = getattr(sys, "_MEIPASS", None)  # set inside the frozen binary
    if bundled:
        return str(Path(bundled) / "models")
    return str(Path(__file__).resolve().parent.parent / "models")


def _model_choices() -> str:
    from app.embed.presets import PRESETS

    return (f"one of {', '.join(sorted(PRESETS))}, or the name of a model folder with a "
            "preset.json in DAKERA_MODELS_DIR")


def _preset_name(value: str) -> str:
    from app.embed.presets import FOLDER_NAME, PRESETS  # numpy comes with app.embed: only here

    for preset in PRESETS.values():
        if value.lower() in {preset.name, *(a.lower() for a in preset.aliases)}:
            return preset.name
    if FOLDER_NAME.fullmatch(value):  # a user's export: <models dir>/<value>/preset.json
        return value
    raise SettingError(_model_choices())


def _host_names(values: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for value in values:
        name = value.lower().rstrip(".")
        if not name or any(c in name for c in "/ @?#"):
            raise SettingError("a comma-separated list of host names (e.g. dakera.lan,"
                               "10.0.0.5), or '*'")
        out.append(name)
    return tuple(out)


def _origins(values: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for value in values:
        origin = value.lower().rstrip("/")
        scheme, sep, rest = origin.partition("://")
        if origin != "*" and (not sep or scheme not in ("http", "https") or not rest
                              or any(c in rest for c in "/ @?#")):
            raise SettingError("a comma-separated list of origins such as "
                               "https://app.example.com or http://localhost:3000, or '*'")
        out.append(origin)
    return tuple(out)


def _database_url(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.partition("://")[0].lower()
    if scheme not in ("postgresql", "postgres"):
        raise SettingError("a PostgreSQL URL: postgresql://user:password@host:port/database")
    return value


def setting(*env: str, help: str, check: Callable[[Any], Any] | None = None,
            **constraints: Any) -> msgspec.Meta:
    """A field's declaration: its environment variables (the first is its name), help text,
    msgspec constraints (ge, le, min_length ...) and an optional check that returns the
    normalised value or raises SettingError with what is accepted."""
    return msgspec.Meta(description=help, extra={"env": env, "check": check}, **constraints)


MemoryType = Literal["episodic", "semantic", "procedural", "working"]
assert set(typing.get_args(MemoryType)) == set(MEMORY_TYPES)
# app.extract.ENTITY_TYPES (not imported here: it loads the gazetteers; a test checks them)
EntityType = Literal["person", "org", "location", "date", "url", "email", "number_with_unit",
                     "identifier"]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: Annotated[str, setting(
        "DAKERA_HOST", min_length=1,
        help="Address to bind. Anything but loopback requires an API key.")] = "127.0.0.1"
    port: Annotated[int, setting(
        "DAKERA_PORT", ge=1, le=65535, help="TCP port to listen on.")] = 7700
    data_dir: Annotated[str, setting(
        "DAKERA_DATA_DIR", min_length=1,
        help="Directory holding the SQLite database and the index cache.")] = msgspec.field(
        default_factory=_default_data_dir)
    api_key: Annotated[NonEmpty | None, setting(
        "DAKERA_API_KEY", "DAKERA_ROOT_API_KEY",
        help="Bearer key every request but the health probes must carry. Unset: loopback "
             "only.")] = None
    allowed_hosts: Annotated[tuple[str, ...], setting(
        "DAKERA_ALLOWED_HOSTS", check=_host_names,
        help="Without an API key, requests must name a loopback or private-address Host "
             "(any port); this comma-separated list adds host names (e.g. dakera.lan; '*' "
             "accepts any). Other Hosts are refused with 421.")] = ()
    cors_origins: Annotated[tuple[str, ...], setting(
        "DAKERA_CORS_ORIGINS", check=_origins,
        help="Comma-separated web origins (scheme://host[:port], or '*') whose pages may call "
             "the API: their CORS preflights are answered. Other cross-site requests are "
             "refused with 403.")] = ()
    rate_limit: Annotated[int, setting(
        "DAKERA_RATE_LIMIT_PER_MINUTE", ge=0,
        help="Requests one API key (without keys: one client address) may make per minute, "
             "over a sliding window; beyond it 429 with Retry-After. 0 = no limit.")] = 12_000
    request_timeout: Annotated[int, setting(
        "DAKERA_REQUEST_TIMEOUT", ge=0, le=86_400,
        help="Seconds a request may take until its response starts: a body still arriving "
             "is refused with 408, a slower answer with 504. 0 = no limit.")] = 120
    log_level: Annotated[Literal["debug", "info", "warning", "error"], setting(
        "DAKERA_LOG_LEVEL", help="debug, info, warning or error.")] = "info"
    embedding_model: Annotated[str, setting(
        "DAKERA_EMBEDDING_MODEL", check=_preset_name,
        help="Embedding model: a preset (all-minilm-l6-v2 is built by `make models`, "
             "all-mpnet-base-v2 by `make models MODEL=all-mpnet-base-v2`; bge-small-en-v1.5 "
             "and e5-small-v2 when their export is placed in the models dir; 'hash' is a "
             "deterministic test embedder), or the name of any folder in "
             "DAKERA_MODELS_DIR holding model.onnx, tokenizer.json and a preset.json "
             "(docs/models.md). A data dir keeps the model it was made with: `dakera reindex` "
             "moves it to another.")] = "all-minilm-l6-v2"
    models_dir: Annotated[str, setting(
        "DAKERA_MODELS_DIR", min_length=1,
        help="Directory holding the model files written by scripts/fetch_models.py "
             "(inside the binary: the bundled models).")] = msgspec.field(
        default_factory=_default_models_dir)
    embed_threads: Annotated[int, setting(
        "DAKERA_EMBED_THREADS", ge=0, le=256,
        help="onnxruntime intra-op threads; 0 uses every core.")] = 0
    max_content_bytes: Annotated[int, setting(
        "DAKERA_MAX_MEMORY_CONTENT_BYTES", ge=1,
        help="Largest memory content in UTF-8 bytes.")] = 100_000
    max_metadata_bytes: Annotated[int, setting(
        "DAKERA_MAX_METADATA_BYTES", ge=1,
        help="Largest metadata object of a memory or session, in bytes of its JSON.")] = 65_536
    max_body_size: Annotated[int, setting(
        "DAKERA_MAX_BODY_SIZE", ge=1024, help="Largest request body in bytes.")] = 16 * 1024 * 1024
    recall_candidates: Annotated[int, setting(
        "DAKERA_RECALL_CANDIDATES", ge=1, le=10_000,
        help="Candidates taken from each of the vector and BM25 channels before fusion.")] = 100
    rrf_k: Annotated[int, setting(
        "DAKERA_RRF_K", ge=1, le=10_000, help="Reciprocal Rank Fusion constant k.")] = 60
    vector_weight: Annotated[float, setting(
        "DAKERA_SCORE_W_VEC", ge=0.0, le=1.0,
        help="Weight of vector similarity in hybrid fusion; BM25 gets the rest.")] = 0.5
    recall_context_weight: Annotated[float, setting(
        "DAKERA_RECALL_CONTEXT_WEIGHT", ge=0.0, le=1.0,
        help="Share of a memory's BM25 relevance passed to the next memory of its session "
             "(squared for the one after); 0 turns conversation context off.")] = 0.5
    recall_sentence_weight: Annotated[float, setting(
        "DAKERA_RECALL_SENTENCE_WEIGHT", ge=0.0, le=1.0,
        help="How far a memory's cosine rises towards its best sentence's, for memories of "
             "several sentences (1: the higher of the two); 0 turns it off.")] = 1.0
    recall_sentence_vectors: Annotated[Literal["pooled", "embedded"], setting(
        "DAKERA_RECALL_SENTENCE_VECTORS",
        help="How a sentence gets its vector: pooled from its memory's own embedding pass "
             "(its tokens read in context; no extra cost) or embedded on its own (one more "
             "pass per sentence: about twice the store-time embedding).")] = "pooled"
    recall_sentence_cache_mb: Annotated[int, setting(
        "DAKERA_RECALL_SENTENCE_CACHE_MB", ge=0, le=65536,
        help="Memory (MB) for the sentence vectors recall reads, kept as float16 in the "
             "server (SQLite only; least recently used out first); 0 reads them from the "
             "database on every recall.")] = 16
    speaker_boost: Annotated[float, setting(
        "DAKERA_SCORE_W_SPEAKER", ge=0.0, le=10.0,
        help="Boost (factor 1 + w) for a memory whose author the query names: a memory "
             "written 'Name: text' and a query naming Name.")] = 0.3
    question_penalty: Annotated[float, setting(
        "DAKERA_SCORE_W_QUESTION", ge=0.0, le=1.0,
        help="Penalty (factor 1 - w) for a memory that ends with a question mark.")] = 0.2
    neighborhood_mode: Annotated[Literal["inline", "separate", "off"], setting(
        "DAKERA_NEIGHBORHOOD_MODE",
        help="Where recall puts session neighbours of its results by default: inline (after "
             "the ranked results), separate (context_memories) or off.")] = "inline"
    importance_weight: Annotated[float, setting(
        "DAKERA_SCORE_W_IMP", ge=0.0, le=2.0,
        help="How much importance moves the final score: factor 1 + w * (importance - "
             "0.5).")] = 0.5
    recency_weight: Annotated[float, setting(
        "DAKERA_SCORE_W_REC", ge=0.0, le=2.0,
        help="How much recent use moves the final score: factor 1 + w * (r - 0.5), r halving "
             "with each DAKERA_SCORE_RECENCY_HALF_LIFE_HOURS since a memory was stored or "
             "last recalled.")] = 0.2
    recency_half_life_hours: Annotated[float, setting(
        "DAKERA_SCORE_RECENCY_HALF_LIFE_HOURS", gt=0.0,
        help="Half-life of the recency factor in hours (14 days, as wake-up uses).")] = 336.0
    hnsw_ef: Annotated[int, setting(
        "DAKERA_HNSW_EF", ge=1, le=100_000, help="hnswlib ef at query time.")] = 128
    exact_search_limit: Annotated[int, setting(
        "DAKERA_EXACT_SEARCH_LIMIT", ge=0,
        help="A filtered recall matching at most this many memories is scored exactly.")] = 5000
    namespace_max_vectors: Annotated[int, setting(
        "DAKERA_NAMESPACE_MAX_VECTORS", ge=1,
        help="Most items (vectors and full-text documents) one data namespace holds; an "
             "upsert that would pass it is refused whole (413 QUOTA_EXCEEDED).")] = 1_000_000
    index_save_interval: Annotated[int, setting(
        "DAKERA_INDEX_SAVE_INTERVAL_SECS", ge=1,
        help="Seconds between saves of changed vector indexes (they are also saved on "
             "shutdown).")] = 300
    session_idle_timeout: Annotated[int, setting(
        "DAKERA_SESSION_IDLE_TIMEOUT_SECS", ge=0, le=2_592_000,
        help="Seconds of inactivity after which a session ends (ended_reason idle); 0 = "
             "never. A session may set its own at start.")] = 14_400
    decay_strategy: Annotated[Literal["exponential", "linear", "step"], setting(
        "DAKERA_DECAY_STRATEGY",
        help="How importance fades: exponential, linear or step.")] = "exponential"
    decay_half_life_hours: Annotated[float, setting(
        "DAKERA_DECAY_HALF_LIFE_HOURS", gt=0.0,
        help="Hours for an episodic memory's importance to halve (types decay at their own "
             "speed: working 3x, episodic 1x, semantic 0.5x, procedural 0.3x).")] = 168.0
    decay_interval: Annotated[int, setting(
        "DAKERA_DECAY_INTERVAL_SECS", ge=0,
        help="Seconds between background decay passes (0 turns decay off).")] = 3600
    decay_min_importance: Annotated[float, setting(
        "DAKERA_DECAY_MIN_IMPORTANCE", ge=0.0, le=1.0,
        help="The floor: a memory whose importance decays below it is deleted (or "
             "kept).")] = 0.01
    decay_delete_below_floor: Annotated[bool, setting(
        "DAKERA_DECAY_DELETE_BELOW_FLOOR",
        help="Delete memories that decay below the floor (false keeps them).")] = True
    dedup_on_store: Annotated[bool, setting(
        "DAKERA_DEDUP_ON_STORE",
        help="Merge a stored memory into an existing near-identical one of the same agent and "
             "type (default for agents without their own memory policy).")] = True
    dedup_threshold: Annotated[float, setting(
        "DAKERA_DEDUP_THRESHOLD", ge=0.0, le=1.0,
        help="Cosine similarity at or above which two memories are duplicates.")] = 0.95
    dedup_memory_types: Annotated[tuple[MemoryType, ...], setting(
        "DAKERA_DEDUP_MEMORY_TYPES",
        help="Comma-separated memory types deduplicated on store (episodic memories are "
             "events and are kept by default).")] = ("semantic", "procedural")
    dedup_retention_hours: Annotated[int, setting(
        "DAKERA_DEDUP_RETENTION_HOURS", ge=0, le=87_600,
        help="How long a merged duplicate stays restorable.")] = 720
    extract_entities: Annotated[bool, setting(
        "DAKERA_EXTRACT_ENTITIES",
        help="Extract the entities of stored memories (default for agents whose namespace "
             "config does not say; PATCH /v1/namespaces/{ns}/config changes one).")] = True
    entity_types: Annotated[tuple[EntityType, ...], setting(
        "DAKERA_ENTITY_TYPES",
        help="Comma-separated entity types extracted at store time by default.")] = (
        "person", "org", "location", "date", "url", "email", "identifier")
    graph_on_store: Annotated[bool, setting(
        "DAKERA_GRAPH_ON_STORE",
        help="Link each stored memory into the knowledge graph (related_to, shares_entity, "
             "precedes, supersedes edges).")] = True
    graph_related_threshold: Annotated[float, setting(
        "DAKERA_GRAPH_RELATED_THRESHOLD", ge=0.0, le=1.0,
        help="Cosine similarity at or above which a stored memory gets a related_to edge to "
             "one of its nearest neighbours.")] = 0.85
    graph_entity_links: Annotated[int, setting(
        "DAKERA_GRAPH_ENTITY_LINKS", ge=0, le=100,
        help="How many of the most recent memories naming the same entity a stored memory "
             "is linked to (shares_entity); 0 makes none.")] = 3
    mcp_profile: Annotated[Literal["core", "admin", "power", "all"], setting(
        "DAKERA_MCP_PROFILE",
        help="MCP tools listed: core (the 14 everyday tools), admin (core + administration), "
             "power (core + graph, entities, sessions, agents, feedback...) or all.")] = "core"
    max_import_bytes: Annotated[int, setting(
        "DAKERA_MAX_IMPORT_BYTES", ge=1024,
        help="Largest import file (POST /v1/import) and backup upload in bytes; they are "
             "streamed to disk, not held in memory (DAKERA_MAX_BODY_SIZE does not apply to "
             "them).")] = 8 * 1024**3
    backup_dir: Annotated[NonEmpty | None, setting(
        "DAKERA_BACKUP_DIR",
        help="Directory for backups [default: backups/ in the data dir].")] = None
    backup_interval_hours: Annotated[float, setting(
        "DAKERA_BACKUP_INTERVAL_HOURS", ge=0.0, le=8760.0,
        help="Hours between scheduled backups (0 turns the schedule off).")] = 24.0
    backup_keep: Annotated[int, setting(
        "DAKERA_BACKUP_KEEP", ge=1, le=10_000,
        help="Scheduled backups kept; older scheduled ones are deleted (backups made on "
             "request are kept until deleted).")] = 7
    database_url: Annotated[str | None, setting(
        "DAKERA_DATABASE_URL", check=_database_url,
        help="postgresql://user:password@host:port/database selects the PostgreSQL backend "
             "(pgvector): any number of servers may share one database. Unset: the SQLite "
             "file in the data dir.")] = None
    sqlite_synchronous: Annotated[Literal["full", "normal"], setting(
        "DAKERA_SQLITE_SYNCHRONOUS",
        help="SQLite synchronous mode: full (survives power loss) or normal (survives "
             "crashes).")] = "full"
    log_format: Annotated[Literal["text", "json"], setting(
        "DAKERA_LOG_FORMAT",
        help="Log lines as readable text or as one JSON object each (json), on "
             "stderr.")] = "text"
    access_log: Annotated[bool, setting(
        "DAKERA_ACCESS_LOG",
        help="Log one line per request (method, route, status, duration, request id, key "
             "id) at info level.")] = True
    metrics: Annotated[bool, setting(
        "DAKERA_METRICS",
        help="Collect Prometheus metrics and KPIs (GET /metrics, /v1/ops/metrics, "
             "/v1/kpis); false answers those with 501.")] = True
    metrics_open_on_loopback: Annotated[bool, setting(
        "DAKERA_METRICS_OPEN_ON_LOOPBACK",
        help="Serve GET /metrics without a key to clients on loopback (a local Prometheus "
             "or agent). Leave off behind a reverse proxy on the same host: every request "
             "then comes from loopback.")] = False
    metrics_top_agents: Annotated[int, setting(
        "DAKERA_METRICS_TOP_AGENTS", ge=0, le=1000,
        help="Per-agent metric series (memories, indexed vectors) only for this many "
             "agents, those with the most memories; the totals cover every agent.")] = 10
    events_buffer: Annotated[int, setting(
        "DAKERA_EVENTS_BUFFER", ge=1, le=1_000_000,
        help="Events an event-stream client may fall behind by; past that it misses events "
             "and is sent stream_lagged with how many.")] = 1024
    events_max_subscribers: Annotated[int, setting(
        "DAKERA_EVENTS_MAX_SUBSCRIBERS", ge=1, le=10_000,
        help="Event streams open at once; more are refused with 503.")] = 64
    events_keepalive: Annotated[int, setting(
        "DAKERA_EVENTS_KEEPALIVE_SECS", ge=1, le=3600,
        help="Seconds between keep-alive comments on an idle event stream.")] = 15

    ui: Annotated[bool, setting(
        "DAKERA_UI",
        help="Serve the memory browser at /ui (pages to see, search, fix and forget "
             "memories); false: no /ui routes.")] = True
    ui_session_hours: Annotated[int, setting(
        "DAKERA_UI_SESSION_HOURS", ge=1, le=8760,
        help="Hours a memory-browser login lasts (never longer than its key). Logins are "
             "kept in the server's memory: a restart ends them.")] = 12

    def shown(self) -> dict[str, Any]:
        """The settings as they may be shown: the key masked."""
        shown = {f: getattr(self, f) for f in self.__struct_fields__}
        if shown["api_key"]:
            shown["api_key"] = "***"
        url = shown["database_url"]
        if url and "@" in url and ":" in url.partition("://")[2].rpartition("@")[0]:
            scheme, _, rest = url.partition("://")
            creds, _, host = rest.rpartition("@")
            shown["database_url"] = f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
        return shown

    def __repr__(self) -> str:  # never show the key
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in self.shown().items())})"

    __str__ = __repr__

    def __rich_repr__(self) -> Any:
        yield from self.shown().items()

    @classmethod
    def from_env(cls, env: typing.Mapping[str, str] | None = None,
                 **overrides: Any) -> Settings:
        """Read every setting from the environment (empty values count as unset); CLI
        flags arrive as overrides (None: not given). Raises SettingError naming the
        variable (or flag) of the first bad value."""
        import os

        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for field in FIELDS:
            if overrides.get(field.name) is not None:
                sources[field.name] = f"--{field.flag}"
                values[field.name] = field.parse(overrides[field.name], sources[field.name])
                continue
            for name in field.env:
                if env.get(name):
                    sources[field.name] = name
                    values[field.name] = field.parse(env[name], name)
                    break
        unknown = set(overrides) - {f.name for f in FIELDS}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = cls(**values)
        settings._check_model_folder(sources.get("embedding_model", "DAKERA_EMBEDDING_MODEL"))
        return settings

    def _check_model_folder(self, source: str) -> None:
        """A model that is not a preset must be a folder of the models dir with a
        preset.json (checked here, with the models dir known, so a typo refuses to start)."""
        name = self.embedding_model
        if name == "all-minilm-l6-v2":  # the default: no need to import app.embed (numpy)
            return
        from app.embed.presets import PRESET_FILE, builtin

        path = Path(self.models_dir) / name / PRESET_FILE
        if builtin(name) is None and not path.is_file():
            raise SettingError(f"{source}={name!r} is not valid: expected "
                               f"{_model_choices()}; {path} does not exist")

    def replace(self, **changes: Any) -> Settings:
        return msgspec.structs.replace(self, **changes)

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "dakera.db"

    @property
    def index_dir(self) -> Path:
        return Path(self.data_dir) / "indexes"

    @property
    def namespace_index_dir(self) -> Path:
        return Path(self.data_dir) / "indexes" / "namespaces"

    @property
    def local_url(self) -> str:
        """Where a `dakera serve` with these settings is reached from this machine."""
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def backups_path(self) -> Path:
        return Path(self.backup_dir) if self.backup_dir else Path(self.data_dir) / "backups"

    @property
    def spool_dir(self) -> Path:
        """Where uploads wait while they are imported (on the data dir's disk)."""
        return Path(self.data_dir) / "uploads"


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class Field:
    """One setting as declared on Settings: how to parse it and how to describe it."""

    def __init__(self, name: str, annotation: Any, default: Any) -> None:
        base, *metas = typing.get_args(annotation)
        meta = next(m for m in metas if isinstance(m, msgspec.Meta) and m.extra)
        extra = meta.extra or {}
        self.name = name
        self.flag = name.replace("_", "-")
        self.env: tuple[str, ...] = extra["env"]
        self.help: str = meta.description or ""
        self.check: Callable[[Any], Any] | None = extra["check"]
        self.type = annotation
        self.base = base
        self.default = default
        self.constraints = {k: getattr(meta, k) for k in ("ge", "gt", "le", "lt", "min_length")
                            if getattr(meta, k) is not None}

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def parse(self, raw: Any, source: str) -> Any:
        value = raw
        if isinstance(raw, str):
            value = raw.strip()
            if self.base is bool and value.lower() in _TRUE | _FALSE:
                value = value.lower() in _TRUE
            elif self._choices() or self.base is bool:
                value = value.lower()
            if typing.get_origin(self.base) is tuple:
                value = [v.strip() for v in value.split(",") if v.strip()]
                if self._choices():
                    value = [v.lower() for v in value]
        try:
            value = msgspec.convert(value, self.type, strict=False)
            return self.check(value) if self.check else value
        except (msgspec.ValidationError, SettingError) as exc:
            accepted = str(exc) if isinstance(exc, SettingError) else self.accepts()
            raise SettingError(f"{source}={raw!r} is not valid: expected {accepted}") from None

    def _choices(self) -> tuple[str, ...]:
        base = self.base
        if typing.get_origin(base) is tuple:
            base = typing.get_args(base)[0]
        return typing.get_args(base) if typing.get_origin(base) is Literal else ()

    def accepts(self) -> str:
        """What the setting accepts, in words."""
        choices = self._choices()
        if choices:
            many = typing.get_origin(self.base) is tuple
            return ("a comma-separated list of " if many else "one of ") + ", ".join(choices)
        if self.base is bool:
            return "true or false (also 1/0, yes/no, on/off)"
        if typing.get_origin(self.base) is tuple:
            return "a comma-separated list"
        kind = {int: "an integer", float: "a number"}.get(self.base, "a non-empty string")
        c = self.constraints
        low = c.get("ge", c.get("gt"))
        high = c.get("le", c.get("lt"))
        if low is not None and high is not None:
            return f"{kind} from {low} to {high}"
        if "gt" in c:
            return f"{kind} above {c['gt']}"
        if low is not None:
            return f"{kind} of at least {low}"
        return kind


def _fields() -> tuple[Field, ...]:
    hints = typing.get_type_hints(Settings, include_extras=True)
    out = []
    for info in msgspec.structs.fields(Settings):
        default = (info.default_factory if info.default is msgspec.NODEFAULT
                   else info.default)
        out.append(Field(info.name, hints[info.name], default))
    return tuple(out)


FIELDS = _fields()


def describe() -> list[tuple[str, str, str]]:
    """(env vars, default, help) for every setting: what `dakera settings` prints."""
    rows = []
    for f in FIELDS:
        default = f.default_value()
        if isinstance(default, tuple):
            default = ",".join(default)
        elif isinstance(default, bool):
            default = str(default).lower()
        rows.append((" / ".join(f.env), "" if default is None else str(default),
                     f"{f.help} Accepts {f.accepts()}."))
    return rows


__all__ = ["FIELDS", "SettingError", "Settings", "describe"]
