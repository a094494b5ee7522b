"""Hybrid recall: vector and BM25 candidates, fused with RRF, weighted by importance."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

import numpy as np

from app.embed import Embedder
from app.models import RecallFilters, RecallHit
from app.recall.fusion import minmax, rrf
from app.recall.indexes import IndexRegistry
from app.recall.query import fts_match, identifier_match
from app.recall.scoring import importance_factor, matches
from app.store import Store

QUERY_CACHE_SIZE = 512


@dataclass(frozen=True)
class RecallParams:
    candidates: int = 100  # per channel
    rrf_k: int = 60
    importance_weight: float = 0.5
    exact_search_limit: int = 5000
    vector_weight: float = 1.0
    text_weight: float = 1.0


@dataclass
class RecallResult:
    hits: list[RecallHit]
    embed_ms: float = 0.0
    search_ms: float = 0.0
    candidates: int = 0
    warnings: list[str] = field(default_factory=list)


class RecallEngine:
    def __init__(self, store: Store, indexes: IndexRegistry, embedder: Embedder,
                 params: RecallParams) -> None:
        self.store = store
        self.indexes = indexes
        self.embedder = embedder
        self.params = params
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = Lock()

    def embed_query(self, text: str) -> np.ndarray:
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector = self.embedder.embed([text], query=True)[0]
        with self._cache_lock:
            self._cache[text] = vector
            if len(self._cache) > QUERY_CACHE_SIZE:
                self._cache.popitem(last=False)
        return vector

    def recall(self, agent_id: str, query: str, top_k: int, filters: RecallFilters,
               now: int, *, routing: str = "hybrid", fusion: str = "rrf",
               vector_weight: float | None = None) -> RecallResult:
        """routing: hybrid (or auto), vector or bm25. fusion: rrf or minmax."""
        p = self.params
        t0 = time.perf_counter()
        vec_ranked: list[int] = []
        vec_sims: dict[int, float] = {}
        if routing != "bm25":
            qvec = self.embed_query(query)
        t1 = time.perf_counter()
        if routing != "bm25":
            vec_ranked, vec_sims = self._vector_candidates(agent_id, qvec, filters, now)
        match = fts_match(query) if routing != "vector" else None
        text_ranked: list[int] = []
        text_scores: dict[int, float] = {}
        if match is not None:
            for rowid, score in self.store.bm25(agent_id, match, filters, now, p.candidates):
                text_ranked.append(rowid)
                text_scores[rowid] = score

        # Memories containing an identifier the query names (an order id, a host name).
        ident = identifier_match(query) if routing != "vector" else None
        ident_ranked = ([r for r, _ in self.store.bm25(agent_id, ident, filters, now,
                                                       p.candidates)] if ident else [])

        wv = p.vector_weight if vector_weight is None else vector_weight
        wt = p.text_weight if vector_weight is None else 1.0 - vector_weight
        if fusion == "minmax":
            fused = minmax([vec_sims, text_scores], [wv, wt])
            for label in ident_ranked:
                fused[label] = fused.get(label, 0.0) + wt
        else:
            fused = rrf([vec_ranked, text_ranked, ident_ranked], p.rrf_k, [wv, wt, wt])
        # A fixed pool (independent of top_k up to 10) keeps the first k results of
        # top_k=k equal to the first k of top_k=10.
        pool = sorted(fused, key=lambda label: -fused[label])[: max(top_k, 10) * 4]
        memories = self.store.by_rowids(pool, now)

        hits = []
        for label in pool:
            m = memories.get(label)
            if m is None:
                continue
            relevance = fused[label]
            hits.append(RecallHit(
                memory=m,
                score=relevance,
                rank_score=relevance * importance_factor(m.importance, p.importance_weight),
                vector_score=vec_sims.get(label),
                text_score=text_scores.get(label),
            ))
        hits.sort(key=lambda h: -h.rank_score)
        t2 = time.perf_counter()
        return RecallResult(hits=hits[:top_k], embed_ms=(t1 - t0) * 1000,
                            search_ms=(t2 - t1) * 1000, candidates=len(fused))

    def _vector_candidates(self, agent_id: str, qvec: np.ndarray, filters: RecallFilters,
                           now: int) -> tuple[list[int], dict[int, float]]:
        """Labels best first, and their cosine similarities."""
        n = self.params.candidates
        if filters.any() and self.store.count(agent_id, filters, now) <= (
                self.params.exact_search_limit):
            # Selective filters: score exactly every memory that passes them.
            labels, vectors = self.store.filtered_vectors(agent_id, filters, now)
            if len(labels) == 0:
                return [], {}
            sims = vectors @ qvec
            order = np.argsort(-sims)[:n]
            return ([int(labels[i]) for i in order],
                    {int(labels[i]): float(sims[i]) for i in order})
        index = self.indexes.find(agent_id)
        if index is None:
            return [], {}
        if not filters.any():
            labels, sims = index.search(qvec, n)
            return [int(x) for x in labels], {int(a): float(b) for a, b in zip(labels, sims,
                                                                              strict=True)}
        # Broad filters: oversample the index, then keep what passes them.
        labels, sims = index.search(qvec, n * 8)
        loaded = self.store.by_rowids([int(x) for x in labels], now)
        kept = [(int(a), float(b)) for a, b in zip(labels, sims, strict=True)
                if int(a) in loaded and matches(loaded[int(a)], filters)][:n]
        return [a for a, _ in kept], dict(kept)
