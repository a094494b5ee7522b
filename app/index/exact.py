"""Exact search over a key's stored vectors (an agent's, or a namespace's): what is searched
while its index is rebuilt in the background (its file was missing or damaged at start)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.models import VectorSource


class ExactIndex:
    """Stands in for an `AgentIndex`: every search scores all of the agent's vectors read
    from the store. Changes are not kept here: the rebuilt index replays them from the
    index log when it is swapped in (in commit order)."""

    dirty = False
    seq = 0

    def __init__(self, agent_id: str, source: VectorSource) -> None:
        self.agent_id = agent_id
        self.source = source
        layout = source.layout(agent_id)
        self.space = layout[1] if layout is not None else "cosine"

    def __len__(self) -> int:
        return self.source.count(self.agent_id)

    def add(self, labels: np.ndarray, vectors: np.ndarray, seq: int = 0) -> None:
        pass

    def delete(self, labels: np.ndarray | list[int], seq: int = 0) -> None:
        pass

    def needs_compaction(self) -> bool:
        return False

    def search(self, vector: np.ndarray, k: int,
               accept: Callable[[int], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(labels, scores) of the k nearest stored vectors (those `accept` takes, when
        given), best first; scores as `AgentIndex.search` gives them for the same space."""
        best_labels = np.empty(0, dtype=np.int64)
        best_sims = np.empty(0, dtype=np.float32)
        if k <= 0:
            return best_labels, best_sims
        if self.space == "cosine":
            vector = vector / (float(np.linalg.norm(vector)) or 1.0)
        for labels, vectors in self.source.of_agent(self.agent_id):
            if accept is not None:
                keep = np.fromiter((accept(int(x)) for x in labels), dtype=bool,
                                   count=len(labels))
                labels, vectors = labels[keep], vectors[keep]
            sims = self._scores(vectors, vector)
            best_labels = np.concatenate([best_labels, labels])
            best_sims = np.concatenate([best_sims, sims])
            if len(best_sims) > k:
                keep_k = np.argpartition(-best_sims, k)[:k]
                best_labels, best_sims = best_labels[keep_k], best_sims[keep_k]
        order = np.argsort(-best_sims, kind="stable")
        return best_labels[order].astype(np.int64), best_sims[order]

    def search_many(self, vectors: np.ndarray, k: int, *, exhaustive: bool = True,
                    ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """search() for each row of `vectors`, in one pass over the stored vectors:
        (labels, cosines), one row per vector, at most k wide (fewer when fewer exist).
        `exhaustive` and `ef` are accepted for `AgentIndex`'s signature: this is exact."""
        n = len(vectors)
        queries = vectors.reshape(n, -1)
        best_labels = np.empty((n, 0), dtype=np.int64)
        best_sims = np.empty((n, 0), dtype=np.float32)
        if k > 0 and n:
            for labels, rows in self.source.of_agent(self.agent_id):
                sims = (queries @ rows.T).astype(np.float32)
                best_labels = np.concatenate(
                    [best_labels, np.broadcast_to(np.asarray(labels, dtype=np.int64),
                                                  sims.shape)], axis=1)
                best_sims = np.concatenate([best_sims, sims], axis=1)
                if best_sims.shape[1] > k:
                    keep = np.argpartition(-best_sims, k, axis=1)[:, :k]
                    best_labels = np.take_along_axis(best_labels, keep, axis=1)
                    best_sims = np.take_along_axis(best_sims, keep, axis=1)
        order = np.argsort(-best_sims, axis=1, kind="stable")
        best_labels = np.take_along_axis(best_labels, order, axis=1)
        best_sims = np.take_along_axis(best_sims, order, axis=1)
        width = min(k, best_sims.shape[1]) if k > 0 else 0
        return best_labels[:, :width], best_sims[:, :width]
    def _scores(self, vectors: np.ndarray, vector: np.ndarray) -> np.ndarray:
        if self.space == "l2":
            return (-np.sum((vectors - vector) ** 2, axis=1)).astype(np.float32)
        if self.space == "cosine":  # stored memory vectors are unit length; raw ones may not be
            norms = np.linalg.norm(vectors, axis=1)
            vectors = vectors / np.where(norms == 0, 1.0, norms)[:, None]
        return (vectors @ vector).astype(np.float32)

    def vectors(self, labels: Sequence[int]) -> tuple[list[int], np.ndarray]:
        found, vectors = self.source.get(list(labels))
        return [int(x) for x in found], vectors
