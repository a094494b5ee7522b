"""Dependencies the controllers declare."""

from __future__ import annotations

from litestar.di import NamedDependency

from app.service import MemoryService

# The one MemoryService of the app, injected by name.
Service = NamedDependency[MemoryService]
