"""Hybrid recall: vector and BM25 candidates with conversation context, fused, weighted.

1. Candidates: the nearest vectors (cosine), BM25 over the content and the event date with
   the agent's own statistics (app/index/text.py), and the memories holding an identifier
   the query names.
2. Conversation context: the memories just after each BM25 candidate in its session inherit
   part of its text relevance (context.py).
3. Every candidate gets its exact cosine, so the vector channel scores the whole pool; a
   memory of several sentences scores as well as its best sentence (sentences.py).
4. Fusion: weighted min-max over cosine and text relevance, each from its natural zero
   (default), or Reciprocal Rank Fusion.
5. Weighting: importance, the query naming the memory's author, a memory that only asks.
6. Optionally, the session neighbours of each result as context (the contract's
   `neighborhood`), outside the ranking.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

import numpy as np

from app.embed import Embedder
from app.models import Indexes, MemoryFilter, RecallHit, RecallResult, TextSearch
from app.recall.context import DEPTH, NEIGHBORHOOD_WINDOW_SECS, propagate
from app.recall.fusion import minmax, rrf
from app.recall.query import identifiers, query_stems, terms
from app.recall.scoring import (
    importance_factor,
    question_factor,
    recency_factor,
    speaker_factor,
)
from app.store import Store
from app.text import tokens

QUERY_CACHE_SIZE = 512
# An index this small is searched for all its vectors: every memory gets its exact cosine
# straight from the search, and the other candidates need no lookup of their vectors.
SCORE_ALL_UP_TO = 1000


@dataclass(frozen=True)
class RecallParams:
    candidates: int = 100  # per channel
    rrf_k: int = 60
    importance_weight: float = 0.5
    exact_search_limit: int = 5000
    vector_weight: float = 0.5  # the text channels get the rest
    context_weight: float = 0.5  # share of text relevance a reply inherits; 0: none
    sentence_weight: float = 1.0  # how far a cosine rises to its best sentence's; 0: none
    speaker_boost: float = 0.3
    question_penalty: float = 0.2
    recency_weight: float = 0.2
    recency_half_life_hours: float = 336.0


class RecallEngine:
    def __init__(self, store: Store, indexes: Indexes, embedder: Embedder,
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

    def recall(self, agent_id: str, query: str, top_k: int, filters: MemoryFilter,
               now: int, *, routing: str = "hybrid", fusion: str = "minmax",
               vector_weight: float | None = None, neighborhood: bool = False,
               query_vector: np.ndarray | None = None) -> RecallResult:
        """routing: hybrid (or auto), vector or bm25. fusion: minmax or rrf.
        neighborhood: also return the session neighbours of the results as context.
        query_vector: the caller's unit vector for the query (else the query is embedded)."""
        p = self.params
        t0 = time.perf_counter()
        qvec = None
        if routing != "bm25":
            qvec = self.embed_query(query) if query_vector is None else query_vector
        t1 = time.perf_counter()

        cosines: dict[int, float] = {}
        vec_ranked: list[int] = []
        if qvec is not None:
            vec_ranked, cosines = self._vector_candidates(agent_id, qvec, filters, now)
        t_vector = time.perf_counter()
        text: dict[int, float] = {}
        ident: list[int] = []
        index = self.indexes.find_text(agent_id) if routing != "vector" else None
        if index is not None:
            allowed = (np.unique(np.asarray(self.store.memories.rowids(agent_id, filters, now),
                                            dtype=np.int64)) if filters.any() else None)
            labels, scores = index.search(query_stems(query), p.candidates, allowed)
            text = dict(zip(labels.tolist(), scores.tolist(), strict=True))
            # Memories containing an identifier the query names (an order id, a host name).
            ident = self._holding_identifiers(index, query, allowed, now)
        relevance = self._with_context(agent_id, text, filters, now)
        t_bm25 = time.perf_counter()

        wv = p.vector_weight if vector_weight is None else vector_weight
        wt = 1.0 - wv
        # A fixed pool (independent of top_k up to 10) keeps the first k results of
        # top_k=k equal to the first k of top_k=10.
        size = max(top_k, 10) * 4
        if fusion == "rrf":
            if qvec is not None and self._raise(
                    cosines, self._best_sentences(set(vec_ranked), qvec)):
                vec_ranked.sort(key=lambda label: -cosines[label])
            text_ranked = sorted(relevance, key=lambda label: -relevance[label])
            fused = rrf([vec_ranked, text_ranked, ident], p.rrf_k, [wv, wt, wt])
            pool = sorted(fused, key=lambda label: -fused[label])[:size]
            if qvec is not None:  # ranks fused; the cosines are only shown
                self._fill_cosines(set(pool), cosines, qvec)
        else:
            if qvec is not None:
                wanted = set(relevance) | set(ident)
                # the channels' candidates (not every memory a small index scores) as
                # good as their best sentence: those with a cosine now, the rest once
                # they have one
                best = self._best_sentences(set(vec_ranked) | wanted, qvec)
                self._raise(cosines, {label: sim for label, sim in best.items()
                                      if label in cosines})
                if len(vec_ranked) >= p.candidates:  # the nearest n: a bound for the rest
                    wanted = _may_reach_pool(wanted, cosines, relevance, set(ident), wv, wt,
                                             size, best)
                missing = wanted - cosines.keys()
                self._fill_cosines(wanted, cosines, qvec)
                self._raise(cosines, {label: best[label] for label in missing
                                      if label in best and label in cosines})
            fused = minmax([cosines, relevance], [wv, wt], floors=[0.0, 0.0])
            for label in ident:  # near-certain evidence: above any memory without it
                fused[label] = fused.get(label, 0.0) + 1.0
            pool = sorted(fused, key=lambda label: -fused[label])[:size]
        t_fusion = time.perf_counter()
        memories = self.store.memories.by_rowids(pool, now)
        query_terms = frozenset(terms(query))
        best_text = max(max(text.values()), 1e-12) if text else 1.0
        hits = []
        for label in pool:
            m = memories.get(label)
            if m is None:
                continue
            factors = {
                "importance": importance_factor(m.importance, p.importance_weight),
                "recency": recency_factor(m, now, p.recency_weight, p.recency_half_life_hours),
                "speaker": speaker_factor(m.content, query_terms, p.speaker_boost),
                "question": question_factor(m.content, p.question_penalty)}
            factor = (factors["importance"] * factors["recency"] * factors["speaker"]
                      * factors["question"])
            # text relevance inherited from the memories just before it in its session
            factors["context"] = relevance.get(label, 0.0) - text.get(label, 0.0) / best_text
            hits.append(RecallHit(
                memory=m,
                score=min(1.0, fused[label]),
                rank_score=fused[label] * factor,
                vector_score=cosines.get(label),
                text_score=text.get(label),
                factors=factors,
            ))
        hits.sort(key=lambda h: -h.rank_score)
        hits = hits[:top_k]
        t_load = time.perf_counter()
        context = (self._neighbourhood(agent_id, hits, filters, now, qvec, cosines)
                   if neighborhood else [])
        t2 = time.perf_counter()
        stages = {"embed": t1 - t0, "vector": t_vector - t1, "bm25": t_bm25 - t_vector,
                  "fusion": t_fusion - t_bm25, "load": t_load - t_fusion,
                  "neighbourhood": t2 - t_load}
        return RecallResult(hits=hits, embed_ms=(t1 - t0) * 1000,
                            search_ms=(t2 - t1) * 1000, candidates=len(fused), context=context,
                            stages=stages)

    def _holding_identifiers(self, index: TextSearch, query: str, allowed: np.ndarray | None,
                             now: int) -> list[int]:
        """The memories whose content holds an identifier of the query as written (its
        tokens in order), at most `candidates` of them."""
        found: dict[int, None] = {}
        for phrase in identifiers(query):
            holding = index.holding_all(phrase)
            if allowed is not None:
                holding = holding[np.isin(holding, allowed)]
            labels = holding[:self.params.candidates * 4].tolist()
            if len(phrase) > 1:  # the tokens are all there: check they are in order
                held = self.store.memories.by_rowids(labels, now)
                labels = [label for label in labels
                          if label in held and _contains(tokens(held[label].content), phrase)]
            found.update(dict.fromkeys(labels))
        return list(found)[:self.params.candidates]

    def _with_context(self, agent_id: str, text: dict[int, float], filters: MemoryFilter,
                      now: int) -> dict[int, float]:
        """Text relevance (BM25 / best BM25) plus what each memory inherits from the ones
        just before it in its session."""
        if not text:
            return {}
        best = max(max(text.values()), 1e-12)  # FTS5 floors idf: a score may be ~0
        relevance = {label: s / best for label, s in text.items()}
        weight = self.params.context_weight
        if weight <= 0:
            return relevance
        following = self.store.memories.session_adjacent(agent_id, list(text), filters, now,
                                                         after=DEPTH)
        return propagate(relevance, following, weight)

    def _fill_cosines(self, labels: set[int], cosines: dict[int, float],
                      qvec: np.ndarray) -> None:
        """Exact cosines for candidates the vector channel did not return, from their
        stored vectors (a rowid lookup: cheaper than copying them out of hnswlib)."""
        missing = [label for label in labels if label not in cosines]
        if not missing:
            return
        stored, vectors = self.store.vectors.get(missing)
        # einsum, not BLAS: see app/store/sentences.py (BLAS threads beside onnxruntime's)
        sims = np.einsum("ij,j->i", vectors, qvec.astype(np.float32, copy=False))
        for label, sim in zip(stored.tolist(), sims.tolist(), strict=True):
            cosines[label] = sim

    def _best_sentences(self, labels: set[int], qvec: np.ndarray) -> dict[int, float]:
        """The best cosine of a sentence of each of `labels` that has sentence vectors (none
        when the lever is off): a memory that says several things answers a question about
        any one of them."""
        if self.params.sentence_weight <= 0 or not labels:
            return {}
        return self.store.memories.best_sentence_cosines(labels, qvec)

    def _raise(self, cosines: dict[int, float], best: dict[int, float]) -> bool:
        """Raise each cosine towards its best sentence's, when higher (by the share
        `sentence_weight`; 1: the higher of the two). True when any changed."""
        weight = self.params.sentence_weight
        changed = False
        for label, sim in best.items():
            held = cosines.get(label)
            if held is not None and sim > held:
                cosines[label] = held + weight * (sim - held)
                changed = True
        return changed

    def _neighbourhood(self, agent_id: str, hits: list[RecallHit], filters: MemoryFilter,
                       now: int, qvec: np.ndarray | None,
                       cosines: dict[int, float]) -> list[RecallHit]:
        """The memory before and after each result in its session, when stored within
        NEIGHBORHOOD_WINDOW_SECS of it and not a result itself; score = raw cosine."""
        if not hits:
            return []
        by_anchor: dict[int, list[tuple[int, int]]] = {}
        for anchor, label, offset in self.store.memories.session_adjacent(
                agent_id, [h.memory.rowid for h in hits], filters, now, after=1, before=1):
            by_anchor.setdefault(anchor, []).append((offset, label))
        wanted = {label for pairs in by_anchor.values() for _, label in pairs}
        memories = self.store.memories.by_rowids(wanted, now)
        if qvec is not None:
            self._fill_cosines(set(memories), cosines, qvec)
        taken = {h.memory.rowid for h in hits}
        out = []
        for h in hits:
            for _, label in sorted(by_anchor.get(h.memory.rowid, [])):
                m = memories.get(label)
                if m is None or label in taken or abs(
                        m.effective_time - h.memory.effective_time) > NEIGHBORHOOD_WINDOW_SECS:
                    continue
                taken.add(label)
                sim = cosines.get(label, 0.0)
                out.append(RecallHit(memory=m, score=sim, rank_score=sim,
                                     vector_score=cosines.get(label), context_of=h.memory.id))
        return out

    def _vector_candidates(self, agent_id: str, qvec: np.ndarray, filters: MemoryFilter,
                           now: int) -> tuple[list[int], dict[int, float]]:
        """Labels best first, and their cosine similarities."""
        n = self.params.candidates
        if filters.any() and self.store.memories.count(agent_id, filters, now) <= (
                self.params.exact_search_limit):
            # Selective filters: score exactly every memory that passes them.
            labels, sims = self.store.memories.nearest_filtered(agent_id, filters, now, qvec, n)
            return labels.tolist(), dict(zip(labels.tolist(), sims.tolist(), strict=True))
        index = self.indexes.find(agent_id)
        if index is None:
            return [], {}
        if not filters.any():
            labels, sims = index.search(qvec, len(index) if len(index) <= SCORE_ALL_UP_TO else n)
            return [int(x) for x in labels[:n]], dict(zip(labels.tolist(), sims.tolist(),
                                                          strict=True))
        # Broad filters: oversample the index, then keep what passes them.
        labels, sims = index.search(qvec, n * 8)
        loaded = self.store.memories.by_rowids([int(x) for x in labels], now)
        kept = [(int(a), float(b)) for a, b in zip(labels, sims, strict=True)
                if int(a) in loaded and filters.matches(loaded[int(a)])][:n]
        return [a for a, _ in kept], dict(kept)


