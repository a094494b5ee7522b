"""Namespaces (the contract's §2.1): data namespaces of raw vectors and text, and agents'
namespaces `_dakera_agent_<id>`, which are views of the agents' memories.

A data namespace declares a dimension and a distance (cosine, dot_product, euclidean); it
is made by POST /v1/namespaces, by PUT (configure, an upsert), or by the first upsert into
it. Deleting one removes everything in it in one transaction; its vector index (a cache)
is dropped after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import validate
from app.embed import Preset
from app.errors import ConflictError, NamespaceNotFoundError, ValidationError
from app.models import DISTANCES, Indexes, Namespace
from app.service.agents import AGENT_NAMESPACE_PREFIX
from app.store import Store, Tx

DISTANCE_ALIASES = {"cosine": "cosine", "dot": "dot_product", "dot_product": "dot_product",
                    "dotproduct": "dot_product", "ip": "dot_product",
                    "inner_product": "dot_product", "euclidean": "euclidean",
                    "l2": "euclidean", "euclid": "euclidean"}
INDEX_TYPES = ("hnsw", "flat")


def distance(value: Any, field: str = "distance") -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in DISTANCE_ALIASES:
        return DISTANCE_ALIASES[value.lower()]
    raise ValidationError(f"'{field}' must be one of {', '.join(DISTANCES)} (also dot, l2)")


def is_agent_namespace(name: str) -> bool:
    return name.startswith(AGENT_NAMESPACE_PREFIX)


class Namespaces:
    def __init__(self, store: Store, indexes: Indexes, memory_indexes: Indexes,
                 preset: Preset, now: Callable[[], int]) -> None:
        self.db = store
        self.indexes = indexes  # the namespaces' vector indexes
        self.memory_indexes = memory_indexes
        self.preset = preset
        self.now = now

    # -- reads ----------------------------------------------------------------------------

    def all(self) -> dict[str, Any]:
        """Names of every namespace, with their kinds (agent or data)."""
        kinds = {ns.name: "data" for ns in self.db.namespaces.all()}
        for agent in self.db.agents.overview():
            kinds[AGENT_NAMESPACE_PREFIX + agent["agent_id"]] = "agent"
        names = sorted(kinds)
        return {"namespaces": names, "kinds": {n: kinds[n] for n in names}}

    def require(self, name: Any) -> Namespace:
        """The data namespace, or 404 NAMESPACE_NOT_FOUND."""
        if not isinstance(name, str):
            raise ValidationError("the namespace must be a string")
        ns = self.db.namespaces.get(name)
        if ns is None:
            raise NamespaceNotFoundError(name)
        return ns

    def agent(self, name: str) -> str | None:
        """The agent an agent namespace belongs to (None for other names); 404 when the
        agent has never been created."""
        if not is_agent_namespace(name):
            return None
        agent_id = name.removeprefix(AGENT_NAMESPACE_PREFIX)
        if not self.db.agents.exists(agent_id):
            raise NamespaceNotFoundError(name)
        return agent_id

    def describe(self, name: Any) -> dict[str, Any]:
        """GET /v1/namespaces/{ns}: what it holds (NamespaceInfo and IndexStats read it)."""
        if not isinstance(name, str):
            raise ValidationError("the namespace must be a string")
        agent = self.agent(name)
        now = self.now()
        if agent is not None:
            stats = self.db.agents.stats(agent, now)
            count = int(stats["total_memories"])
            index = self.memory_indexes.find(agent)
            return {"namespace": name, "name": name, "kind": "agent", "agent_id": agent,
                    "vector_count": count, "dimension": self.preset.dimension,
                    "distance": "cosine", "index_type": "hnsw",
                    "model": self.preset.aliases[0] if self.preset.aliases else self.preset.name,
                    "indexed_vectors": 0 if index is None else len(index),
                    "estimated_storage_bytes": count * (4 * self.preset.dimension),
                    "document_count": count}
        ns = self.require(name)
        counts = self.db.namespaces.stats(name, now)
        index = self.indexes.find(name) if counts["vector_count"] else None
        return {**self._info(ns), "kind": "data", "vector_count": counts["vector_count"],
                "document_count": counts["document_count"],
                "indexed_vectors": 0 if index is None else len(index),
                "estimated_storage_bytes": counts["vector_bytes"] + counts["other_bytes"],
                "metadata": ns.metadata, "model": ns.model,
                "created_at": ns.created_at, "updated_at": ns.updated_at}

    def index_stats(self, reaches: Callable[[str], bool]) -> dict[str, Any]:
        """GET /admin/indexes/stats: each namespace's description (those `reaches` takes)."""
        names = [n for n in self.all()["namespaces"] if reaches(n)]
        found: dict[str, Any] = {}
        for name in names:
            try:
                found[name] = self.describe(name)
            except NamespaceNotFoundError:  # deleted meanwhile
                continue
        return {"namespaces": found, "total": len(found)}

    @staticmethod
    def _info(ns: Namespace) -> dict[str, Any]:
        return {"namespace": ns.name, "name": ns.name, "dimension": ns.dimension,
                "distance": ns.distance, "index_type": ns.index_type}

    # -- writes ---------------------------------------------------------------------------

    def create(self, name: Any, dimension: Any, *, distance_: Any = None,
               index_type: Any = None, metadata: Any = None) -> dict[str, Any]:
        """POST /v1/namespaces: a new data namespace; 409 when the name is taken."""
        ns_name = validate.namespace(name, "name")
        dim = validate.dimension(dimension)
        dist = distance(distance_) or "cosine"
        kind = validate.choice(index_type, INDEX_TYPES, "index_type") or "hnsw"
        meta = validate.metadata(metadata)
        now = self.now()
        ns = Namespace(name=ns_name, dimension=dim, distance=dist, index_type=kind,
                       metadata=meta, created_at=now, updated_at=now)

        def job(tx: Tx) -> None:
            if tx.namespaces.get(ns_name) is not None:
                raise ConflictError(f"namespace {ns_name!r} already exists (PUT "
                                    f"/v1/namespaces/{ns_name} configures it)")
            tx.namespaces.create(ns)

        self.db.write(job)
        return {**self._info(ns), "created": True}

    def configure(self, name: Any, dimension: Any, distance_: Any = None) -> dict[str, Any]:
        """PUT /v1/namespaces/{ns}: create it, or change its distance; its dimension is
        fixed once set (400 DIMENSION_MISMATCH)."""
        ns_name = self._writable(name)
        dim = validate.dimension(dimension)
        dist = distance(distance_)
        now = self.now()

        def job(tx: Tx) -> tuple[bool, Namespace, bool]:
            ns = tx.namespaces.get(ns_name)
            if ns is None:
                ns = Namespace(name=ns_name, dimension=dim, distance=dist or "cosine",
                               created_at=now, updated_at=now)
                tx.namespaces.create(ns)
                return True, ns, False
            if ns.dimension is not None and ns.dimension != dim:
                raise ValidationError(f"namespace {ns_name!r} holds {ns.dimension}-dimensional "
                                      f"vectors; its dimension cannot change to {dim}",
                                      code="DIMENSION_MISMATCH")
            changed = dist is not None and dist != ns.distance
            tx.namespaces.configure(ns_name, dimension=dim, distance=dist, now=now)
            ns.dimension, ns.distance = dim, dist or ns.distance
            return False, ns, changed

        def after(result: tuple[bool, Namespace, bool]) -> None:
            if result[2]:  # a new distance: the index is rebuilt on next use
                self.indexes.drop(ns_name)

        created, ns, _ = self.db.write(job, after)
        return {**self._info(ns), "created": created}

    def delete(self, name: Any) -> dict[str, Any]:
        """Delete a data namespace and everything in it, atomically."""
        ns_name = self._writable(name)

        def job(tx: Tx) -> int:
            if tx.namespaces.get(ns_name) is None:
                raise NamespaceNotFoundError(ns_name)
            return tx.namespaces.drop(ns_name)

        deleted = self.db.write(job, lambda _: self.indexes.drop(ns_name))
        return {"namespace": ns_name, "deleted": True, "items_deleted": deleted}

    def _writable(self, name: Any) -> str:
        if isinstance(name, str) and is_agent_namespace(name):
            raise ValidationError(f"{name!r} is an agent namespace: it holds the agent's "
                                  "memories, written through /v1/memory/* (this route is "
                                  "for data namespaces)")
        return validate.namespace(name)

    def writable(self, name: Any) -> str:
        """A data namespace name a write may use (agent namespaces are read-only here)."""
        return self._writable(name)
