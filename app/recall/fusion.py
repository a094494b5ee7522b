"""Fusing the channels' candidate lists: Reciprocal Rank Fusion, or weighted min-max."""

from __future__ import annotations

from collections.abc import Sequence


def rrf(rankings: Sequence[Sequence[int]], k: int, weights: Sequence[float] | None = None
        ) -> dict[int, float]:
    """score(label) = sum over lists of w / (k + rank), rank starting at 1, normalised so a
    label ranked first everywhere scores 1.0."""
    weights = weights or [1.0] * len(rankings)
    best = sum(w / (k + 1) for w, r in zip(weights, rankings, strict=True) if r) or 1.0
    scores: dict[int, float] = {}
    for w, ranking in zip(weights, rankings, strict=True):
        for rank, label in enumerate(ranking, start=1):
            scores[label] = scores.get(label, 0.0) + w / (k + rank)
    return {label: s / best for label, s in scores.items()}


def minmax(channels: Sequence[dict[int, float]], weights: Sequence[float],
           floors: Sequence[float | None] | None = None) -> dict[int, float]:
    """Weighted sum of per-channel scores min-max normalised to 0-1 (a missing label scores 0
    in that channel), divided by the total weight. A channel's floor, when given, is its
    minimum instead of the lowest score seen (scores below it count as 0): a score with a
    natural zero (cosine, BM25) keeps its meaning whatever else the candidates hold."""
    floors = floors or [None] * len(channels)
    total = sum(w for w, c in zip(weights, channels, strict=True) if c) or 1.0
    scores: dict[int, float] = {}
    for w, channel, floor in zip(weights, channels, floors, strict=True):
        if not channel:
            continue
        hi = max(channel.values())
        lo = min(channel.values()) if floor is None else floor
        span = hi - lo
        flat = 1.0 if floor is None else 0.0  # all equal; with a floor, none above it
        for label, s in channel.items():
            norm = max(0.0, (s - lo) / span) if span > 0 else flat
            scores[label] = scores.get(label, 0.0) + w * norm
    return {label: s / total for label, s in scores.items()}
