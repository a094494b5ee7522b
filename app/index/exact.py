"""Exact search over an agent's stored vectors: what recall uses while the agent's index
is rebuilt in the background (its file was missing or damaged at start)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.models import IndexSource


class ExactIndex:
    """Stands in for an `AgentIndex`: every search scores all of the agent's vectors read
    from the store. Changes are not kept here: the rebuilt index replays them from the
    index log when it is swapped in (in commit order)."""

    dirty = False
    seq = 0

    def __init__(self, agent_id: str, source: IndexSource) -> None:
        self.agent_id = agent_id
        self.source = source

    def __len__(self) -> int:
        return self.source.count(self.agent_id)

    def add(self, labels: np.ndarray, vectors: np.ndarray, seq: int = 0) -> None:
        pass

    def delete(self, labels: np.ndarray | list[int], seq: int = 0) -> None:
        pass

    def needs_compaction(self) -> bool:
        return False

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, cosine similarities) of the k nearest stored vectors, best first."""
        best_labels = np.empty(0, dtype=np.int64)
        best_sims = np.empty(0, dtype=np.float32)
        if k <= 0:
            return best_labels, best_sims
        for labels, vectors in self.source.of_agent(self.agent_id):
            sims = (vectors @ vector).astype(np.float32)
            best_labels = np.concatenate([best_labels, labels])
            best_sims = np.concatenate([best_sims, sims])
            if len(best_sims) > k:
                keep = np.argpartition(-best_sims, k)[:k]
                best_labels, best_sims = best_labels[keep], best_sims[keep]
        order = np.argsort(-best_sims, kind="stable")
        return best_labels[order].astype(np.int64), best_sims[order]

    def vectors(self, labels: Sequence[int]) -> tuple[list[int], np.ndarray]:
        found, vectors = self.source.get(list(labels))
        return [int(x) for x in found], vectors
