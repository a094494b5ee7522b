"""The hnswlib cache: one index per agent (hnsw.py), loaded, kept in step and rebuilt from the
stored vectors by the registry (registry.py)."""

from app.index.exact import ExactIndex
from app.index.hnsw import AgentIndex, check_index_file, index_name
from app.index.registry import IndexRegistry

__all__ = ["AgentIndex", "ExactIndex", "IndexRegistry", "check_index_file", "index_name"]
