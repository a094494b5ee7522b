"""Health probes (no auth): /health, /health/ready, /health/live."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get

from app.api.deps import Service


def _starting_body(service: Service) -> dict[str, Any]:
    failure = service.failure
    return {"reason": f"start-up failed: {failure}" if failure else "loading models",
            "starting": failure is None, "version": service.version}


class HealthController(Controller):
    path = "/health"

    @get("/", sync_to_thread=False)
    def health(self, service: Service) -> Response[dict[str, Any]]:
        if not service.ready:
            body = {"status": "starting", **_starting_body(service)}
            return Response(body, status_code=503, headers={"Retry-After": "1"})
        reason = service.degraded()
        # Alive and serving reads: "healthy" (clients test it), with `degraded` and a short
        # reason while writes fail.
        healthy: dict[str, Any] = {
            "status": "healthy", "service": "dakera", "version": service.version,
            "uptime_seconds": service.uptime(), "degraded": reason is not None,
            "config_warnings": []}
        if reason:
            healthy["reason"] = reason
        return Response(healthy)

    @get("/ready", sync_to_thread=True)
    def ready(self, service: Service) -> Response[dict[str, Any]]:
        if not service.ready:
            body = {"ready": False, **_starting_body(service), "downloads": []}
            return Response(body, status_code=503, headers={"Retry-After": "1"})
        checks = service.readiness_checks()
        ok = all(c["status"] == "ok" for c in checks.values())
        ready: dict[str, Any] = {"ready": ok, "version": service.version, "checks": checks}
        if ok:
            return Response(ready)
        # Not ready: reads may still be served ("degraded": writes fail), and the reason
        # is short; the full error is in the server's log.
        ready["degraded"] = all(c["status"] in ("ok", "degraded") for c in checks.values())
        ready["reason"] = "; ".join(c["reason"] for c in checks.values() if "reason" in c)
        return Response(ready, status_code=503, headers={"Retry-After": "5"})

    @get("/live", sync_to_thread=False)
    def live(self, service: Service) -> dict[str, Any]:
        return {"alive": True, "version": service.version, "uptime_seconds": service.uptime(),
                "starting": not service.ready}


class CapabilitiesController(Controller):
    path = "/v1/capabilities"

    @get("/", sync_to_thread=False)
    def capabilities(self, service: Service) -> dict[str, Any]:
        return service.capabilities.describe()
