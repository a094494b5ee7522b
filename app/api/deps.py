"""Dependencies the controllers declare."""

from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency
from litestar.params import QueryParameter

from app.service import Service as TheService

# The one Service of the app, injected by name.
Service = NamedDependency[TheService]

# ?content_preview_chars=: listings cut each memory's content to this many characters.
PreviewChars = Annotated[int | None, QueryParameter(ge=1, le=10_000)]
