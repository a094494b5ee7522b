"""Raw vectors in a data namespace: upsert, query (one or a batch), delete by ids or by
filter, bulk metadata update, count and export (the contract's §2.1 and §3.4 export).

Queries use the namespace's hnswlib index (a cache of the stored vectors, kept in step after
each commit); a filter that leaves at most DAKERA_EXACT_SEARCH_LIMIT vectors is answered by
exact search over them instead, and a broader one by searching the index for vectors that
pass it. Scores are higher-is-better: cosine similarity, dot product, or 1 / (1 + euclidean
distance).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from app import filter_dsl, validate
from app.config import Settings
from app.errors import QuotaExceededError, ValidationError
from app.models import Indexes, Item, Namespace
from app.service.agent_views import AgentViews
from app.service.namespaces import Namespaces, distance
from app.store import ItemWrite, Store, Tx

MAX_UPSERT = 10_000
MAX_QUERIES = 100
MAX_EXPORT = 10_000
DELETE_BATCH = 1000
CONSISTENCY = ("strong", "eventual", "bounded_staleness")


def to_vector(values: Any, field: str, dimension: int | None = None) -> np.ndarray:
    """A float32 vector from a list of numbers: finite, at most 4096 values, and of the
    namespace's dimension when it has one (400 otherwise)."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ValidationError(f"'{field}' must be a non-empty list of numbers",
                              code="EMPTY_VECTOR" if values == [] else None)
    if len(values) > validate.MAX_DIMENSION:
        raise ValidationError(f"'{field}' has {len(values)} values; at most "
                              f"{validate.MAX_DIMENSION} dimensions are supported",
                              code="DIMENSION_MISMATCH")
    try:
        with np.errstate(over="ignore"):
            vector = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValidationError(f"'{field}' must hold numbers only") from None
    if vector.ndim != 1:
        raise ValidationError(f"'{field}' must be a flat list of numbers")
    if not np.isfinite(vector).all():
        raise ValidationError(f"'{field}' holds NaN, an infinity or a number too large for "
                              "float32")
    if dimension is not None and len(vector) != dimension:
        raise ValidationError(f"'{field}' has {len(vector)} dimensions; the namespace holds "
                              f"{dimension}-dimensional vectors", code="DIMENSION_MISMATCH")
    return vector


def item_metadata(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"'{field}' must be an object")
    return dict(value)


@dataclass
class Hit:
    rowid: int
    score: float


