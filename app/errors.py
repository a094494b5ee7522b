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


class AuthorizationError(DakeraError):
    """The key is valid but may not do this (INSUFFICIENT_SCOPE, NAMESPACE_ACCESS_DENIED)."""

    status = 403
    code = "INSUFFICIENT_SCOPE"


class NamespaceAccessDenied(AuthorizationError):
    code = "NAMESPACE_ACCESS_DENIED"


class CrossOriginRefused(AuthorizationError):
    code = "CROSS_ORIGIN_REQUEST_REFUSED"


class NotFoundError(DakeraError):
    status = 404
    code = "VECTOR_NOT_FOUND"


class RouteNotFoundError(NotFoundError):
    code = "ROUTE_NOT_FOUND"


class NamespaceNotFoundError(NotFoundError):
    code = "NAMESPACE_NOT_FOUND"

    def __init__(self, namespace: str) -> None:
        super().__init__(f"namespace {namespace!r} not found", resource="namespace")


class MethodNotAllowedError(DakeraError):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class KeyNotFoundError(NotFoundError):
    code = "API_KEY_NOT_FOUND"


class RequestTimeoutError(DakeraError):
    status = 408
    code = "REQUEST_TIMEOUT"


class ConflictError(DakeraError):
    status = 409
    code = "CONFLICT"


class PayloadTooLargeError(DakeraError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class QuotaExceededError(PayloadTooLargeError):
    code = "QUOTA_EXCEEDED"


class UnsupportedMediaTypeError(DakeraError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class HostNotAllowedError(DakeraError):
    status = 421
    code = "HOST_NOT_ALLOWED"


class UnprocessableError(DakeraError):
    """A well-formed request the route refuses as a whole, e.g. for unknown fields."""

    status = 422
    code = "UNPROCESSABLE_CONTENT"


class RateLimitError(DakeraError):
    status = 429
    code = "RATE_LIMIT_EXCEEDED"


class NotImplementedFeature(DakeraError):
    """A request option the contract names that this server does not offer."""

    status = 501
    code = "NOT_IMPLEMENTED"


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


class StorageError(ServiceUnavailableError):
    """The database could not be written (an I/O error of the disk under the data dir).
    Nothing of the request was applied. `reason` is the short form health probes show."""

    reason = "storage error"


class StorageFullError(StorageError):
    """The filesystem holding the data dir is full: nothing of the request was applied;
    writes resume by themselves once space is freed."""

    status = 507
    code = "STORAGE_FULL"
    reason = "disk full"


class StorageReadOnlyError(StorageError):
    """The filesystem holding the data dir is read-only: nothing of the request was applied;
    writes resume by themselves once it is writable again."""

    status = 507
    code = "STORAGE_READ_ONLY"
    reason = "read-only filesystem"


class FeatureDisabledError(DakeraError):
    """A feature turned off by a setting, or a route of the contract this server does not
    offer: `details` names the DAKERA_* switch or the feature. Clients degrade, not break."""

    status = 501
    code = "FEATURE_DISABLED"


class InternalError(DakeraError):
    status = 500
    code = "INTERNAL_ERROR"


class QueryTimeoutError(DakeraError):
    status = 504
    code = "QUERY_TIMEOUT"
