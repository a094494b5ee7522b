"""Weighting fused relevance by what else we know about a memory."""

from __future__ import annotations

import math

from app.models import Memory
from app.recall.query import speaker

LN2 = math.log(2)


def importance_factor(importance: float, weight: float) -> float:
    """1.0 at the default importance 0.5; +-weight/2 at the extremes."""
    return 1.0 + weight * (importance - 0.5)


def recency_factor(memory: Memory, now: int, weight: float, half_life_hours: float) -> float:
    """1 + weight * (r - 0.5), where r = exp(-ln2 * age / half-life) and age is the time
    since the memory was stored or last recalled: in use recently, it ranks a little higher;
    untouched for weeks, a little lower (1.0 at one half-life)."""
    if weight == 0:
        return 1.0
    age_hours = max(0, now - max(memory.created_at, memory.last_accessed_at)) / 3600
    return 1.0 + weight * (math.exp(-LN2 * age_hours / half_life_hours) - 0.5)


def speaker_factor(content: str, query_terms: frozenset[str], boost: float) -> float:
    """1 + boost when the query names the memory's author ("Caroline: ..." for a question
    about Caroline): what people say of themselves answers questions about them."""
    name = speaker(content)
    return 1.0 + boost if name and name & query_terms else 1.0


def question_factor(content: str, penalty: float) -> float:
    """1 - penalty for a memory that ends by asking: it holds a question, not an answer
    (its reply, the next memory of the session, inherits its relevance as context)."""
    return 1.0 - penalty if content.rstrip().endswith("?") else 1.0
