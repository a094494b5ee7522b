"""Duplicates on store: a memory that repeats one the agent already holds is merged into it.

Runs inside the writer's transaction, so concurrent stores of the same fact cannot both pass.
A duplicate is a live memory of the same agent and type with the same normalised text, or a
cosine at or above the agent's threshold to one of the index's nearest neighbours (or to a
memory inserted earlier in the same transaction). Near-identical texts that differ in a
number (a date, an amount, an id) state different facts and are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.index import IndexRegistry
from app.store import MemoryRow, Tx
from app.text import numbers

CANDIDATES = 5


@dataclass(frozen=True)
class DedupPolicy:
    enabled: bool
    threshold: float
    memory_types: tuple[str, ...]

    def applies(self, memory_type: str) -> bool:
        return self.enabled and memory_type in self.memory_types


# What one transaction has inserted so far: (vector, rowid, type, content) of each.
Inserted = list[tuple[np.ndarray, int, str, str]]


def find_duplicate(tx: Tx, indexes: IndexRegistry, row: MemoryRow, policy: DedupPolicy,
                   inserted: Inserted, now: int) -> int | None:
    """Rowid of the memory `row` duplicates, or None."""
    m = row.memory
    if not policy.applies(m.memory_type):
        return None
    same = tx.memories.same_text(m.agent_id, m.content, m.memory_type, now)
    if same is not None:
        return same
    digits = numbers(m.content)
    for vector, rowid, mtype, text in inserted:
        if (mtype == m.memory_type and float(vector @ row.vector) >= policy.threshold
                and numbers(text) == digits):
            return rowid
    index = indexes.find(m.agent_id)
    if index is None:
        return None
    labels, sims = index.search(row.vector, CANDIDATES)
    near = [int(label) for label, sim in zip(labels, sims, strict=True)
            if sim >= policy.threshold]
    found = tx.memories.by_rowids(near, now)
    for label in near:  # nearest first
        hit = found.get(label)
        if hit is not None and hit.memory_type == m.memory_type and numbers(
                hit.content) == digits:
            return label
    return None
