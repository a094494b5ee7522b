"""Decay administration (/v1/admin/decay and /admin/decay) -> service.decay."""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post, put
from litestar.params import JSONBody

from app.api.deps import Service
from app.api.schemas import DecayConfigRequest, error_responses
from app.api.scopes import need


class DecayConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    strategy: str  # exponential, linear or step
    half_life_hours: float
    min_importance: float  # the floor
    delete_below_floor: bool
    interval_secs: int  # between background passes (0: off)
    type_speeds: dict[str, float]
    never_accessed_multiplier: float
    access_boost: float


class DecayStats(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    memories_decayed: int  # by the last pass
    total_decayed: int
    total_deleted: int
    total_hard_deleted: int
    total_expired: int
    last_decay_at: int | None
    last_run_at: int | None
    last_run_duration_ms: float | None
    cycles_completed: int


class DecayRun(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    decayed: int
    deleted: int
    expired: int
    duration_ms: float
    stats: DecayStats


class DecayAdminController(Controller):
    path = "/decay"

    @get("/config", sync_to_thread=True, responses=error_responses(),
         opt=need("read"))
    def config(self, service: Service) -> DecayConfig:
        return msgspec.convert(service.decay.config(), DecayConfig)

    @put("/config", sync_to_thread=True, responses=error_responses(415),
         opt=need("admin", every_namespace=True))
    def set_config(self, data: JSONBody[DecayConfigRequest], service: Service) -> DecayConfig:
        return msgspec.convert(service.decay.set_config(
            strategy=data.strategy, half_life_hours=data.half_life_hours,
            min_importance=data.min_importance, delete_below_floor=data.delete_below_floor),
            DecayConfig)

    @get("/stats", sync_to_thread=True, responses=error_responses(),
         opt=need("admin", every_namespace=True))
    def stats(self, service: Service) -> DecayStats:
        return msgspec.convert(service.decay.stats(), DecayStats)

    @post("/run", status_code=200, sync_to_thread=True, responses=error_responses(),
          opt=need("admin", every_namespace=True))
    def run(self, service: Service) -> DecayRun:
        """Run a decay pass now (also removes expired memories)."""
        return msgspec.convert({**service.decay.run(), "stats": service.decay.stats()},
                               DecayRun)
