"""Conversation context: memories stored one after another in a session belong together.

A reply is about what it replies to, so a memory inherits part of the text relevance of the
memories just before it in its session ("What book would you recommend?" -> "I loved
Becoming Nicole"). Session order is stored order.
"""

from __future__ import annotations

from collections.abc import Iterable

# How far relevance travels: weight to the next memory, weight**2 to the one after.
DEPTH = 2
# Neighbourhood items (the contract's `neighborhood`): within this many seconds of a result.
NEIGHBORHOOD_WINDOW_SECS = 300


def propagate(scores: dict[int, float], successors: Iterable[tuple[int, int, int]],
              weight: float) -> dict[int, float]:
    """scores plus weight**offset * score(anchor) for each (anchor, successor, offset)."""
    out = dict(scores)
    for anchor, label, offset in successors:
        out[label] = out.get(label, 0.0) + weight ** offset * scores[anchor]
    return out
