"""The pages' static files (stylesheet, htmx, the keyboard script), package data read once
and served from memory; pages link them with ?v=<hash of them all>, so they are cached
for a year and a new build is fetched at once."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from app.errors import RouteNotFoundError

FOLDER = Path(__file__).resolve().parent / "static"
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _load() -> dict[str, tuple[bytes, str]]:
    found = {}
    for path in sorted(FOLDER.iterdir()):
        kind = TYPES.get(path.suffix)
        if kind is not None:
            found[path.name] = (path.read_bytes(), kind)
    return found


FILES = _load()
ASSET_VERSION = hashlib.sha256(b"".join(body for body, _ in FILES.values())).hexdigest()[:12]


@get("/static/{name:str}", opt={"open": True}, include_in_schema=False)
async def static_file(name: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
    found = FILES.get(name)
    if found is None:
        raise RouteNotFoundError(f"no static file {name!r}")
    body, kind = found
    fresh = request.query_params.get("v") == ASSET_VERSION
    return Response(body, media_type=kind, headers={
        "Cache-Control": "public, max-age=31536000, immutable" if fresh else "no-cache",
        "X-Content-Type-Options": "nosniff", "ETag": f'"{ASSET_VERSION}"'})


__all__ = ["ASSET_VERSION", "FILES", "static_file"]
