"""Text in a namespace: documents embedded by the server's model (upsert-text, query-text,
batch-query-text), full-text search (FTS5 BM25 with English stemming) and hybrid search,
which fuses vector and BM25 scores with the memory recall's fusion (app/recall/fusion.py).

In an agent namespace these read the agent's memories (app/service/agent_views.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from app import filter_dsl, validate
from app.embed import Embedder
from app.errors import ValidationError
from app.models import Namespace
from app.recall.fusion import minmax
from app.recall.query import terms
from app.service.agent_views import AgentViews
from app.service.namespaces import Namespaces
from app.service.vectors import (
    MAX_QUERIES,
    MAX_UPSERT,
    Hit,
    Vectors,
    item_metadata,
    scores,
    to_vector,
)
from app.store import ItemWrite, Store

MAX_TEXT_BYTES = 100_000


def document_text(doc: Mapping[str, Any], i: int) -> str:
    value = doc.get("text", doc.get("content"))
    field = f"documents[{i}].text"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"'{field}' is required and must be a non-empty string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise ValidationError(f"'{field}' is longer than {MAX_TEXT_BYTES} bytes")
    return value


def weight(value: Any, default: float, field: str) -> float:
    if value is None:
        return default
    return validate.unit_float(value, field) or 0.0


class Texts:
    def __init__(self, store: Store, namespaces: Namespaces, vectors: Vectors,
                 agent_views: AgentViews, embedder: Embedder, candidates: int,
                 now: Callable[[], int]) -> None:
        self.db = store
        self.namespaces = namespaces
        self.vectors = vectors
        self.agent_views = agent_views
        self.embedder = embedder
        self.candidates = candidates
        self.now = now
        p = embedder.preset
        self.model = p.aliases[0] if p.aliases else p.name

    def _check_model(self, model: Any) -> None:
        p = self.embedder.preset
        if model is not None and model not in (p.name, *p.aliases):
            raise ValidationError(f"'model': this server embeds text with {self.model} "
                                  f"({p.name}) only")

    # -- embedded documents -----------------------------------------------------------------

    def upsert_text(self, namespace: Any, documents: Any, model: Any = None) -> dict[str, Any]:
        """Embed documents with the server's model and store them as vectors (the text is
        also indexed for full-text and hybrid search). A new namespace gets the model's
        dimension; an existing one must have it."""
        name = self.namespaces.writable(namespace)
        self._check_model(model)
        if not isinstance(documents, list) or not 1 <= len(documents) <= MAX_UPSERT:
            raise ValidationError(f"'documents' must hold 1 to {MAX_UPSERT} documents")
        texts, writes = [], []
        for i, doc in enumerate(documents):
            if not isinstance(doc, Mapping):
                raise ValidationError(f"documents[{i}] must be an object")
            text = document_text(doc, i)
            texts.append(text)
            writes.append(ItemWrite(
                id=validate.item_id(doc.get("id"), f"documents[{i}].id"), text=text,
                metadata=item_metadata(doc.get("metadata"), f"documents[{i}].metadata"),
                expires_at=self.vectors.expiry(doc.get("ttl_seconds"),
                                                f"documents[{i}].ttl_seconds")))
        dim = self.embedder.preset.dimension
        ns = self.db.namespaces.get(name)
        if ns is not None:
            self._same_model(ns)
        if ns is not None and ns.dimension not in (None, dim):
            raise ValidationError(f"namespace {name!r} holds {ns.dimension}-dimensional "
                                  f"vectors; {self.model} makes {dim}",
                                  code="DIMENSION_MISMATCH")
        t0 = time.perf_counter()
        embedded = self.embedder.embed(texts)
        embed_ms = (time.perf_counter() - t0) * 1000
        for w, vector in zip(writes, embedded, strict=True):
            w.vector = vector
        self.vectors.write_items(name, writes, dim, model=self.model)
        return {"upserted_count": len(writes), "tokens_processed": sum(
            len(t.split()) for t in texts), "model": self.model,
            "embedding_time_ms": round(embed_ms)}

    def query_text(self, namespace: Any, text: Any, *, top_k: Any = 10, filter: Any = None,
                   include_text: Any = True, include_vectors: Any = False,
                   model: Any = None) -> dict[str, Any]:
        out = self._text_queries(namespace, [validate.query(text, "text")], top_k, filter,
                                 include_text, include_vectors, model)
        return {**out, "results": out["results"][0]}

    def batch_query_text(self, namespace: Any, queries: Any, *, top_k: Any = 10,
                         filter: Any = None, include_vectors: Any = False,
                         model: Any = None) -> dict[str, Any]:
        if not isinstance(queries, list) or not 1 <= len(queries) <= MAX_QUERIES:
            raise ValidationError(f"'queries' must hold 1 to {MAX_QUERIES} texts")
        texts = [validate.query(q, f"queries[{i}]") for i, q in enumerate(queries)]
        return self._text_queries(namespace, texts, top_k, filter, True, include_vectors,
                                  model)

    def _text_queries(self, namespace: Any, texts: list[str], top_k: Any, filter: Any,
                      include_text: Any, include_vectors: Any, model: Any) -> dict[str, Any]:
        self._check_model(model)
        k = validate.top_k(top_k)
        where = filter_dsl.parse(filter)
        agent = self.namespaces.agent(namespace) if isinstance(namespace, str) else None
        ns = None if agent is not None else self.namespaces.require(namespace)
        t0 = time.perf_counter()
        qvecs = self.embedder.embed(texts, query=True)
        t1 = time.perf_counter()
        results = []
        for text, qvec in zip(texts, qvecs, strict=True):
            if agent is not None:
                hits = self.agent_views.search(agent, text, k, where, routing="vector",
                                               vector=qvec)
                results.append([self.agent_views.result(h, text_key="text") for h in hits])
                continue
            assert ns is not None
            results.append(self._vector_results(ns, qvec, k, where, include_text,
                                                include_vectors))
        t2 = time.perf_counter()
        return {"results": results, "model": self.model,
                "embedding_time_ms": round((t1 - t0) * 1000),
                "search_time_ms": round((t2 - t1) * 1000)}

    def _same_model(self, ns: Namespace) -> None:
        """Texts embedded by another model (before `dakera reindex` moved the server to
        this one) cannot be compared with this model's vectors."""
        if ns.model is not None and ns.model != self.model:
            raise ValidationError(f"namespace {ns.name!r} holds texts embedded by {ns.model}; "
                                  f"this server embeds with {self.model}: upsert the texts "
                                  "again into a new namespace", code="DIMENSION_MISMATCH")

    def _vector_results(self, ns: Namespace, qvec: np.ndarray, k: int,
                        where: filter_dsl.Node | None, include_text: Any,
                        include_vectors: Any) -> list[dict[str, Any]]:
        if ns.dimension is None:
            return []
        self._same_model(ns)
        if ns.dimension != len(qvec):
            raise ValidationError(f"namespace {ns.name!r} holds {ns.dimension}-dimensional "
                                  f"vectors; {self.model} makes {len(qvec)}",
                                  code="DIMENSION_MISMATCH")
        now = self.now()
        hits, _ = self.vectors.search(ns, qvec, k, where, now)
        items = self.db.namespaces.by_rowids([h.rowid for h in hits], now)
        out = []
        for h in [h for h in hits if h.rowid in items][:k]:
            row = self.vectors.result(h, items[h.rowid], include_vectors, True)
            if include_text is not False and items[h.rowid].text is not None:
                row["text"] = items[h.rowid].text
            out.append(row)
        return out

    # -- full-text ----------------------------------------------------------------------------

    def index_documents(self, namespace: Any, documents: Any) -> dict[str, Any]:
        """Add or replace documents in the namespace's full-text index (a vector under the
        same id is kept; metadata given replaces the stored metadata)."""
        name = self.namespaces.writable(namespace)
        if not isinstance(documents, list) or not 1 <= len(documents) <= MAX_UPSERT:
            raise ValidationError(f"'documents' must hold 1 to {MAX_UPSERT} documents")
        writes = []
        for i, doc in enumerate(documents):
            if not isinstance(doc, Mapping):
                raise ValidationError(f"documents[{i}] must be an object")
            writes.append(ItemWrite(
                id=validate.item_id(doc.get("id"), f"documents[{i}].id"),
                text=document_text(doc, i),
                metadata=item_metadata(doc.get("metadata"), f"documents[{i}].metadata")))
        self.vectors.write_items(name, writes, None)
        return {"indexed_count": len(writes), "namespace": name}

    def fulltext_delete(self, namespace: Any, ids: Any) -> dict[str, Any]:
        name = self.namespaces.writable(namespace)
        self.namespaces.require(name)
        if not isinstance(ids, list) or not ids:
            raise ValidationError("'ids' must be a non-empty list of ids")
        wanted = [validate.item_id(i, "ids[]") for i in ids]
        removed, _ = self.db.write(lambda tx: tx.namespaces.unindex_text(name, wanted))
        return {"deleted_count": removed, "namespace": name}

    def fulltext_stats(self, namespace: Any) -> dict[str, Any]:
        agent = self.namespaces.agent(namespace) if isinstance(namespace, str) else None
        if agent is not None:
            count = self.agent_views.count(agent, None)
            return {"namespace": namespace, "document_count": count, "unique_terms": 0,
                    "avg_doc_length": 0.0}
        ns = self.namespaces.require(namespace)
        n, avg, unique = self.db.namespaces.text_stats(ns.name, self.now())
        return {"namespace": ns.name, "document_count": n, "unique_terms": unique,
                "avg_doc_length": round(avg, 3)}

    def fulltext_search(self, namespace: Any, query: Any, *, top_k: Any = 10,
                        filter: Any = None) -> dict[str, Any]:
        text = validate.query(query)
        k = validate.top_k(top_k)
        where = filter_dsl.parse(filter)
        t0 = time.perf_counter()
        agent = self.namespaces.agent(namespace) if isinstance(namespace, str) else None
        if agent is not None:
            hits = self.agent_views.search(agent, text, k, where, routing="bm25")
            results = [self.agent_views.result(h) for h in hits]
        else:
            ns = self.namespaces.require(namespace)
            now = self.now()
            found = self.db.namespaces.fulltext(ns.name, terms(text), where, now, k)
            items = self.db.namespaces.by_rowids([r for r, _ in found], now)
            results = [{"id": items[r].id, "score": round(s, 6), "content": items[r].text,
                        "metadata": items[r].metadata} for r, s in found if r in items]
        return {"results": results,
                "search_time_ms": round((time.perf_counter() - t0) * 1000, 3)}

    # -- hybrid -------------------------------------------------------------------------------

    def hybrid(self, namespace: Any, text: Any, *, vector: Any = None, vector_weight: Any = None,
               top_k: Any = 10, filter: Any = None, include_metadata: Any = True,
               include_vectors: Any = False) -> dict[str, Any]:
        """Vector and BM25 relevance fused by weighted min-max (the memory recall's fusion):
        vector_weight 1 = vector only, 0 = BM25 only. Without a vector a data namespace is
        searched by BM25 only; an agent namespace embeds the text itself."""
        query = validate.query(text, "text")
        k = validate.top_k(top_k)
        w = weight(vector_weight, 0.5, "vector_weight")
        where = filter_dsl.parse(filter)
        t0 = time.perf_counter()
        agent = self.namespaces.agent(namespace) if isinstance(namespace, str) else None
        if agent is not None:
            qvec = None if vector is None else to_vector(
                vector, "vector", self.embedder.preset.dimension)
            routing = "vector" if w == 1 else "bm25" if w == 0 else "hybrid"
            hits = self.agent_views.search(agent, query, k, where, routing=routing,
                                           vector_weight=w, vector=qvec)
            results = [self.agent_views.result(h, include_metadata=include_metadata)
                       for h in hits]
        else:
            ns = self.namespaces.require(namespace)
            qvec = None if vector is None else to_vector(vector, "vector", ns.dimension)
            results = self._hybrid(ns, query, qvec, w, k, where, include_metadata,
                                   include_vectors)
        return {"results": results,
                "search_time_ms": round((time.perf_counter() - t0) * 1000, 3)}

    def _hybrid(self, ns: Namespace, query: str, qvec: np.ndarray | None, w: float, k: int,
                where: filter_dsl.Node | None, include_metadata: Any,
                include_vectors: Any) -> list[dict[str, Any]]:
        now = self.now()
        n = max(self.candidates, k)
        text: dict[int, float] = {}
        if w < 1:
            text = dict(self.db.namespaces.fulltext(ns.name, terms(query), where, now, n))
        vec: dict[int, float] = {}
        if qvec is not None and w > 0 and ns.dimension is not None:
            hits, _ = self.vectors.search(ns, qvec, n, where, now)
            vec = {h.rowid: h.score for h in hits}
        if qvec is None or w == 0:
            w = 0.0  # BM25 only
        pool = set(text) | set(vec)
        items = self.db.namespaces.by_rowids(pool, now)
        if qvec is not None and w > 0:  # the vector channel scores the whole pool
            missing = [r for r in items if r not in vec and items[r].vector is not None]
            if missing:
                sims = scores(qvec, np.stack([items[r].vector for r in missing]), ns.distance)
                vec.update(zip(missing, sims.tolist(), strict=True))
        floor = 0.0 if ns.distance == "cosine" else None
        fused = minmax([vec, text], [w, 1.0 - w], floors=[floor, 0.0])
        ranked = sorted((r for r in fused if r in items), key=lambda r: (-fused[r], r))[:k]
        out = []
        for r in ranked:
            item = items[r]
            row = self.vectors.result(Hit(r, fused[r]), item, include_vectors, include_metadata)
            row["vector_score"] = None if r not in vec else round(vec[r], 6)
            row["text_score"] = None if r not in text else round(text[r], 6)
            if item.text is not None:
                row["content"] = item.text
            out.append(row)
        return out
