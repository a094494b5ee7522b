"""Health probes (no auth): /health, /health/ready, /health/live."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from app.api.access import OPEN, PRINCIPAL, need
from app.api.deps import Service


def _trusted(request: Request[Any, Any, Any]) -> bool:
    """Whether the caller may read internal error text: it sent a valid key, or the server
    has none (then the gate admits local hosts only)."""
    return request.scope.get("state", {}).get(PRINCIPAL) is not None


def _starting_body(service: Service, trusted: bool) -> dict[str, Any]:
    failure = service.failure
    reason = "loading models"
    if failure:
        reason = (f"start-up failed: {failure}" if trusted
                  else "start-up failed (the server log says why)")
    return {"reason": reason, "starting": failure is None, "version": service.version}


class HealthController(Controller):
    path = "/health"

    @get("/", opt=OPEN, sync_to_thread=False)
    def health(self, service: Service, request: Request[Any, Any, Any]
               ) -> Response[dict[str, Any]]:
        if not service.ready:
            body = {"status": "starting", **_starting_body(service, _trusted(request))}
            return Response(body, status_code=503, headers={"Retry-After": "1"})
        return Response({"status": "healthy", "service": "dakera", "version": service.version,
                         "uptime_seconds": service.uptime(), "degraded": False,
                         "config_warnings": []})

    @get("/ready", opt=OPEN, sync_to_thread=True)
    def ready(self, service: Service, request: Request[Any, Any, Any]
              ) -> Response[dict[str, Any]]:
        trusted = _trusted(request)
        if not service.ready:
            body = {"ready": False, **_starting_body(service, trusted), "downloads": []}
            return Response(body, status_code=503, headers={"Retry-After": "1"})
        checks = service.readiness_checks()
        if not trusted:  # internal error text only for a caller with a key
            checks = {name: {k: v for k, v in check.items() if k != "error"}
                      for name, check in checks.items()}
        ok = all(c["status"] == "ok" for c in checks.values())
        body = {"ready": ok, "version": service.version, "checks": checks}
        if ok:
            return Response(body)
        return Response(body, status_code=503, headers={"Retry-After": "5"})

    @get("/live", opt=OPEN, sync_to_thread=False)
    def live(self, service: Service) -> dict[str, Any]:
        return {"alive": True, "version": service.version, "uptime_seconds": service.uptime(),
                "starting": not service.ready}


class CapabilitiesController(Controller):
    path = "/v1/capabilities"

    @get("/", opt=need("read"), sync_to_thread=False)
    def capabilities(self, service: Service) -> dict[str, Any]:
        return service.capabilities.describe()
