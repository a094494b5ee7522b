"""Dependencies the controllers declare."""

from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency
from litestar.params import QueryParameter

from app.service import Service as TheService
from app.service.keys import Principal as ThePrincipal

# The one Service of the app, injected by name.
Service = NamedDependency[TheService]

# Who the request authenticated as (app/api/gate.py), injected by name.
Principal = NamedDependency[ThePrincipal]

# ?content_preview_chars=: listings cut each memory's content to this many characters.
PreviewChars = Annotated[int | None, QueryParameter(ge=1, le=10_000)]