class Vectors:
    def __init__(self, store: Store, indexes: Indexes, namespaces: Namespaces,
                 agent_views: AgentViews, settings: Settings, now: Callable[[], int]) -> None:
        self.db = store
        self.indexes = indexes
        self.namespaces = namespaces
        self.agent_views = agent_views
        self.settings = settings
        self.now = now

    # -- writes ---------------------------------------------------------------------------

    def upsert(self, namespace: Any, vectors: Any) -> dict[str, Any]:
        """Insert or replace vectors by id (metadata given replaces the stored metadata;
        a full-text document under the same id is kept). The first upsert into a missing
        namespace creates it with the vectors' dimension (cosine)."""
        name = self.namespaces.writable(namespace)
        if not isinstance(vectors, list) or not 1 <= len(vectors) <= MAX_UPSERT:
            raise ValidationError(f"'vectors' must hold 1 to {MAX_UPSERT} vectors")
        existing = self.db.namespaces.get(name)
        dim = existing.dimension if existing else None
        writes = []
        for i, v in enumerate(vectors):
            if not isinstance(v, Mapping):
                raise ValidationError(f"vectors[{i}] must be an object")
            vector = to_vector(v.get("values", v.get("vector")), f"vectors[{i}].values", dim)
            dim = len(vector)
            writes.append(ItemWrite(
                id=validate.item_id(v.get("id"), f"vectors[{i}].id"), vector=vector,
                metadata=item_metadata(v.get("metadata"), f"vectors[{i}].metadata"),
                expires_at=self.expiry(v.get("ttl_seconds"), f"vectors[{i}].ttl_seconds")))
        assert dim is not None
        self.write_items(name, writes, dim)
        return {"upserted_count": len(writes), "namespace": name}

    def expiry(self, ttl: Any, field: str) -> int | None:
        seconds = validate.ttl_seconds(ttl, field)
        return None if seconds is None else self.now() + seconds

    def write_items(self, name: str, writes: list[ItemWrite], dimension: int | None,
                    model: str | None = None) -> None:
        """Upsert items in one transaction: the namespace is created when missing (with
        `dimension`), its dimension is checked again inside it, and its size limit holds."""
        ids = [w.id for w in writes]
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise ValidationError(f"the request repeats ids: {', '.join(repeated[:10])}")
        now = self.now()
        limit = self.settings.namespace_max_vectors

        def job(tx: Tx) -> tuple[list[int], int]:
            ns = tx.namespaces.get(name)
            if ns is None:
                tx.namespaces.create(Namespace(name=name, dimension=dimension, model=model,
                                               created_at=now, updated_at=now))
            elif dimension is not None and ns.dimension not in (None, dimension):
                raise ValidationError(f"namespace {name!r} holds {ns.dimension}-dimensional "
                                      f"vectors, not {dimension}", code="DIMENSION_MISMATCH")
            elif dimension is not None and (ns.dimension is None or
                                            (model is not None and ns.model is None)):
                tx.namespaces.configure(name, dimension=dimension, model=model, now=now)
            new = len(ids) - len(tx.namespaces.existing(name, ids))
            size = tx.namespaces.size(name)
            if new and size + new > limit:
                raise QuotaExceededError(
                    f"namespace {name!r} holds {size} items; {new} more would pass its limit "
                    f"of {limit}", details="DAKERA_NAMESPACE_MAX_VECTORS")
            return tx.namespaces.upsert(name, writes, now)

        vectors = {w.id: w.vector for w in writes if w.vector is not None}

        def after(result: tuple[list[int], int]) -> None:
            labels, seq = result
            if labels:
                stacked = np.stack([vectors[w.id] for w in writes if w.vector is not None])
                self.indexes.added(name, labels, stacked, (), seq)

        self.db.write(job, after)

    def delete(self, namespace: Any, ids: Any) -> dict[str, Any]:
        name = self.namespaces.writable(namespace)
        self.namespaces.require(name)
        if not isinstance(ids, list) or not ids:
            raise ValidationError("'ids' must be a non-empty list of ids")
        wanted = [validate.item_id(i, "ids[]") for i in ids]
        rowids = list(self.db.namespaces.existing(name, wanted).values())
        return {"deleted_count": self.delete_rowids(name, rowids)}

    def delete_rowids(self, name: str, rowids: list[int]) -> int:
        """Delete items in bounded transactions; their vectors leave the index after each."""
        deleted = 0
        for i in range(0, len(rowids), DELETE_BATCH):
            chunk = rowids[i:i + DELETE_BATCH]

            def after(result: tuple[list[int], int]) -> None:
                if result[0]:
                    self.indexes.deleted(name, result[0], result[1])

            self.db.write(partial(_delete, name=name, rowids=chunk), after)
            deleted += len(chunk)
        return deleted

    def purge_expired(self) -> int:
        """Delete namespace items whose TTL has passed (they are already hidden)."""
        by_ns: dict[str, list[int]] = {}
        for name, rowid in self.db.namespaces.expired(self.now(), 10_000):
            by_ns.setdefault(name, []).append(rowid)
        return sum(self.delete_rowids(name, rowids) for name, rowids in by_ns.items())

    def bulk_delete(self, namespace: Any, filter: Any) -> dict[str, Any]:
        name = self.namespaces.writable(namespace)
        self.namespaces.require(name)
        where = filter_dsl.parse(filter)
        if where is None:
            raise ValidationError("bulk delete needs a non-empty 'filter' (delete the "
                                  "namespace to remove everything)")
        rowids = self.db.namespaces.rowids(name, where, self.now())
        return {"deleted": self.delete_rowids(name, rowids), "failed": 0, "errors": []}

    def bulk_update(self, namespace: Any, filter: Any, update: Any) -> dict[str, Any]:
        """Merge `update` (metadata fields; null removes one) into the metadata of the
        vectors passing the filter. {"metadata": {...}} is accepted as well."""
        name = self.namespaces.writable(namespace)
        self.namespaces.require(name)
        where = filter_dsl.parse(filter)
        if where is None:
            raise ValidationError("bulk update needs a non-empty 'filter'")
        if not isinstance(update, Mapping) or not update:
            raise ValidationError("'update' must be a non-empty object of metadata fields")
        patch = dict(update["metadata"]) if set(update) == {"metadata"} and isinstance(
            update["metadata"], Mapping) else dict(update)
        now = self.now()

        def job(tx: Tx) -> int:
            return tx.namespaces.merge_metadata(tx.namespaces.rowids(name, where, now),
                                                patch, now)

        return {"updated": self.db.write(job), "failed": 0, "errors": []}

    # -- reads ----------------------------------------------------------------------------

    def count(self, namespace: Any, filter: Any = None) -> dict[str, Any]:
        name = namespace if isinstance(namespace, str) else ""
        where = filter_dsl.parse(filter)
        agent = self.namespaces.agent(name)
        if agent is not None:
            return {"count": self.agent_views.count(agent, where), "namespace": name}
        self.namespaces.require(name)
        return {"count": self.db.namespaces.count(name, where, self.now()), "namespace": name}

    def query(self, namespace: Any, vector: Any, *, top_k: Any = 10, filter: Any = None,
              include_vectors: Any = False, include_metadata: Any = True,
              distance_metric: Any = None, consistency: Any = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        agent = self.namespaces.agent(namespace) if isinstance(namespace, str) else None
        if agent is not None:  # the agent's memories, by cosine to the given vector
            qvec = to_vector(vector, "vector", self.namespaces.preset.dimension)
            found = self.agent_views.search(agent, "", validate.top_k(top_k),
                                            filter_dsl.parse(filter), routing="vector",
                                            vector=qvec)
            return {"results": [self.agent_views.result(h, include_metadata=include_metadata)
                                for h in found],
                    "search_time_ms": round((time.perf_counter() - t0) * 1000, 3)}
        ns = self.namespaces.require(namespace)
        hits, searched, items = self._query(ns, vector, top_k, filter, distance_metric,
                                            consistency, "vector")
        return {"results": [self.result(h, items[h.rowid], include_vectors, include_metadata)
                            for h in hits],
                "total_searched": searched,
                "search_time_ms": round((time.perf_counter() - t0) * 1000, 3)}

    def batch_query(self, namespace: Any, queries: Any) -> dict[str, Any]:
        ns = self.namespaces.require(namespace)
        if not isinstance(queries, list) or not 1 <= len(queries) <= MAX_QUERIES:
            raise ValidationError(f"'queries' must hold 1 to {MAX_QUERIES} queries")
        out = []
        for i, q in enumerate(queries):
            if not isinstance(q, Mapping):
                raise ValidationError(f"queries[{i}] must be an object")
            t0 = time.perf_counter()
            hits, searched, items = self._query(
                ns, q.get("vector"), q.get("top_k", 10), q.get("filter"),
                q.get("distance_metric"), q.get("consistency"), f"queries[{i}].vector")
            include_vectors = q.get("include_vectors", q.get("include_values", False))
            include_metadata = q.get("include_metadata", True)
            out.append({"results": [self.result(h, items[h.rowid], include_vectors,
                                                include_metadata) for h in hits],
                        "total_searched": searched,
                        "search_time_ms": round((time.perf_counter() - t0) * 1000, 3)})
        return {"results": out}

    def _query(self, ns: Namespace, vector: Any, top_k: Any, filter: Any, metric: Any,
               consistency: Any, field: str) -> tuple[list[Hit], int, dict[int, Item]]:
        k = validate.top_k(top_k)
        where = filter_dsl.parse(filter)
        validate.choice(consistency, CONSISTENCY, "consistency")
        qvec = to_vector(vector, field, ns.dimension)
        if ns.dimension is None:  # no vector stored yet
            return [], 0, {}
        now = self.now()
        hits, searched = self.search(ns, qvec, k, where, now, distance(metric, "distance_metric"))
        items = self.db.namespaces.by_rowids([h.rowid for h in hits], now)
        return [h for h in hits if h.rowid in items][:k], searched, items

    def search(self, ns: Namespace, qvec: np.ndarray, k: int, where: filter_dsl.Node | None,
               now: int, metric: str | None = None) -> tuple[list[Hit], int]:
        """The k best vectors for a query vector, best first, and how many were candidates.
        A few more than k may come back (expired vectors still indexed are dropped by the
        caller's load)."""
        metric = metric or ns.distance
        if where is not None or metric != ns.distance:
            total = self.db.namespaces.count(ns.name, where, now)
            if total <= self.settings.exact_search_limit or metric != ns.distance:
                labels, matrix = self.db.namespaces.vectors(ns.name, where, now)
                return exact(qvec, labels, matrix, metric, k), total
        index = self.indexes.find(ns.name)
        if index is None:
            return [], 0
        accept = None
        if where is not None:
            allowed = set(self.db.namespaces.rowids(ns.name, where, now, vectors_only=True))
            accept = allowed.__contains__
        labels, scores = index.search(qvec, k + 8, accept)
        return [Hit(int(label), index_score(float(s), metric))
                for label, s in zip(labels, scores, strict=True)], len(index)

    @staticmethod
    def result(hit: Hit, item: Item, include_vectors: Any, include_metadata: Any
               ) -> dict[str, Any]:
        out: dict[str, Any] = {"id": item.id, "score": round(hit.score, 6)}
        if include_metadata is not False:
            out["metadata"] = item.metadata
        if include_vectors is True and item.vector is not None:
            out["vector"] = [float(x) for x in item.vector]
        return out

    def export(self, namespace: Any, *, cursor: Any = None, filter: Any = None,
               include_vectors: Any = True, limit: Any = None) -> dict[str, Any]:
        """A page of the namespace's items in a stable order; `next_cursor` continues it
        (null at the end)."""
        ns = self.namespaces.require(namespace)
        where = filter_dsl.parse(filter)
        n = validate.limit(1000 if limit is None else limit, MAX_EXPORT)
        after = 0
        if cursor is not None:
            if not isinstance(cursor, str) or not cursor.isdigit():
                raise ValidationError("'cursor' must be a next_cursor from a previous export")
            after = int(cursor)
        items = self.db.namespaces.page(ns.name, where, self.now(), after, n + 1)
        more = len(items) > n
        items = items[:n]
        rows = []
        for item in items:
            row: dict[str, Any] = {"id": item.id, "metadata": item.metadata}
            if include_vectors is not False and item.vector is not None:
                row["values"] = row["vector"] = [float(x) for x in item.vector]
            if item.text is not None:
                row["text"] = item.text
            rows.append(row)
        return {"namespace": ns.name, "vectors": rows, "count": len(rows),
                "next_cursor": str(items[-1].rowid) if more and items else None}

    def fetch(self, namespace: Any, ids: Any, *, include_vectors: Any = True
              ) -> dict[str, Any]:
        """The items with these ids (those that exist), in the order asked."""
        ns = self.namespaces.require(namespace)
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_EXPORT:
            raise ValidationError(f"'ids' must hold 1 to {MAX_EXPORT} ids")
        wanted = [validate.item_id(i, "ids[]") for i in ids]
        found = self.db.namespaces.by_ids(ns.name, wanted, self.now())
        rows = []
        for i in wanted:
            item = found.get(i)
            if item is None:
                continue
            row: dict[str, Any] = {"id": item.id, "metadata": item.metadata}
            if include_vectors is not False and item.vector is not None:
                row["values"] = row["vector"] = [float(x) for x in item.vector]
            if item.text is not None:
                row["text"] = item.text
            rows.append(row)
        return {"namespace": ns.name, "vectors": rows,
                "not_found": [i for i in wanted if i not in found]}


def _delete(tx: Tx, name: str, rowids: list[int]) -> tuple[list[int], int]:
    return tx.namespaces.delete(name, rowids)


def index_score(score: float, metric: str) -> float:
    """An index score (AgentIndex.search) in the namespace's terms."""
    if metric == "euclidean":
        return 1.0 / (1.0 + float(np.sqrt(max(0.0, -score))))
    return score


def scores(qvec: np.ndarray, matrix: np.ndarray, metric: str) -> np.ndarray:
    """Higher-is-better scores of each row against the query."""
    if len(matrix) == 0:
        return np.empty(0, dtype=np.float32)
    if metric == "dot_product":
        return matrix @ qvec
    if metric == "euclidean":
        return 1.0 / (1.0 + np.linalg.norm(matrix - qvec, axis=1))
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(qvec)), 1e-12)
    return (matrix @ qvec) / np.maximum(norms, 1e-12)


def exact(qvec: np.ndarray, labels: np.ndarray, matrix: np.ndarray, metric: str,
          k: int) -> list[Hit]:
    s = scores(qvec, matrix, metric)
    order = np.argsort(-s, kind="stable")[:k + 8]
    return [Hit(int(labels[i]), float(s[i])) for i in order]
