"""Duplicates on store: a memory that repeats one the agent already holds is merged into it.

Runs inside the writer's transaction, so concurrent stores of the same fact cannot both pass.
A duplicate is a live memory of the same agent and type with the same normalised text, or a
cosine at or above the agent's threshold to one of the index's nearest neighbours (or to a
memory inserted earlier in the same transaction). Near-identical texts that differ in a
number (a date, an amount, an id) state different facts and are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.service.linking import Near
from app.store import MemoryRow, Tx
from app.text import numbers


@dataclass(frozen=True)
class DedupPolicy:
    enabled: bool
    threshold: float
    memory_types: tuple[str, ...]

    def applies(self, memory_type: str) -> bool:
        return self.enabled and memory_type in self.memory_types


def find_duplicate(tx: Tx, row: MemoryRow, policy: DedupPolicy, near: list[Near],
                   now: int) -> int | None:
    """Rowid of the memory `row` duplicates, or None. `near` are the live memories closest
    to it, nearest first (app/service/linking.neighbours: the one index search a store
    makes, shared with the edges)."""
    m = row.memory
    if not policy.applies(m.memory_type):
        return None
    same = tx.memories.same_text(m.agent_id, m.content, m.memory_type, now)
    if same is not None:
        return same
    digits = numbers(m.content)
    for n in near:
        if n.sim < policy.threshold:
            break
        if n.memory_type == m.memory_type and numbers(n.content) == digits:
            return n.rowid
    return None
