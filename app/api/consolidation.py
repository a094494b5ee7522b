"""Consolidation and deduplication: POST /v1/memory/consolidate, /v1/agents/{id}/consolidate
(+ its log and config), POST /v1/knowledge/deduplicate, and AutoPilot under /v1/admin and
/admin; summarize and compress answer 501 -> service.consolidation and service.autopilot."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Router, get, patch, post, put
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from app.api.deps import Service
from app.api.graph import Out, shaped
from app.api.schemas import (
    ConsolidateRequest,
    DeduplicateRequest,
    MemoryOut,
    TriggerRequest,
    error_responses,
)
from app.api.scopes import in_body, in_path, need
from app.errors import ValidationError


class ConsolidateOut(Out):
    consolidated_memory: MemoryOut | None  # null: nothing similar enough to merge
    source_memory_ids: list[str]
    memories_removed: int
    message: str | UnsetType = UNSET


class AgentConsolidationOut(Out):
    agent_id: str
    memories_scanned: int
    clusters_found: int
    memories_deprecated: int  # folded into their cluster's anchor, restorable from the trash
    anchor_ids: list[str]
    deprecated_ids: list[str]


class ConsolidationRun(Out):
    timestamp: int
    memories_scanned: int
    clusters_found: int
    memories_deprecated: int
    anchor_ids: list[str]
    deprecated_ids: list[str]
    trigger: str  # api or autopilot


class ConsolidationConfigOut(Out):
    agent_id: str
    enabled: bool
    epsilon: float  # cosine distance: neighbours are at cosine >= 1 - epsilon
    min_samples: int
    soft_deprecation_days: int


class DeduplicateOut(Out):
    agent_id: str
    dry_run: bool
    memories_scanned: int
    groups: list[list[str]]  # each group's survivor (the oldest) first
    duplicates_found: int
    duplicates_merged: int
    duplicates_skipped_changed: int
    removed_count: int


class AutopilotConfigOut(Out):
    enabled: bool
    dedup_threshold: float
    dedup_interval_hours: int
    consolidation_interval_hours: int
    dedup_mode: str  # off, report or merge
    dedup_cross_session: bool
    consolidate_cross_session: bool
    trash_retention_hours: int


class DedupRun(Out):
    at: int
    mode: str
    agents: int
    duplicates_found: int
    duplicates_merged: int


class ConsolidationPass(Out):
    at: int
    agents: int
    clusters_found: int
    memories_deprecated: int


class AutopilotStatusOut(Out):
    enabled: bool
    config: AutopilotConfigOut
    running: bool
    last_dedup: DedupRun | None
    last_consolidation: ConsolidationPass | None
    next_dedup_at: int | None
    next_consolidation_at: int | None


class AutopilotConfigSet(Out):
    updated: bool
    config: AutopilotConfigOut


class AutopilotTriggered(Out):
    action: str
    triggered: bool
    dedup: DedupRun | UnsetType = UNSET
    consolidation: ConsolidationPass | UnsetType = UNSET


class ConsolidationController(Controller):
    path = "/v1"

    @post("/memory/consolidate", status_code=200, sync_to_thread=True,
          responses=error_responses(404, 409, 415),
          opt=need("write", agent=in_body()))
    def consolidate(self, data: JSONBody[ConsolidateRequest], service: Service
                    ) -> ConsolidateOut:
        if data.dry_run:
            raise ValidationError("consolidate has no dry run: it merges the memories. "
                                  "Preview duplicates with POST /v1/knowledge/deduplicate "
                                  "and dry_run true")
        return shaped(ConsolidateOut, service.consolidation.consolidate(
            data.agent_id, memory_ids=data.memory_ids, threshold=data.threshold,
            target_type=data.target_type))

    @post("/agents/{agent_id:str}/consolidate", status_code=200, sync_to_thread=True,
          responses=error_responses(),
          opt=need("write", agent=in_path()))
    def consolidate_agent(self, agent_id: FromPath[str], service: Service
                          ) -> AgentConsolidationOut:
        return shaped(AgentConsolidationOut, service.consolidation.consolidate_agent(agent_id))

    @get("/agents/{agent_id:str}/consolidation/log", sync_to_thread=True,
         responses=error_responses(),
          opt=need("read", agent=in_path()))
    def log(self, agent_id: FromPath[str], service: Service) -> list[ConsolidationRun]:
        return shaped(list[ConsolidationRun], service.consolidation.log(agent_id))

    @get("/agents/{agent_id:str}/consolidation/config", sync_to_thread=True,
         responses=error_responses(),
          opt=need("read", agent=in_path()))
    def config(self, agent_id: FromPath[str], service: Service) -> ConsolidationConfigOut:
        return shaped(ConsolidationConfigOut, service.consolidation.config(agent_id))

    @patch("/agents/{agent_id:str}/consolidation/config", sync_to_thread=True,
           responses=error_responses(415),
          opt=need("write", agent=in_path()))
    def set_config(self, agent_id: FromPath[str], data: JSONBody[dict[str, Any]],
                   service: Service) -> ConsolidationConfigOut:
        return shaped(ConsolidationConfigOut, service.consolidation.set_config(agent_id, data))

    # Not offered (they write new text with a language model): they answer 501 to say so,
    # and the OpenAPI document does not list them.
    @post("/agents/{agent_id:str}/compress", status_code=200, sync_to_thread=True,
          include_in_schema=False,
          opt=need("write", agent=in_path()))
    def compress(self, agent_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.consolidation.compress(agent_id)

    @post("/knowledge/summarize", status_code=200, sync_to_thread=True,
          include_in_schema=False,
          opt=need("write"))
    def summarize(self, service: Service) -> dict[str, Any]:
        return service.consolidation.summarize()

    @post("/knowledge/deduplicate", status_code=200, sync_to_thread=True,
          responses=error_responses(415),
          opt=need("write", agent=in_body()))
    def deduplicate(self, data: JSONBody[DeduplicateRequest], service: Service
                    ) -> DeduplicateOut:
        return shaped(DeduplicateOut, service.consolidation.deduplicate(
            data.agent_id, dry_run=data.dry_run, threshold=data.threshold,
            memory_type=data.memory_type))


class AutopilotController(Controller):
    path = "/autopilot"

    @get("/status", sync_to_thread=True, responses=error_responses(),
          opt=need("read"))
    def status(self, service: Service) -> AutopilotStatusOut:
        return shaped(AutopilotStatusOut, service.autopilot.status())

    @put("/config", sync_to_thread=True, responses=error_responses(415),
          opt=need("admin", every_namespace=True))
    def config(self, data: JSONBody[dict[str, Any]], service: Service) -> AutopilotConfigSet:
        return shaped(AutopilotConfigSet, service.autopilot.set_config(data))

    @post("/trigger", status_code=200, sync_to_thread=True, responses=error_responses(415),
          opt=need("admin", every_namespace=True))
    def trigger(self, data: JSONBody[TriggerRequest], service: Service) -> AutopilotTriggered:
        return shaped(AutopilotTriggered, service.autopilot.trigger(data.action))


# Admin routes live at both /v1/admin/... and /admin/..., as in the contract.
controllers: list[type[Controller] | Router] = [
    ConsolidationController,
    *(Router(path=prefix, route_handlers=[AutopilotController])
      for prefix in ("/v1/admin", "/admin"))]
