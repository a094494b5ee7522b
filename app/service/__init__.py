"""The one door the adapters (HTTP API, MCP, web pages, CLI) use: `Service`, made of parts
that mirror the API's sections (memories, recall, sessions, agents, feedback, decay,
policies, graph, knowledge, extraction, consolidation, autopilot, namespaces, vectors, text,
ops, keys, transfer, backups, capabilities) and what the memory browser reads (browse) and
logs in with (logins), composed in one place (`compose`), each given what it needs.

Starting takes the data dir's lock and loads the model, the store and the indexes in the
background; a part asked for before that is done answers 503 (loading) or the start-up error.
The event bus (`service.events`) and the metrics (`service.metrics`) exist from the start:
streams may subscribe and /metrics answers while the model loads. Restoring a backup swaps
the database under a running service: the parts answer 503 while requests in flight finish,
the store is closed, the new file renamed in, and new parts are composed over it (see
`_swap_database`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from app import __version__
from app.config import Settings
from app.embed import Embedder, Preset, PresetError, load_embedder, resolve
from app.errors import ServiceUnavailableError, StorageError
from app.files import fsync_dir
from app.index import IndexRegistry
from app.locking import DataDirLock
from app.models import Indexes
from app.recall import RecallEngine, RecallParams
from app.service.access import AccessLog
from app.service.agent_views import AgentViews
from app.service.agents import Agents
from app.service.autopilot import Autopilot, AutopilotConfig
from app.service.backups import Backups, Restores, Schedule
from app.service.browse import Browse
from app.service.capabilities import CONTRACT_VERSION, Capabilities
from app.service.consolidation import Consolidation
from app.service.decay import Decay
from app.service.events import EventBus, Publisher
from app.service.extraction import Extraction
from app.service.feedback import Feedback
from app.service.graph import Graph
from app.service.keys import Keys
from app.service.linking import GraphSettings
from app.service.logins import Logins
from app.service.memories import Memories
from app.service.metrics import Metrics
from app.service.namespaces import Namespaces
from app.service.ops import Ops
from app.service.policies import Policies
from app.service.recall import Recall
from app.service.sessions import Sessions
from app.service.similarity import Similarity
from app.service.text import Texts
from app.service.transfer import Transfer
from app.service.vectors import Vectors
from app.store import Store, Tx, open_store
from app.store.backup import remove_sidecars

log = logging.getLogger("dakera.service")
NAMESPACE_INDEX_MODEL = "raw-vectors"  # namespace indexes hold clients' vectors, no model's

P = TypeVar("P")
# close() finishes within this many seconds, whatever the disk does (SIGTERM must end the
# process within 10 s).
CLOSE_TIMEOUT = 7.0


def _bounded(fn: Callable[[], object], timeout: float, what: str) -> None:
    """Run fn, waiting at most `timeout` seconds (a hung disk must not hold a shutdown)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, name=f"dakera-close-{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log.warning("%s not written at shutdown: the writer did not answer in time", what)
    elif errors:
        log.warning("%s not written at shutdown: %s", what, _short(errors[0]))


