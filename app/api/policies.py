"""/v1/namespaces/{ns}/memory_policy (agent namespaces) and the AutoPilot status (its
deduplication settings) -> service.policies."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, put
from litestar.params import FromPath, JSONBody

from app.api.deps import Service


class PolicyController(Controller):
    path = "/v1/namespaces/{namespace:str}/memory_policy"

    @get("/", sync_to_thread=True)
    def get_policy(self, namespace: FromPath[str], service: Service) -> dict[str, Any]:
        return service.policies.get(namespace)

    @put("/", sync_to_thread=True)
    def put_policy(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
                   service: Service) -> dict[str, Any]:
        return service.policies.set(namespace, data)


class AutopilotController(Controller):
    path = "/autopilot"

    @get("/status", sync_to_thread=True)
    def status(self, service: Service) -> dict[str, Any]:
        return service.policies.autopilot_status()
