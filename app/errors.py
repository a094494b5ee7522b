"""One error tree. Every error a client can see is a DakeraError with its HTTP status and
Dakera error code; the API renders all of them as the envelope {"error", "code", ...}."""

from __future__ import annotations

from typing import Any


class DakeraError(Exception):
    status = 500
    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: str | None = None,
        resource: str | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.resource = resource
        self.retry_after = retry_after
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code, "status": self.status}
        if self.details is not None:
            body["details"] = self.details
        if self.resource is not None:
            body["resource"] = self.resource
        return body


class ValidationError(DakeraError):
    status = 400
    code = "INVALID_REQUEST"


class AuthenticationError(DakeraError):
    status = 401
    code = "INVALID_API_KEY"


class NotFoundError(DakeraError):
    status = 404
    code = "VECTOR_NOT_FOUND"


class RouteNotFoundError(NotFoundError):
    code = "ROUTE_NOT_FOUND"


class MethodNotAllowedError(DakeraError):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class ConflictError(DakeraError):
    status = 409
    code = "CONFLICT"


class PayloadTooLargeError(DakeraError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(DakeraError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class UnprocessableError(DakeraError):
    """A body the route refuses as a whole (unknown fields where the contract says so)."""

    status = 422
    code = "UNPROCESSABLE_CONTENT"


class NotImplementedFeature(DakeraError):
    """A request option the contract names that this server does not offer."""

    status = 501
    code = "NOT_IMPLEMENTED"


class InsufficientStorageError(DakeraError):
    """The disk is full (or the file system refused the write): nothing was written."""

    status = 507
    code = "STORAGE_ERROR"


class ServiceUnavailableError(DakeraError):
    status = 503
    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: int = 1, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)


class DataDirError(ServiceUnavailableError):
    """The data dir cannot be served as it is (held by another process, made with another
    embedding model, ...): the message says what to do."""


class DataDirInUse(DataDirError):
    """Another process holds the data dir's lock."""


class FeatureDisabledError(DakeraError):
    """A feature turned off by a setting: `details` names the DAKERA_* switch."""

    status = 501
    code = "FEATURE_DISABLED"


class InternalError(DakeraError):
    status = 500
    code = "INTERNAL_ERROR"
