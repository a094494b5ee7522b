"""What the MemoryService mixins (sessions, lifecycle) rely on; MemoryService provides it."""

from __future__ import annotations

from typing import Any, Protocol

from app.config import Settings
from app.embed import Embedder
from app.embed.presets import Preset
from app.models import Memory, NewMemory
from app.recall import IndexRegistry, RecallEngine
from app.store import Store


class StoreResultLike(Protocol):
    @property
    def memory(self) -> Memory: ...


class ServiceBase:
    settings: Settings
    version: str

    def _parts(self) -> tuple[Store, IndexRegistry, RecallEngine, Embedder]:
        raise NotImplementedError

    def now(self) -> int:
        raise NotImplementedError

    def embedder_preset(self) -> Preset:
        raise NotImplementedError

    def get(self, memory_id: Any, agent_id: Any = None) -> Memory:
        raise NotImplementedError

    def _insert(self, items: list[NewMemory], *, dedup: bool = True) -> StoreResultLike:
        raise NotImplementedError

    def _delete(self, store: Store, indexes: IndexRegistry, agent: str,
                rowids: list[int]) -> int:
        raise NotImplementedError