def _may_reach_pool(labels: set[int], cosines: dict[int, float], relevance: dict[int, float],
                    ident: set[int], wv: float, wt: float, size: int,
                    sentences: dict[int, float] | None = None) -> set[int]:
    """The text candidates whose exact cosine could put them in the pool of `size`.

    The vector channel returned the nearest n memories, so a memory outside them has a
    cosine of at most the n-th one's: its fused score lies between its text part (cosine 0)
    and its text part plus that bound. Fused scores are min-max from natural zero, each
    channel divided by its best (the best cosine is the nearest memory's). A candidate whose
    upper bound is below the size-th best lower bound cannot enter the pool, and needs no
    vector: looking vectors up costs more than the rest of the ranking. A memory's best
    sentence (`sentences`: its cosine) can raise it above the bound: that is its bound."""
    missing = [label for label in labels if label not in cosines]
    if not missing:
        return labels
    total = wv + (wt if relevance else 0.0)  # as minmax weighs the channels
    if total <= 0:
        return labels
    wv, wt = wv / total, wt / total
    top_cos = max(max(cosines.values()), 1e-12)
    top_rel = max(max(relevance.values()), 1e-12) if relevance else 1.0

    def text_part(label: int) -> float:
        return wt * max(0.0, relevance.get(label, 0.0)) / top_rel + (
            1.0 if label in ident else 0.0)

    lows = [wv * max(0.0, c) / top_cos + text_part(label) for label, c in cosines.items()]
    lows += [text_part(label) for label in missing]
    if len(lows) <= size:
        return labels
    threshold = heapq.nlargest(size, lows)[-1]
    reach = wv * max(0.0, min(cosines.values())) / top_cos
    raised = sentences or {}
    return {label for label in labels
            if label in cosines or text_part(label) + max(
                reach, wv * max(0.0, raised.get(label, 0.0)) / top_cos) >= threshold}


def _contains(seq: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(seq[i:i + n] == phrase for i in range(len(seq) - n + 1))
