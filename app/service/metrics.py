"""Metrics: Prometheus series (official client, one registry per service) and the rolling
windows behind the KPIs.

Hooks are cheap on purpose (a counter increment, a histogram observation, an append to a
bounded window); what costs a query (memories per agent, index sizes, the writer's queue)
is read at scrape time by a collector. Label values are bounded: HTTP routes by template
(never raw paths), per-agent series only for the DAKERA_METRICS_TOP_AGENTS agents with the
most memories.
"""

from __future__ import annotations

import platform
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app import __version__
from app.config import Settings
from app.models import Indexes
from app.service.events import EventBus
from app.store import Store

disable_created_metrics()  # no *_created series: half the series, nothing lost here

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of requests no route answered (404, 405)
RECALL_STAGES = ("embed", "vector", "bm25", "fusion", "load", "neighbourhood")
RECALL_ROUTE = "/v1/memory/recall"
STORE_ROUTE = "/v1/memory/store"
WINDOW_SECS = 60.0
WINDOW_SIZE = 4096  # samples kept per KPI window (the last minute, at most this many)
RETENTION_HOURS = 7 * 24

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                 0.25, 1.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)


class Window:
    """The last minute of samples (at most WINDOW_SIZE), for percentiles and rates."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=WINDOW_SIZE)
        self._clock = clock

    def add(self, value: float) -> None:
        self._samples.append((self._clock(), value))

    def values(self) -> list[float]:
        since = self._clock() - WINDOW_SECS
        return [v for t, v in list(self._samples) if t >= since]

    def percentile(self, q: float) -> float:
        values = sorted(self.values())
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(q * len(values)))]


class Metrics:
    def __init__(self, settings: Settings, *, model: str, ready: Callable[[], bool],
                 uptime: Callable[[], float], events: EventBus,
                 now: Callable[[], int]) -> None:
        self.enabled = settings.metrics
        self.top_agents = settings.metrics_top_agents
        self.registry = r = CollectorRegistry()
        self._store: Store | None = None
        self._indexes: Indexes | None = None
        self._events = events

        self.requests = Counter("dakera_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=r)
        self._request_children: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}
        self.request_seconds = Histogram(
            "dakera_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["method", "route"], buckets=HTTP_BUCKETS, registry=r)
        stage = Histogram("dakera_recall_stage_duration_seconds",
                          "Time spent in each recall stage: embed (the query), vector "
                          "(nearest neighbours), bm25 (full text and conversation context), "
                          "fusion (exact cosines of every candidate, fusion), load (memories "
                          "and weighting), neighbourhood (session context).",
                          ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self._stages = {name: stage.labels(name) for name in RECALL_STAGES}
        recalls = Counter("dakera_recalls", "Recall and search requests served.", ["kind"],
                          registry=r)
        self._recalls = {kind: recalls.labels(kind) for kind in ("recall", "search")}
        self.served = {"recall": 0, "search": 0}  # since the start (the overview page)
        self.recall_hits = Counter("dakera_recall_results", "Memories returned by recall and "
                                   "search.", registry=r)
        stored = Counter("dakera_memories_stored", "Memories written by store and batch "
                         "store (duplicates merged into an existing memory included).",
                         ["kind"], registry=r)
        self._stored = {kind: stored.labels(kind) for kind in ("single", "batch")}
        self.store_batch_size = Histogram("dakera_store_batch_size",
                                          "Memories per batch store request.",
                                          buckets=BATCH_BUCKETS, registry=r)
        self.deduplicated = Counter("dakera_memories_deduplicated", "Stored memories merged "
                                    "into a near-identical existing one.", registry=r)
        self.deleted = Counter("dakera_memories_deleted", "Memories deleted, by reason "
                               "(forget, decay, expired).", ["reason"], registry=r)
        self.commit_seconds = Histogram("dakera_writer_commit_duration_seconds",
                                        "Time of one writer transaction, BEGIN to COMMIT "
                                        "(a group of jobs).", buckets=COMMIT_BUCKETS,
                                        registry=r)
        self.commit_jobs = Counter("dakera_writer_jobs", "Write jobs committed.", registry=r)
        self.decay_passes = Counter("dakera_decay_passes", "Decay passes run.", registry=r)
        self.decay_seconds = Histogram("dakera_decay_pass_duration_seconds",
                                       "Time of one decay pass.",
                                       buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
                                       registry=r)
        Info("dakera_build", "The running build.", registry=r).info({
            "version": __version__, "python": platform.python_version(), "model": model})
        Gauge("dakera_ready", "1 once the model is loaded and the indexes are open.",
              registry=r).set_function(lambda: 1.0 if ready() else 0.0)
        Gauge("dakera_uptime_seconds", "Seconds since the service started.",
              registry=r).set_function(uptime)
        ProcessCollector(registry=r)  # RSS, open files, CPU, start time (Linux)
        PlatformCollector(registry=r)
        r.register(_LiveCollector(self))

        self.recall_window = Window()
        self.store_window = Window()
        self.error_window = Window()  # 1 per 5xx answer, 0 per other answer
        self._now = now
        self._started_at = now()
        self._lock = threading.Lock()
        self._stored_by_hour: dict[int, int] = {}  # for the retention KPI: the last 7 days

    def watch(self, store: Store, indexes: Indexes) -> None:
        """The started store and indexes, read at scrape time."""
        self._store, self._indexes = store, indexes

    # -- hooks ----------------------------------------------------------------------------

    def observe_request(self, method: str, route: str | None, status: int,
                        seconds: float | None) -> None:
        """One answered request; seconds None: not timed (an event stream)."""
        if not self.enabled:
            return
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:  # bounded: methods x route templates x statuses
            label_method = method if method in METHODS else "OTHER"
            label_route = route or UNMATCHED
            children = (self.requests.labels(label_method, label_route, str(status)),
                        self.request_seconds.labels(label_method, label_route))
            if method in METHODS:
                self._request_children[key] = children
        children[0].inc()
        self.error_window.add(1.0 if status >= 500 else 0.0)
        if seconds is None:
            return
        children[1].observe(seconds)
        if status < 400:
            if route == RECALL_ROUTE:
                self.recall_window.add(seconds)
            elif route == STORE_ROUTE:
                self.store_window.add(seconds)

    def observe_recall(self, stages: dict[str, float], hits: int, *, search: bool) -> None:
        if not self.enabled:
            return
        for name, seconds in stages.items():
            child = self._stages.get(name)
            if child is not None:
                child.observe(seconds)
        kind = "search" if search else "recall"
        self._recalls[kind].inc()
        self.served[kind] += 1
        self.recall_hits.inc(hits)

    def observe_store(self, count: int, deduplicated: int, *, batch: bool) -> None:
        if not self.enabled:
            return
        self._stored["batch" if batch else "single"].inc(count)
        hour = self._now() // 3600
        with self._lock:
            self._stored_by_hour[hour] = self._stored_by_hour.get(hour, 0) + count
            if len(self._stored_by_hour) > RETENTION_HOURS + 1:
                for old in [h for h in self._stored_by_hour if h < hour - RETENTION_HOURS]:
                    del self._stored_by_hour[old]
        if batch:
            self.store_batch_size.observe(count)
        if deduplicated:
            self.deduplicated.inc(deduplicated)

    def observe_delete(self, count: int, reason: str) -> None:
        if self.enabled and count:
            self.deleted.labels(reason).inc(count)

    def observe_commit(self, seconds: float, jobs: int) -> None:
        if self.enabled:
            self.commit_seconds.observe(seconds)
            self.commit_jobs.inc(jobs)

    def observe_decay(self, seconds: float) -> None:
        if self.enabled:
            self.decay_passes.inc()
            self.decay_seconds.observe(seconds)

    # -- reading --------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)

    def live(self) -> Iterator[Metric]:
        """The series read at scrape time from the started store, indexes and event bus."""
        bus = self._events
        yield _gauge("dakera_event_subscribers", "Event streams open.", bus.subscribers)
        yield _counter("dakera_events_published", "Events published while a stream was "
                       "open.", bus.published)
        yield _counter("dakera_events_dropped", "Event deliveries dropped because a "
                       "stream's client fell behind (it was sent stream_lagged).", bus.dropped)
        store, indexes = self._store, self._indexes
        if store is None or indexes is None:
            return
        yield _gauge("dakera_writer_queue_depth", "Write jobs waiting for the writer.",
                     store.pending_writes())
        fault = store.write_fault()
        yield _labelled("dakera_storage_degraded", "1 while writes fail, by reason (disk "
                        "full, read-only filesystem, storage error, writer stalled).",
                        "reason", [] if fault is None else [(fault.reason, 1)])
        yield _counter("dakera_writes_refused", "Writes refused because the disk failed "
                       "them (full, read-only, I/O error) since start.",
                       store.writes_refused())
        counts = store.agents.memory_counts()
        yield _gauge("dakera_agents", "Agents holding memories.", len(counts))
        yield _gauge("dakera_memories", "Memories stored, every agent.", sum(counts.values()))
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:self.top_agents]
        yield _labelled("dakera_top_agent_memories", "Memories of the agents with the most "
                        "(DAKERA_METRICS_TOP_AGENTS of them).", "agent_id", top)
        sizes = indexes.stats()
        yield _gauge("dakera_indexes_loaded", "Agent vector indexes in memory.", len(sizes))
        yield _gauge("dakera_index_vectors", "Vectors in the loaded indexes, every agent "
                     "(deleted slots not counted).", sum(sizes.values()))
        yield _labelled("dakera_top_agent_index_vectors", "Indexed vectors of the agents "
                        "with the most memories.", "agent_id",
                        [(agent, sizes.get(agent, 0)) for agent, _ in top])
        builds = CounterMetricFamily(
            "dakera_index_builds", "Vector indexes built from the stored vectors, by "
            "occasion: start (no usable saved index at start-up), first_use (an agent's "
            "first memory since start), compaction (mostly deleted slots).", labels=["occasion"])
        for occasion, count in indexes.builds.items():
            builds.add_metric([occasion], count)
        yield builds

    def stored_since(self) -> tuple[int, int]:
        """(since, memories stored since then): the last 7 days, or since the service
        started if that is later (the retention KPI)."""
        hour = self._now() // 3600
        with self._lock:
            stored = sum(n for h, n in self._stored_by_hour.items()
                         if h > hour - RETENTION_HOURS)
        return max(self._started_at, (hour - RETENTION_HOURS + 1) * 3600), stored

    def recall_summary(self) -> dict[str, float]:
        """Recall latency over HTTP in the last minute (milliseconds: p50, p95, p99 and how
        many), and the recalls and searches served since the start."""
        window = self.recall_window
        return {"p50_ms": round(window.percentile(0.5) * 1000, 2),
                "p95_ms": round(window.percentile(0.95) * 1000, 2),
                "p99_ms": round(window.percentile(0.99) * 1000, 2),
                "last_minute": len(window.values()),
                "recalls": self.served["recall"], "searches": self.served["search"]}

    def kpis(self) -> dict[str, float]:
        """The latency and error KPIs of the last minute (milliseconds, percent)."""
        errors = self.error_window.values()
        return {
            "recall_latency_p50_ms": round(self.recall_window.percentile(0.5) * 1000, 3),
            "recall_latency_p99_ms": round(self.recall_window.percentile(0.99) * 1000, 3),
            "store_latency_p50_ms": round(self.store_window.percentile(0.5) * 1000, 3),
            "api_error_rate_5xx_pct": round(100.0 * sum(errors) / len(errors), 3)
            if errors else 0.0,
        }


class _LiveCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self.metrics.live())

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time: nothing to check when registering


def _gauge(name: str, doc: str, value: float) -> Metric:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(name, doc, value=value)


def _labelled(name: str, doc: str, label: str, values: list[tuple[str, Any]]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family


__all__ = ["CONTENT_TYPE", "Metrics", "Window"]
