"""Health probes (no auth): /health, /health/ready, /health/live."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from app.api.contract import FEATURES
from app.api.deps import Service


def _starting_body(service: Service) -> dict[str, Any]:
    failure = service.failure
    return {"reason": f"start-up failed: {failure}" if failure else "loading models",
            "starting": failure is None, "version": service.version,
            "product_version": service.product_version}


class HealthController(Controller):
    path = "/health"

    @get("/", sync_to_thread=False)
    def health(self, service: Service) -> Response[dict[str, Any]]:
        if not service.ready:
            body = {"status": "starting", **_starting_body(service)}
            return Response(body, status_code=503, headers={"Retry-After": "1"})
        return Response({"status": "healthy", "service": "dakera", "version": service.version,
                         "product_version": service.product_version,
                         "uptime_seconds": service.uptime(), "degraded": False,
                         "config_warnings": []})

    @get("/ready", sync_to_thread=True)
    def ready(self, service: Service) -> Response[dict[str, Any]]:
        if not service.ready:
            body = {"ready": False, **_starting_body(service), "downloads": []}
            return Response(body, status_code=503, headers={"Retry-After": "1"})
        checks = service.readiness_checks()
        ok = all(c["status"] == "ok" for c in checks.values())
        body = {"ready": ok, "version": service.version,
                "product_version": service.product_version, "checks": checks}
        if ok:
            return Response(body)
        return Response(body, status_code=503, headers={"Retry-After": "5"})

    @get("/live", sync_to_thread=False)
    def live(self, service: Service) -> dict[str, Any]:
        return {"alive": True, "version": service.version,
                "product_version": service.product_version, "uptime_seconds": service.uptime(),
                "starting": not service.ready}


class CapabilitiesController(Controller):
    path = "/v1/capabilities"

    @get("/", sync_to_thread=False)
    def capabilities(self, service: Service, request: Request[Any, Any, Any]
                     ) -> dict[str, Any]:
        """What the service offers, and the contract features this server leaves out
        (their routes answer 501 FEATURE_DISABLED; see app/api/contract.py)."""
        routes = request.app.state.get("disabled")
        disabled = list(routes.features) if routes is not None else []
        return {**service.capabilities.describe(), "disabled_features": disabled,
                "features": {name: {"enabled": name not in disabled, "description": text}
                             for name, text in FEATURES.items()}}
