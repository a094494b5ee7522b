"""Candidates from index and FTS5, fusion, importance weighting."""

from app.recall.engine import RecallEngine, RecallParams, RecallResult
from app.recall.indexes import IndexRegistry

__all__ = ["IndexRegistry", "RecallEngine", "RecallParams", "RecallResult"]
