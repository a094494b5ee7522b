"""Every error leaves the server as the Dakera envelope {"error", "code", ...}, rendered here,
with the request's id in `details` (and as `request_id`) to find its log line."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from app.api.access import request_id_of
from app.errors import (
    DakeraError,
    InternalError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RouteNotFoundError,
    StorageError,
    UnsupportedMediaTypeError,
    ValidationError,
)

log = logging.getLogger("dakera.api")

_BY_STATUS: dict[int, type[DakeraError]] = {
    404: RouteNotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
}


def envelope(error: DakeraError, request_id: str | None) -> dict[str, Any]:
    """The error's envelope, its details carrying the request id."""
    body = error.envelope()
    if request_id is not None:
        mark = f"request_id: {request_id}"
        body["details"] = f"{body['details']} ({mark})" if body.get("details") else mark
        body["request_id"] = request_id
    return body


def render(error: DakeraError, request_id: str | None = None) -> Response[Any]:
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(int(error.retry_after))
    return Response(envelope(error, request_id), status_code=error.status, headers=headers,
                    media_type="application/json")


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key")
            message = item.get("message", "invalid value")
            parts.append(f"'{key}': {message}" if key else str(message))
    detail = exc.detail or "invalid request"
    return "invalid request: " + "; ".join(parts) if parts else detail


def _malformed_json(exc: BaseException) -> str | None:
    """The decoder's message when the body was not valid JSON (as opposed to wrong types)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, UnicodeDecodeError):
            return "the body is not valid UTF-8"
        if isinstance(cause, RecursionError) and "deserializ" in str(cause):
            return "the JSON is nested too deeply"
        if isinstance(cause, msgspec.DecodeError) and not isinstance(cause,
                                                                      msgspec.ValidationError):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    return None


def to_dakera_error(exc: Exception) -> DakeraError:
    if isinstance(exc, DakeraError):
        return exc
    malformed = _malformed_json(exc)
    if malformed is not None:
        return ValidationError(f"malformed JSON body: {malformed}")
    if isinstance(exc, ValidationException):
        return ValidationError(_validation_message(exc))
    if isinstance(exc, NotFoundException):
        return RouteNotFoundError("no such route")
    if isinstance(exc, MethodNotAllowedException):
        return MethodNotAllowedError("method not allowed on this route")
    if isinstance(exc, HTTPException):
        cls = _BY_STATUS.get(exc.status_code)
        if cls is not None:
            return cls(exc.detail or cls.__name__)
        if 400 <= exc.status_code < 500:
            err = DakeraError(exc.detail or "bad request", code="INVALID_REQUEST")
            err.status = exc.status_code
            return err
    return InternalError("internal error")


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    error = to_dakera_error(exc)
    request_id = request_id_of(request.scope)
    if isinstance(error, InternalError):  # unexpected: the traceback is for us
        log.error("%s %s failed (request_id %s)", request.method, request.url.path,
                  request_id, exc_info=exc)
    elif isinstance(error, StorageError):  # the writer logs the fault once, not per request
        log.debug("%s %s: %s %s (request_id %s)", request.method, request.url.path,
                  error.status, error.message, request_id)
    elif error.status >= 500:
        log.warning("%s %s: %s %s (request_id %s)", request.method, request.url.path,
                    error.status, error.message, request_id)
    return render(error, request_id)