def _short(exc: BaseException) -> str:
    if isinstance(exc, StorageError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "the writer did not finish in time"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Parts:
    """Everything the service is once started."""

    store: Store
    indexes: Indexes
    namespace_indexes: Indexes
    embedder: Embedder
    access: AccessLog
    memories: Memories
    recall: Recall
    sessions: Sessions
    agents: Agents
    feedback: Feedback
    decay: Decay
    policies: Policies
    graph: Graph
    knowledge: Similarity
    extraction: Extraction
    consolidation: Consolidation
    autopilot: Autopilot
    namespaces: Namespaces
    vectors: Vectors
    text: Texts
    ops: Ops
    keys: Keys
    browse: Browse
    logins: Logins
    transfer: Transfer
    backups: Backups


def compose(settings: Settings, now: Callable[[], int], store: Store,
            indexes: Indexes, namespace_indexes: Indexes, embedder: Embedder,
            events: EventBus, metrics: Metrics, uptime: Callable[[], int], schedule: Schedule,
            restores: Restores) -> Parts:
    """The parts over an open store, indexes and model: each gets what it uses (the parts
    that change memories or sessions publish to the event bus through a Publisher; the
    backup schedule and the restores are the service's: they outlive the parts a restore
    replaces)."""
    s = settings
    publisher = Publisher(events, now)
    policies = Policies(store, s)
    autopilot_config = AutopilotConfig(store, s)
    memories = Memories(store, indexes, embedder, s, now, policies.store_policy,
                        GraphSettings(enabled=s.graph_on_store,
                                      related_threshold=s.graph_related_threshold,
                                      entity_links=s.graph_entity_links),
                        autopilot_config.retention_secs, publisher, metrics)
    graph = Graph(store, now, memories.get)
    consolidation = Consolidation(store, indexes, s, now, memories,
                                  autopilot_config.cross_session)
    sessions = Sessions(store, s, now, publisher)
    decay = Decay(store, s, now, memories, publisher, metrics)
    access = AccessLog(lambda hits, at: store.submit(
        lambda tx: tx.decay.reinforce(hits, at, decay.policy().access_boost)))
    engine = RecallEngine(store, indexes, embedder, RecallParams(
        candidates=s.recall_candidates, rrf_k=s.rrf_k, importance_weight=s.importance_weight,
        exact_search_limit=s.exact_search_limit, vector_weight=s.vector_weight,
        context_weight=s.recall_context_weight, sentence_weight=s.recall_sentence_weight,
        speaker_boost=s.speaker_boost,
        question_penalty=s.question_penalty,
        recency_weight=s.recency_weight, recency_half_life_hours=s.recency_half_life_hours))
    keys = Keys(store, s, now)
    namespaces = Namespaces(store, namespace_indexes, indexes, embedder.preset, now)
    views = AgentViews(store, engine, now)
    vectors = Vectors(store, namespace_indexes, namespaces, views, s, now)
    return Parts(
        store=store, indexes=indexes, namespace_indexes=namespace_indexes, embedder=embedder,
        access=access, memories=memories,
        recall=Recall(engine, s, now, sessions, access, publisher, metrics,
                      graph.associated),
        sessions=sessions, agents=Agents(store, now, embedder.preset, sessions, publisher),
        feedback=Feedback(store, now, memories, publisher), decay=decay, policies=policies,
        namespaces=namespaces, vectors=vectors,
        text=Texts(store, namespaces, vectors, views, embedder, s.recall_candidates, now),
        ops=Ops(store, indexes, metrics, events, s, now, uptime, embedder.model_id),
        graph=graph, knowledge=Similarity(store, indexes, now, memories.get),
        extraction=Extraction(store, s, now, policies, memories.get),
        consolidation=consolidation,
        autopilot=Autopilot(store, now, autopilot_config, consolidation.deduplicate,
                            consolidation.consolidate_agent,
                            lambda agent: bool(consolidation.config(agent)["enabled"])),
        keys=keys, browse=Browse(store, indexes, s, now, sessions, decay, metrics),
        logins=Logins(keys, s, now),
        transfer=(transfer := Transfer(store, indexes, embedder, s, now,
                                       sessions.expire_idle)),
        backups=Backups(store, s, now, schedule, restores, transfer.busy, embedder.model_id,
                        embedder.preset.dimension))


def _trim_log(tx: Tx, agent_id: str, upto_seq: int) -> None:
    tx.vectors.trim_log(agent_id, upto_seq)


def _trim_namespace_log(tx: Tx, namespace: str, upto_seq: int) -> None:
    tx.namespace_vectors.trim_log(namespace, upto_seq)


class _Part(Generic[P]):
    """A part of the started service (503 while it is starting)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type) -> _Part[P]: ...
    @overload
    def __get__(self, obj: Service, objtype: type) -> P: ...

    def __get__(self, obj: Service | None, objtype: type) -> Any:
        if obj is None:
            return self
        return getattr(obj.parts(), self.name)


class Service:
    memories: _Part[Memories] = _Part()
    recall: _Part[Recall] = _Part()
    sessions: _Part[Sessions] = _Part()
    agents: _Part[Agents] = _Part()
    feedback: _Part[Feedback] = _Part()
    decay: _Part[Decay] = _Part()
    policies: _Part[Policies] = _Part()
    graph: _Part[Graph] = _Part()
    knowledge: _Part[Similarity] = _Part()
    extraction: _Part[Extraction] = _Part()
    consolidation: _Part[Consolidation] = _Part()
    autopilot: _Part[Autopilot] = _Part()
    namespaces: _Part[Namespaces] = _Part()
    vectors: _Part[Vectors] = _Part()
    text: _Part[Texts] = _Part()
    ops: _Part[Ops] = _Part()
    keys: _Part[Keys] = _Part()
    browse: _Part[Browse] = _Part()
    logins: _Part[Logins] = _Part()
    transfer: _Part[Transfer] = _Part()
    backups: _Part[Backups] = _Part()

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.version = CONTRACT_VERSION  # the contract level (what clients gate on)
        self.product_version = __version__
        preset = _described_preset(settings)
        self.capabilities = Capabilities(settings, preset)
        self._started = time.monotonic()
        self.events = EventBus(buffer=settings.events_buffer,
                               max_subscribers=settings.events_max_subscribers)
        self.metrics = Metrics(settings, model=preset.name,
                               ready=lambda: self.ready, uptime=self.uptime,
                               events=self.events, now=self.now)
        self._parts: Parts | None = None
        self._failed: BaseException | None = None
        self._closed = threading.Event()
        self._lock = DataDirLock(Path(settings.data_dir))
        self._loader: threading.Thread | None = None
        self._maintenance: threading.Thread | None = None
        self.schedule = Schedule(settings.backup_interval_hours, settings.backup_keep)
        self.restores = Restores(swap=self._swap_database)
        self._restoring = False
        self._upkeep = threading.Lock()  # maintenance tasks and the database swap
        self._inflight = 0
        self._inflight_changed = threading.Condition()

    def now(self) -> int:
        return int(self.clock())

    # -- start and stop -----------------------------------------------------------------

    def start(self, *, wait: bool = False) -> None:
        """Take the data dir lock, then load the model, the store and the indexes in the
        background (in the foreground with wait=True). Raises if the data dir is in use."""
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
            self._parts = parts = self._open(embedder)
            log.info("model %s loaded in %.2fs; %s opened with %d agent and %d namespace "
                     "index(es) in %.2fs", embedder.model_id, t1 - t0, parts.store.location,
                     len(parts.indexes.stats()), len(parts.namespace_indexes.stats()),
                     time.perf_counter() - t1)
            self._maintenance = threading.Thread(target=self._maintenance_loop,
                                                 name="dakera-maintenance", daemon=True)
            self._maintenance.start()
        except BaseException as exc:  # surfaced by wait_ready() and the readiness probe
            log.error("start-up failed: %s", exc)
            self._failed = exc

    def _open(self, embedder: Embedder) -> Parts:
        """Open the store and the indexes and compose the parts over them."""
        s = self.settings
        store = open_store(s.db_path, dimension=embedder.preset.dimension,
                           model_id=embedder.model_id, synchronous=s.sqlite_synchronous,
                           on_commit=self.metrics.observe_commit, url=s.database_url,
                           sentence_cache_bytes=s.recall_sentence_cache_mb << 20)
        try:
            # The database's own search (PostgreSQL), else this process's indexes (SQLite).
            indexes: Indexes | None = store.shared_indexes()
            if indexes is None:
                indexes = IndexRegistry(store.vectors, s.index_dir, embedder.model_id,
                                        s.hnsw_ef, lambda fn: store.write(lambda tx: fn()),
                                        texts=store.vectors)
            indexes.open_all(background=True)
            # Events of every server on the database (PostgreSQL); None: this one's only.
            self.events.relay = store.relay_events(self.events.deliver)
            namespace_indexes: Indexes | None = store.shared_indexes(namespaces=True)
            if namespace_indexes is None:
                namespace_indexes = IndexRegistry(
                    store.namespace_vectors, s.namespace_index_dir, NAMESPACE_INDEX_MODEL,
                    s.hnsw_ef, lambda fn: store.write(lambda tx: fn()))
            namespace_indexes.open_all(background=True)
            self.metrics.watch(store, indexes)
            parts = compose(s, self.now, store, indexes, namespace_indexes, embedder,
                            self.events, self.metrics, self.uptime, self.schedule,
                            self.restores)
            parts.transfer.recover()
            parts.backups.recover()
        except BaseException:
            store.close()
            raise
        return parts

    @property
    def ready(self) -> bool:
        return self._parts is not None

    @property
    def failure(self) -> BaseException | None:
        return self._failed

    def parts(self) -> Parts:
        parts = self._parts
        if parts is None:
            if self._restoring:
                raise ServiceUnavailableError("restoring a backup", retry_after=5)
            if self._failed is not None:
                raise ServiceUnavailableError(f"start-up failed: {self._failed}", retry_after=5)
            raise ServiceUnavailableError("loading models", retry_after=1)
        return parts

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Finish queued writes, save changed indexes, release the data dir: within
        `timeout` seconds whatever the disk does. What cannot be done by then is failed
        (queued writes answer an error; unsaved indexes are rebuilt from the database's
        index log at the next start): every acknowledged write is already committed."""
        if self._closed.is_set():
            return
        self._closed.set()
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        if self._loader is not None:
            self._loader.join(left())  # a model still loading is left behind (daemon)
        if self._maintenance is not None:
            self._maintenance.join(left() / 4)
        # A restore in progress finishes first (within the budget: else it is left behind).
        upkeep = self._upkeep.acquire(timeout=left() / 2)
        try:
            parts = self._parts
            if parts is not None:
                self._close_parts(parts, deadline, save=True)
        finally:
            if upkeep:
                self._upkeep.release()
        self._lock.release()

    def _close_parts(self, parts: Parts, deadline: float, *, save: bool) -> None:
        """Stop the parts' threads, finish queued writes, save the indexes (when they are
        kept), close the store: by `deadline` (a time.monotonic()), whatever the disk does."""

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        parts.indexes.close(0)
        parts.namespace_indexes.close(0)
        parts.transfer.close()
        parts.access.close(left() / 4)
        if parts.store.write_fault() is None:  # key usage times: only when writes work
            _bounded(parts.keys.flush_usage, left() / 4, "key usage")
        try:  # drain the queue (the access statistics included)
            parts.store.submit(lambda tx: None).result(left() / 2)
        except Exception as exc:
            log.warning("shutting down while writes fail: %s", _short(exc))
        if save and parts.store.write_fault() is None:
            try:
                self._save_indexes(parts, time.monotonic() + left() * 3 / 4)
            except Exception as exc:
                log.warning("indexes not saved at shutdown (rebuilt from the index log "
                            "at the next start): %s", _short(exc))
        parts.store.close(left())
        log.info("closed %s", parts.store.location)

    # -- requests in flight, and the database swap of a restore ----------------------------

    @contextlib.contextmanager
    def activity(self) -> Iterator[None]:
        """Count a request while it runs: a restore waits for those in flight to finish."""
        with self._inflight_changed:
            self._inflight += 1
        try:
            yield
        finally:
            with self._inflight_changed:
                self._inflight -= 1
                self._inflight_changed.notify_all()

    def _swap_database(self, prepared: Path, drain_secs: float = 30.0) -> None:
        """Put a prepared database file (migrated, fsynced, beside the live one) in place of
        the live database: new requests answer 503 while those in flight finish; the store
        is closed, the index files dropped (a cache: rebuilt), the file renamed over the
        live one (atomic), and the parts composed again over it."""
        with self._upkeep:
            parts = self.parts()
            self._restoring = True
            self._parts = None
            try:
                with self._inflight_changed:
                    if not self._inflight_changed.wait_for(lambda: self._inflight == 0,
                                                           drain_secs):
                        log.warning("restore: %d request(s) still running after %.0fs; "
                                    "closing the store under them", self._inflight, drain_secs)
                self._close_parts(parts, time.monotonic() + CLOSE_TIMEOUT, save=False)
                live = self.settings.db_path
                for path in (*_index_files(self.settings.index_dir),
                             *_index_files(self.settings.namespace_index_dir)):
                    path.unlink(missing_ok=True)
                remove_sidecars(live)
                os.replace(prepared, live)
                fsync_dir(live.parent)
                try:
                    self._parts = self._open(parts.embedder)
                except BaseException as exc:
                    self._failed = exc
                    log.error("the restored database cannot be opened: %s", exc)
                    raise
            finally:
                self._restoring = False

    # -- upkeep -------------------------------------------------------------------------

    def save_indexes(self, deadline: float | None = None) -> int:
        """Save changed indexes, then drop the log entries they now contain (by `deadline`,
        a time.monotonic(), if given)."""
        parts = self._parts
        return 0 if parts is None else self._save_indexes(parts, deadline)

    @staticmethod
    def _save_indexes(parts: Parts, deadline: float | None) -> int:
        saved = parts.indexes.save_dirty(deadline)
        for agent_id, seq in saved:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            parts.store.submit(partial(_trim_log, agent_id=agent_id, upto_seq=seq)).result(wait)
        saved_ns = parts.namespace_indexes.save_dirty(deadline)
        for namespace, seq in saved_ns:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            parts.store.submit(partial(_trim_namespace_log, namespace=namespace,
                                       upto_seq=seq)).result(wait)
        return len(saved) + len(saved_ns)

    def probe_storage(self) -> None:
        """While writes fail, try a small one: the first that commits clears the fault, so
        readiness recovers without waiting for a client's write."""
        store = self.parts().store
        if store.write_fault() is not None:
            now = self.now()
            store.write(lambda tx: tx.meta.set("write_probe", now))

    def flush_access(self) -> None:
        """Write pending recall statistics (and their reinforcement) now."""
        parts = self.parts()
        parts.access.flush()
        parts.store.write(lambda tx: None)

    def maintenance_tasks(self) -> list[tuple[str, float, Callable[[], object]]]:
        """(name, interval in seconds, task) run by the maintenance thread. Each task looks
        the parts up when it runs (a restore replaces them)."""
        once = self._if_leading
        tasks: list[tuple[str, float, Callable[[], object]]] = [
            ("probe storage", 2, self.probe_storage),
            ("save indexes", self.settings.index_save_interval, self.save_indexes),
            ("end idle sessions", 60, once(lambda: self.parts().sessions.expire_idle())),
            ("remove expired memories", 60,
             once(lambda: self.parts().decay.purge_expired())),
            ("compact indexes", 60, lambda: self.parts().memories.compact_indexes()),
            ("autopilot", 60, once(lambda: self.parts().autopilot.run_due())),
            ("compact namespace indexes", 60,
             lambda: self.parts().namespace_indexes.compact()),
            ("remove expired namespace items", 60,
             once(lambda: self.parts().vectors.purge_expired())),
            ("save key usage", 30, lambda: self.parts().keys.flush_usage()),
            ("scheduled backup", 60, once(lambda: self.parts().backups.run_schedule()))]
        if self.settings.decay_interval > 0:
            tasks.append(("decay", self.settings.decay_interval,
                          once(lambda: self.parts().decay.run())))
        return tasks

    def _if_leading(self, task: Callable[[], object]) -> Callable[[], object]:
        """Work done once per database: run by the one server that leads (always this one
        with SQLite; on PostgreSQL the holder of the leader's lock, see Store.leads)."""

        def run() -> object:
            return task() if self.parts().store.leads() else None

        return run

    def _maintenance_loop(self) -> None:
        tasks = self.maintenance_tasks()
        due = {name: time.monotonic() + interval for name, interval, _ in tasks}
        while not self._closed.wait(max(0.1, min(due.values()) - time.monotonic())):
            for name, interval, task in tasks:
                if time.monotonic() >= due[name] and not self._closed.is_set():
                    try:
                        with self._upkeep:
                            task()
                    except StorageError as exc:  # the writer logged it once already
                        log.debug("%s failed: %s", name, exc)
                    except ServiceUnavailableError:  # restoring, or start-up failed
                        pass
                    except Exception:
                        log.exception("%s failed", name)
                    due[name] = time.monotonic() + interval

    def check_writer(self, timeout: float) -> None:
        """Raise unless an empty write job commits within `timeout` seconds: the writer
        thread is alive and not stuck (the systemd watchdog's proof of life)."""
        self.parts().store.submit(lambda tx: None).result(timeout)

    # -- health -------------------------------------------------------------------------

    def uptime(self) -> int:
        return int(time.monotonic() - self._started)

    def readiness_checks(self) -> dict[str, dict[str, str]]:
        """Each check's status ("ok", "degraded": reads work but writes fail, "error") and,
        when not ok, a short reason (the full error is in the server's log)."""
        parts = self._parts
        checks = {"model": {"status": "ok", "model": parts.embedder.model_id}
                  if parts else {"status": "loading"}}
        store = self.parts().store
        try:
            store.ping()
        except Exception as exc:
            log.warning("readiness: the database cannot be read: %s", exc)
            checks["storage"] = {"status": "error", "reason": "database unreadable"}
            return checks
        fault = store.write_fault()
        checks["storage"] = ({"status": "ok"} if fault is None else
                             {"status": "degraded", "reason": f"writes fail: {fault.reason}"})
        rebuilding = len(parts.indexes.rebuilding()) if parts else 0
        checks["indexes"] = ({"status": "ok"} if not rebuilding else
                             {"status": "ok", "rebuilding": str(rebuilding)})
        return checks

    def degraded(self) -> str | None:
        """Why the service is degraded (a short reason), or None."""
        if self._parts is None:
            return None
        fault = self._parts.store.write_fault()
        return None if fault is None else f"writes fail: {fault.reason}"


def _index_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir()
            if p.suffix in (".hnsw", ".flat", ".json", ".bm25", ".tmp")]


__all__ = ["Parts", "Service", "compose"]


def _described_preset(settings: Settings) -> Preset:
    """The model as its preset describes it; a bad preset.json fails the model's load (the
    server answers 503 with the reason and readiness fails), not the process."""
    try:
        return resolve(settings.embedding_model, Path(settings.models_dir))
    except PresetError:
        return Preset(settings.embedding_model, (), 0, 0)
