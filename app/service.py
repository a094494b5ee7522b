"""MemoryService: the one door the adapters (HTTP API, MCP, CLI) use.

It validates input with the contract's rules, embeds, writes through the store's writer
thread, keeps the vector indexes in step after each commit, and recalls through the engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from app import __version__, validate
from app.access import AccessLog
from app.config import Settings
from app.embed import Embedder, Preset, load_embedder, resolve
from app.errors import (
    ConflictError,
    DakeraError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from app.locking import DataDirLock
from app.models import BatchFilter, Memory, NewMemory, RecallFilters, RecallHit
from app.recall import IndexRegistry, RecallEngine, RecallParams
from app.recall.query import index_context
from app.service_lifecycle import Lifecycle
from app.service_sessions import SessionsAndAgents
from app.store import MemoryRow, Store
from app.store import lifecycle as lc
from app.store import sessions as session_store
from app.text import normal_hash

log = logging.getLogger("dakera.service")

EVENT_TIME_KEY = "_dakera_event_time"
ROUTINGS = ("auto", "hybrid", "vector", "bm25")
FUSIONS = ("minmax", "rrf")
NEIGHBORHOOD_MODES = ("inline", "separate", "off")


@dataclass
class StoreResult:
    memories: list[Memory]
    embedding_ms: float
    session_states: dict[str, str] = field(default_factory=dict)  # session id -> state
    # position in the request -> id of the duplicate merged into memories[position]
    duplicates: dict[int, str] = field(default_factory=dict)

    @property
    def memory(self) -> Memory:
        return self.memories[0]


@dataclass
class RecallOutcome:
    hits: list[RecallHit]
    embed_ms: float
    search_ms: float
    candidates: int
    warnings: list[str] = field(default_factory=list)
    context: list[RecallHit] = field(default_factory=list)  # session neighbours of the hits
    context_mode: str = "off"  # where they go: inline, separate or off


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _default(value: float | None, default: float) -> float:
    return default if value is None else value


def new_memory_id() -> str:
    return "mem_" + uuid.uuid4().hex


class MemoryService(SessionsAndAgents, Lifecycle):
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.version = __version__
        self._started = time.monotonic()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._closed = threading.Event()
        self._lock = DataDirLock(Path(settings.data_dir))
        self._store: Store | None = None
        self._indexes: IndexRegistry | None = None
        self._engine: RecallEngine | None = None
        self._embedder: Embedder | None = None
        self._saver: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._access: AccessLog | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, *, wait: bool = False) -> None:
        """Take the data dir lock, then load the model and indexes in the background
        (or in the foreground with wait=True). Raises if the data dir is in use."""
        self._lock.acquire()
        self._loader = threading.Thread(target=self._load, name="dakera-loader", daemon=True)
        self._loader.start()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        if self._loader is not None:
            self._loader.join(timeout)
        if self._failed is not None:
            raise self._failed

    def wait_ready_quietly(self) -> None:
        """Wait for start-up to finish, successfully or not (see `failure`)."""
        if self._loader is not None:
            self._loader.join()

    def _load(self) -> None:
        try:
            s = self.settings
            t0 = time.perf_counter()
            embedder = load_embedder(s.embedding_model, Path(s.models_dir), s.embed_threads)
            t1 = time.perf_counter()
            store = Store(s.db_path, dimension=embedder.preset.dimension,
                          model_id=embedder.model_id, synchronous=s.sqlite_synchronous)
            indexes = IndexRegistry(store, s.index_dir, embedder.model_id, s.hnsw_ef)
            indexes.open_all()
            self._embedder, self._store, self._indexes = embedder, store, indexes
            self._engine = RecallEngine(store, indexes, embedder, RecallParams(
                candidates=s.recall_candidates, rrf_k=s.rrf_k,
                importance_weight=s.importance_weight,
                exact_search_limit=s.exact_search_limit, vector_weight=s.vector_weight,
                context_weight=s.recall_context_weight, speaker_boost=s.speaker_boost,
                question_penalty=s.question_penalty, phrases=s.recall_phrases,
                recency_weight=s.recency_weight,
                recency_half_life_hours=s.recency_half_life_hours))
            log.info("model %s loaded in %.2fs; %s opened with %d agent index(es) in %.2fs",
                     embedder.model_id, t1 - t0, s.db_path, len(indexes.stats()),
                     time.perf_counter() - t1)
            self._access = AccessLog(lambda hits, now: store.writer.submit(partial(
                lc.reinforce_job, hits=hits, now=now, boost=self.decay_policy().access_boost)))
            self._saver = threading.Thread(target=self._maintenance_loop, name="dakera-maintenance",
                                           daemon=True)
            self._saver.start()
            self._ready.set()
        except BaseException as exc:  # surfaced by wait_ready() and the readiness probe
            log.error("start-up failed: %s", exc)
            self._failed = exc

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def failure(self) -> BaseException | None:
        return self._failed

    def close(self) -> None:
        """Finish queued writes, save changed indexes, release the data dir."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._loader is not None:
            self._loader.join()
        if self._saver is not None:
            self._saver.join()
        if self._access is not None:
            self._access.close()
        if self._store is not None:
            self._store.writer.run(lambda conn: None)  # drain the queue
            self.save_indexes()
            self._store.close()
            log.info("closed %s", self._store.path)
        self._lock.release()

    def compact_indexes(self) -> int:
        """Rebuild vector indexes left mostly empty by deletions."""
        _, indexes, _, _ = self._parts()
        return indexes.compact()

    def flush_access(self) -> None:
        """Write pending recall statistics (and their reinforcement) now."""
        if self._access is not None:
            self._access.flush()
            if self._store is not None:
                self._store.writer.run(lambda conn: None)

    def save_indexes(self) -> int:
        """Save changed indexes, then drop the log entries they now contain."""
        store, indexes = self._store, self._indexes
        if store is None or indexes is None:
            return 0
        saved = indexes.save_dirty()
        for agent_id, seq in saved:
            store.writer.run(partial(store.trim_index_log_job, agent_id=agent_id, upto_seq=seq))
        return len(saved)

    def maintenance_tasks(self) -> list[tuple[str, float, Callable[[], object]]]:
        """(name, interval in seconds, task) run by the maintenance thread."""
        tasks: list[tuple[str, float, Callable[[], object]]] = [
            ("save indexes", max(1, self.settings.index_save_interval), self.save_indexes),
            ("end idle sessions", 60, self.expire_idle_sessions),
            ("remove expired memories", 60, self.purge_expired),
            ("compact indexes", 60, self.compact_indexes)]
        if self.settings.decay_interval > 0:
            tasks.append(("decay", self.settings.decay_interval, self.run_decay))
        return tasks

    def _maintenance_loop(self) -> None:
        tasks = self.maintenance_tasks()
        due = {name: time.monotonic() + interval for name, interval, _ in tasks}
        while not self._closed.wait(max(0.1, min(due.values()) - time.monotonic())):
            for name, interval, task in tasks:
                if time.monotonic() >= due[name]:
                    try:
                        task()
                    except Exception:
                        log.exception("%s failed", name)
                    due[name] = time.monotonic() + interval

    def _parts(self) -> tuple[Store, IndexRegistry, RecallEngine, Embedder]:
        if not self._ready.is_set():
            if self._failed is not None:
                raise ServiceUnavailableError(f"start-up failed: {self._failed}", retry_after=5)
            raise ServiceUnavailableError("loading models", retry_after=1)
        assert self._store and self._indexes and self._engine and self._embedder
        return self._store, self._indexes, self._engine, self._embedder

    def embedder_preset(self) -> Preset:
        return resolve(self.settings.embedding_model)

    def now(self) -> int:
        return int(self.clock())

    # -- health -------------------------------------------------------------------------

    def uptime(self) -> int:
        return int(time.monotonic() - self._started)

    def health(self) -> dict[str, Any]:
        return {"ready": self.ready, "version": self.version, "uptime_seconds": self.uptime(),
                "model": self._embedder.model_id if self._embedder else None,
                "failure": str(self._failed) if self._failed else None}

    def readiness_checks(self) -> dict[str, dict[str, str]]:
        checks = {"model": {"status": "ok", "model": self._embedder.model_id}
                  if self._embedder else {"status": "loading"}}
        try:
            store, *_ = self._parts()
            store.reader().execute("SELECT 1 FROM memories LIMIT 1").fetchall()
            checks["storage"] = {"status": "ok"}
        except Exception as exc:
            checks["storage"] = {"status": "error", "error": str(exc)}
        return checks

    # -- writes -------------------------------------------------------------------------

    def store(self, agent_id: Any, content: Any, *, memory_type: Any = None,
              importance: Any = None, tags: Any = None, metadata: Any = None,
              session_id: Any = None, ttl_seconds: Any = None, expires_at: Any = None,
              event_time: Any = None, memory_id: Any = None) -> StoreResult:
        new = self._validate_new(agent_id, content, memory_type=memory_type,
                                 importance=importance, tags=tags, metadata=metadata,
                                 session_id=session_id, ttl_seconds=ttl_seconds,
                                 expires_at=expires_at, event_time=event_time,
                                 memory_id=memory_id)
        return self._insert([new])

    def store_batch(self, agent_id: Any, items: Any) -> StoreResult:
        """Store 1-1000 memories in one embedding pass and one transaction: all or none."""
        agent = validate.agent_id(agent_id)
        if not isinstance(items, list) or not 1 <= len(items) <= validate.MAX_BATCH:
            raise ValidationError(f"'memories' must hold 1 to {validate.MAX_BATCH} items")
        news = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValidationError(f"memories[{i}] must be an object")
            try:
                news.append(self._validate_new(
                    agent, item.get("content"), memory_type=item.get("memory_type"),
                    importance=item.get("importance"), tags=item.get("tags"),
                    metadata=item.get("metadata"), session_id=item.get("session_id"),
                    ttl_seconds=item.get("ttl_seconds"), expires_at=item.get("expires_at"),
                    event_time=item.get("event_time"), memory_id=item.get("id")))
            except DakeraError as exc:
                exc.message = f"memories[{i}]: {exc.message}"
                exc.args = (exc.message,)
                raise
        custom = [n.id for n in news if n.id is not None]
        dupes = sorted(i for i, n in Counter(custom).items() if n > 1)
        if dupes:
            raise ConflictError(f"the batch repeats memory ids: {', '.join(dupes[:10])}")
        store, *_ = self._parts()
        taken = store.existing_ids(agent, custom) if custom else []
        if taken:
            raise ConflictError(f"memory ids already exist for agent {agent!r}: "
                                f"{', '.join(sorted(taken)[:10])}")
        return self._insert(news)

    def _batch_filter(self, raw: Any) -> BatchFilter:
        if raw is None:
            return BatchFilter()
        if not isinstance(raw, Mapping):
            raise ValidationError("'filter' must be an object")
        return BatchFilter(
            tags=validate.tags(raw.get("tags"), "filter.tags", storing=False),
            min_importance=validate.importance(raw.get("min_importance"),
                                               "filter.min_importance"),
            max_importance=validate.importance(raw.get("max_importance"),
                                               "filter.max_importance"),
            created_after=validate.unix_seconds(raw.get("created_after"),
                                                "filter.created_after"),
            created_before=validate.unix_seconds(raw.get("created_before"),
                                                 "filter.created_before"),
            memory_type=validate.memory_type(raw.get("memory_type"), "filter.memory_type"),
            session_id=validate.session_id(raw.get("session_id"), "filter.session_id"),
        )

    def batch_recall(self, agent_id: Any, filter: Any = None, limit: Any = 100
                     ) -> dict[str, Any]:
        """Memories matching filter predicates, newest first; no embedding."""
        agent = validate.agent_id(agent_id)
        f = self._batch_filter(filter)
        n = validate.limit(limit, validate.MAX_BATCH_RECALL, "limit")
        store, *_ = self._parts()
        now = self.now()
        memories = store.list_filtered(agent, f, now, limit=n)
        filtered = store.count_filtered(agent, f, now)
        total = filtered if f.is_empty() else store.count_filtered(agent, BatchFilter(), now)
        return {"memories": memories, "total": total, "filtered": filtered,
                "truncated": filtered > len(memories)}

    def batch_forget(self, agent_id: Any, filter: Any) -> int:
        """Delete the agent's memories matching the filter; refuses an empty filter
        (an explicit empty `tags` list counts, and matches everything)."""
        agent = validate.agent_id(agent_id)
        f = self._batch_filter(filter)
        if f.is_empty():
            raise ValidationError("batch forget needs at least one filter predicate "
                                  "(tags, min_importance, max_importance, created_after, "
                                  "created_before, memory_type, session_id)")
        store, indexes, _, _ = self._parts()
        return self._delete(store, indexes, agent, store.rowids_filtered(agent, f, self.now()))

    def _validate_new(self, agent_id: Any, content: Any, *, memory_type: Any = None,
                      importance: Any = None, tags: Any = None, metadata: Any = None,
                      session_id: Any = None, ttl_seconds: Any = None, expires_at: Any = None,
                      event_time: Any = None, memory_id: Any = None) -> NewMemory:
        meta = validate.metadata(metadata) or {}
        when = validate.event_time(event_time)
        if when is not None:
            meta[EVENT_TIME_KEY] = when
        return NewMemory(
            agent_id=validate.agent_id(agent_id),
            content=validate.content(content, self.settings.max_content_bytes),
            memory_type=validate.memory_type(memory_type) or "episodic",
            importance=_default(validate.importance(importance), 0.5),
            tags=validate.tags(tags) or [],
            metadata=meta,
            session_id=validate.session_id(session_id),
            ttl_seconds=validate.ttl_seconds(ttl_seconds),
            expires_at=validate.unix_seconds(expires_at, "expires_at"),
            event_time=when,
            id=None if memory_id is None else validate.memory_id(memory_id),
        )

    def _insert(self, items: list[NewMemory], *, dedup: bool = True) -> StoreResult:
        """Embed once, then in one transaction: merge each duplicate into the memory it
        repeats (per the agent's policy; custom ids are never merged) or insert it, and
        record session activity. The index is updated after the commit."""
        store, indexes, _, embedder = self._parts()
        now = self.now()
        t0 = time.perf_counter()
        vectors = embedder.embed([m.content for m in items])
        embed_ms = (time.perf_counter() - t0) * 1000
        rows = []
        sessions: dict[str, set[str]] = {}
        for new, vector in zip(items, vectors, strict=True):
            expires = new.expires_at
            if expires is None and new.ttl_seconds is not None:
                expires = now + new.ttl_seconds
            memory = Memory(
                id=new.id or new_memory_id(), agent_id=new.agent_id, content=new.content,
                memory_type=new.memory_type, importance=new.importance, tags=new.tags,
                metadata=new.metadata, session_id=new.session_id, created_at=now,
                updated_at=now, last_accessed_at=now, access_count=0,
                ttl_seconds=new.ttl_seconds, expires_at=expires, event_time=new.event_time)
            rows.append(MemoryRow(memory, vector, content_hash(new.content),
                                  index_context(memory), normal_hash(new.content)))
            if new.session_id is not None:
                sessions.setdefault(new.agent_id, set()).add(new.session_id)
        policies = {a: self.dedup_policy(a) for a in {m.agent_id for m in items}} if dedup else {}
        retention = self.settings.dedup_retention_hours * 3600

        def job(conn: Any) -> tuple[list[Memory], list[int], int, dict[str, str],
                                    dict[int, str]]:
            out: list[Memory] = []
            added: list[int] = []
            duplicates: dict[int, str] = {}
            inserted: list[tuple[np.ndarray, int, str, str]] = []
            seq = 0
            for pos, (new, row) in enumerate(zip(items, rows, strict=True)):
                m = row.memory
                survivor = None
                if dedup and new.id is None:
                    survivor = self.find_duplicate(conn, row, policies[m.agent_id], inserted)
                if survivor is None:
                    seq = store.insert_one(conn, row)
                    inserted.append((row.vector, m.rowid, m.memory_type, m.content))
                    out.append(m)
                    added.append(pos)
                    continue
                lc.merge_duplicate_job(conn, survivor, m.importance, m.tags, now)
                kept = store.memory_job(conn, survivor)
                saved = {**dataclasses.asdict(new), "id": m.id}
                lc.trash_job(conn, m.agent_id, m.id, kept.id, saved, now, retention)
                out.append(kept)
                duplicates[pos] = m.id
            states: dict[str, str] = {}
            for agent, ids in sessions.items():
                states.update(session_store.activity_job(
                    conn, agent, ids, now, self.settings.session_idle_timeout))
            return out, added, seq, states, duplicates

        def after(result: tuple[list[Memory], list[int], int, dict[str, str],
                                dict[int, str]]) -> None:
            memories, added, seq, _, _ = result
            if added:
                agent = memories[added[0]].agent_id
                indexes.added(agent, [memories[i].rowid for i in added], vectors[added], seq)

        try:
            memories, _, _, states, duplicates = store.writer.run(job, after)
        except DakeraError:
            raise
        except Exception as exc:
            if "UNIQUE constraint failed" in str(exc):
                raise ConflictError("a memory with this id already exists for this agent"
                                    ) from None
            raise
        return StoreResult(memories, embed_ms, states, duplicates)

    def update(self, agent_id: Any, memory_id: Any, *, content: Any = None,
               metadata: Any = None, memory_type: Any = None, importance: Any = None,
               tags: Any = None, ttl_seconds: Any = None, expires_at: Any = None) -> Memory:
        """Change the given fields; new content is re-embedded. A new ttl_seconds counts
        from now; expires_at wins over it."""
        agent = validate.agent_id(agent_id)
        ttl = validate.ttl_seconds(ttl_seconds)
        expiry = validate.unix_seconds(expires_at, "expires_at")
        text = None if content is None else validate.content(
            content, self.settings.max_content_bytes)
        meta = validate.metadata(metadata)
        mtype = validate.memory_type(memory_type)
        new_importance = validate.importance(importance)
        new_tags = validate.tags(tags)
        store, indexes, _, embedder = self._parts()
        memory = self.get(memory_id, agent)
        if meta is not None:
            kept = {k: v for k, v in memory.metadata.items() if k == EVENT_TIME_KEY}
            memory.metadata = {**meta, **kept}
        if mtype is not None:
            memory.memory_type = mtype
        if new_importance is not None:
            memory.importance = new_importance
        if new_tags is not None:
            memory.tags = new_tags
        if ttl is not None:
            memory.ttl_seconds, memory.expires_at = ttl, self.now() + ttl
        if expiry is not None:
            memory.expires_at = expiry
        row = None
        if text is not None and text != memory.content:
            memory.content = text
            vector = embedder.embed([text])[0]
            row = MemoryRow(memory, vector, content_hash(text), index_context(memory))
        memory.updated_at = self.now()

        def after(result: tuple[int, Memory]) -> None:
            if row is not None:
                indexes.added(agent, [memory.rowid], row.vector[None, :], result[0])

        def job(conn: Any) -> tuple[int, Memory]:
            # Importance is written only when asked: a recall's boost committed since the
            # read above is kept. The memory comes back as committed.
            seq = store.update_job(conn, memory, row, set_importance=new_importance is not None)
            if memory.session_id is not None:
                session_store.activity_job(conn, agent, {memory.session_id}, memory.updated_at,
                                           self.settings.session_idle_timeout)
            return seq, store.memory_job(conn, memory.rowid)

        _, updated = store.writer.run(job, after)
        return updated

    def forget(self, agent_id: Any, *, memory_ids: Any = None, tags: Any = None,
               session_id: Any = None, before_timestamp: Any = None) -> int:
        """Delete the agent's memories matching every given predicate. An explicit empty
        `tags` list matches everything; an explicit empty `memory_ids` list matches nothing."""
        agent = validate.agent_id(agent_id)
        if memory_ids is not None and (not isinstance(memory_ids, list) or not all(
                isinstance(i, str) for i in memory_ids)):
            raise ValidationError("'memory_ids' must be a list of strings")
        tag_list = validate.tags(tags, storing=False)
        session = validate.session_id(session_id)
        before = validate.unix_seconds(before_timestamp, "before_timestamp")
        if memory_ids is None and tag_list is None and session is None and before is None:
            raise ValidationError(
                "forget needs at least one of memory_ids, tags, session_id, before_timestamp")
        store, indexes, _, _ = self._parts()
        if memory_ids == []:
            return 0
        rowids = store.select_rowids(agent, memory_ids=memory_ids, tags=tag_list or None,
                                     session_id=session, before=before)
        return self._delete(store, indexes, agent, rowids)

    def _delete(self, store: Store, indexes: IndexRegistry, agent: str,
                rowids: list[int]) -> int:
        if not rowids:
            return 0

        def after(seq: int) -> None:
            indexes.deleted(agent, rowids, seq)

        store.writer.run(lambda conn: store.delete_job(conn, agent, rowids), after)
        return len(rowids)

    # -- reads --------------------------------------------------------------------------

    def get(self, memory_id: Any, agent_id: Any = None) -> Memory:
        if not isinstance(memory_id, str) or not memory_id:
            raise ValidationError("'memory_id' must be a non-empty string")
        agent = None if agent_id is None else validate.agent_id(agent_id)
        store, *_ = self._parts()
        found = store.get(memory_id, agent, self.now())
        if not found:
            raise NotFoundError(f"memory {memory_id!r} not found", resource="memory")
        if len(found) > 1:
            holders = ", ".join(sorted(m.agent_id for m in found))
            raise ValidationError(f"memory id {memory_id!r} is held by several agents "
                                  f"({holders}); pass agent_id")
        return found[0]

    def recall(self, agent_id: Any, query: Any, *, top_k: Any = 5, memory_type: Any = None,
               min_importance: Any = None, tags: Any = None, session_id: Any = None,
               since: Any = None, until: Any = None, routing: Any = None, fusion: Any = None,
               vector_weight: Any = None, neighborhood: Any = None,
               neighborhood_mode: Any = None, reinforce: bool = True) -> RecallOutcome:
        agent = validate.agent_id(agent_id)
        text = validate.query(query)
        k = validate.top_k(top_k)
        filters = RecallFilters(
            memory_type=validate.memory_type(memory_type),
            min_importance=validate.importance(min_importance, "min_importance"),
            tags=validate.tags(tags, storing=False) or None,
            session_id=validate.session_id(session_id),
            since=None if since is None else validate.iso_timestamp(since, "since"),
            until=None if until is None else validate.iso_timestamp(until, "until"),
        )
        route = validate.choice(routing, ROUTINGS, "routing") or "hybrid"
        fuse = validate.choice(fusion, FUSIONS, "fusion") or "minmax"
        weight = validate.unit_float(vector_weight, "vector_weight")
        if neighborhood is not None and not isinstance(neighborhood, bool):
            raise ValidationError("'neighborhood' must be a boolean")
        mode = ("off" if neighborhood is False else validate.choice(
            neighborhood_mode, NEIGHBORHOOD_MODES, "neighborhood_mode")
            or self.settings.neighborhood_mode)
        _, _, engine, _ = self._parts()
        now = self.now()
        result = engine.recall(agent, text, k, filters, now, routing=route, fusion=fuse,
                               vector_weight=weight, neighborhood=mode != "off")
        if filters.session_id is not None:
            self.record_session_activity(agent, {filters.session_id}, wait=False)
        if reinforce and result.hits and self._access is not None:
            self._access.record([h.memory.rowid for h in result.hits], now)
            for h in result.hits:
                h.memory.access_count += 1
                h.memory.last_accessed_at = now
        return RecallOutcome(result.hits, result.embed_ms, result.search_ms, result.candidates,
                             context=result.context, context_mode=mode)

    # -- for tools and tests -------------------------------------------------------------

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        _, _, _, embedder = self._parts()
        return embedder.embed(texts, query=query)

    def index_counts(self) -> dict[str, int]:
        _, indexes, _, _ = self._parts()
        return indexes.stats()
