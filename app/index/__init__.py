"""The hnswlib cache: load, add, mark deleted, save; rebuilt from the store when stale."""

from app.index.hnsw import AgentIndex, index_name

__all__ = ["AgentIndex", "index_name"]
