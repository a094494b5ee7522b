"""Entity extraction: POST /v1/memories/extract, POST /v1/extract, GET /v1/memory/entities/{id}
and each agent namespace's extraction config (/v1/namespaces/{ns}/config)
-> service.extraction and service.policies."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, UnsetType

from app.api.deps import Service
from app.api.graph import Out, shaped
from app.api.schemas import ExtractRequest, ExtractTextRequest, error_responses
from app.api.scopes import memory_in_path, namespace_in_path, need, target_in_body


class EntityOut(Out):
    """One entity: its type, the text as written, a key equal for two mentions of the same
    thing (dates as ISO yyyy-mm-dd), its character span and the rule's confidence (0-1)."""

    entity_type: str
    value: str
    normalized: str
    score: float
    start: int
    end: int


class EntitiesOut(Out):
    entities: list[EntityOut]
    warnings: list[str] | UnsetType = UNSET


class ExtractionOut(Out):
    entities: list[EntityOut]
    provider: str  # "rules": this server's own
    model: str | None
    duration_ms: float
    warnings: list[str] | UnsetType = UNSET


class MemoryEntitiesOut(Out):
    memory_id: str
    agent_id: str
    entities: list[EntityOut]
    count: int
    extracted_at_store: bool  # false: found now (the agent's extraction is off)


class NerConfigOut(Out):
    namespace: str
    extract_entities: bool
    entity_types: list[str]


class ExtractionController(Controller):
    path = "/v1"

    @post("/memories/extract", status_code=200, sync_to_thread=True,
          responses=error_responses(413, 415),
          opt=need("read"))
    def extract(self, data: JSONBody[ExtractRequest], service: Service) -> EntitiesOut:
        return shaped(EntitiesOut, service.extraction.extract(data.content, data.entity_types,
                                                              data.lang))

    @post("/extract", status_code=200, sync_to_thread=True,
          responses=error_responses(404, 413, 415, 501),
          opt=need("read", namespace=target_in_body()))
    def extract_text(self, data: JSONBody[ExtractTextRequest], service: Service
                     ) -> ExtractionOut:
        return shaped(ExtractionOut, service.extraction.extract_text(
            data.text, namespace=data.namespace, provider=data.provider, model=data.model,
            lang=data.lang, agent_id=data.agent_id, extractor_override=data.extractor_override))

    @get("/memory/entities/{memory_id:str}", sync_to_thread=True,
         responses=error_responses(404),
          opt=need("read", agent=memory_in_path()))
    def memory_entities(self, memory_id: FromPath[str], service: Service,
                        agent_id: FromQuery[str | None] = None) -> MemoryEntitiesOut:
        return shaped(MemoryEntitiesOut, service.extraction.memory_entities(memory_id,
                                                                            agent_id))


class NamespaceConfigController(Controller):
    path = "/v1/namespaces/{namespace:str}/config"

    @get("/", sync_to_thread=True, responses=error_responses(404),
          opt=need("read", namespace=namespace_in_path()))
    def get_config(self, namespace: FromPath[str], service: Service) -> NerConfigOut:
        return shaped(NerConfigOut, service.policies.ner(namespace))

    @patch("/", sync_to_thread=True, responses=error_responses(404, 415, 422),
          opt=need("write", namespace=namespace_in_path()))
    def patch_config(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
                     service: Service) -> NerConfigOut:
        return shaped(NerConfigOut, service.policies.set_ner(namespace, data, replace=False))

    @put("/", sync_to_thread=True, responses=error_responses(404, 415, 422),
          opt=need("write", namespace=namespace_in_path()))
    def put_config(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
                   service: Service) -> NerConfigOut:
        return shaped(NerConfigOut, service.policies.set_ner(namespace, data, replace=True))


controllers = [ExtractionController, NamespaceConfigController]
