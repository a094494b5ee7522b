"""Candidates from the vector index and FTS5, conversation context, fusion, weighting."""

from app.recall.engine import RecallEngine, RecallParams

__all__ = ["RecallEngine", "RecallParams"]
