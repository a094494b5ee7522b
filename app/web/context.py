"""What every page knows: who is looking (and whether they may change things), the CSRF
token of the browser's forms, the time, and a few helpers for forms and links."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.errors import ValidationError
from app.service import Service as TheService
from app.service.keys import Principal as ThePrincipal
from app.web.session import Browser, browser_of
from app.web.static import ASSET_VERSION

Service = NamedDependency[TheService]
Principal = NamedDependency[ThePrincipal]
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]


def context(request: AnyRequest, service: TheService, principal: ThePrincipal | None,
            **extra: Any) -> tuple[dict[str, Any], Browser]:
    """The template context every page starts from, and the browser it goes to."""
    browser = browser_of(request.scope, service)
    ctx: dict[str, Any] = {
        "user": principal, "can_write": principal is not None and principal.has_scope("write"),
        "csrf": browser.csrf, "now": service.now(), "assets": ASSET_VERSION, "nav": "",
        "transfer": False, "flash": None, "errors": {}, "tab": ""}
    ctx.update(extra)
    return ctx, browser


def query(request: AnyRequest, name: str) -> str:
    value = request.query_params.get(name)
    return value.strip() if isinstance(value, str) else ""


def int_param(request: AnyRequest, name: str, default: int) -> int:
    raw = query(request, name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(f"'{name}' must be a whole number") from None


def number(value: Any) -> Any:
    """A number typed into a form ("0.7"): the float, None when empty, else the text as it
    is (the service's validation then names the field)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def tag_list(value: Any) -> list[str]:
    """Tags typed as "a, b, c"."""
    return [t.strip() for t in str(value or "").split(",") if t.strip()]


def link(path: str, params: dict[str, Any]) -> str:
    """A page link keeping the non-empty parameters."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def flash_of(request: AnyRequest) -> dict[str, Any] | None:
    """The notice a redirect after a form asked for (?forgotten=, ?restored=, ?saved=)."""
    forgotten = query(request, "forgotten")
    if forgotten:
        return {"kind": "ok", "text": f"Forgotten {forgotten}.", "undo": forgotten}
    restored = query(request, "restored")
    if restored:
        return {"kind": "ok", "text": f"Restored {restored}.", "undo": None}
    if query(request, "saved"):
        return {"kind": "ok", "text": "Saved.", "undo": None}
    return None


def htmx(request: AnyRequest) -> bool:
    return request.headers.get("hx-request") == "true"


__all__ = ["AnyRequest", "Form", "Principal", "Service", "context", "flash_of", "htmx",
           "int_param", "link", "number", "query", "tag_list"]
