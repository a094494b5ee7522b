"""Decay administration (/v1/admin/decay and /admin/decay) -> service.decay."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post, put
from litestar.params import JSONBody

from app.api.deps import Service
from app.api.schemas import DecayConfigRequest


class DecayAdminController(Controller):
    path = "/decay"

    @get("/config", sync_to_thread=True)
    def config(self, service: Service) -> dict[str, Any]:
        return service.decay.config()

    @put("/config", sync_to_thread=True)
    def set_config(self, data: JSONBody[DecayConfigRequest], service: Service
                   ) -> dict[str, Any]:
        return service.decay.set_config(strategy=data.strategy,
                                        half_life_hours=data.half_life_hours,
                                        min_importance=data.min_importance,
                                        delete_below_floor=data.delete_below_floor)

    @get("/stats", sync_to_thread=True)
    def stats(self, service: Service) -> dict[str, Any]:
        return service.decay.stats()

    @post("/run", status_code=200, sync_to_thread=True)
    def run(self, service: Service) -> dict[str, Any]:
        """Run a decay pass now (also removes expired memories)."""
        return {**service.decay.run(), "stats": service.decay.stats()}
