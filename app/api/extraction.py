"""Entity extraction: POST /v1/memories/extract, POST /v1/extract, GET /v1/memory/entities/{id}
and each agent namespace's extraction config (/v1/namespaces/{ns}/config)
-> service.extraction and service.policies."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from app.api.deps import Service
from app.api.schemas import ExtractRequest, ExtractTextRequest


class ExtractionController(Controller):
    path = "/v1"

    @post("/memories/extract", status_code=200, sync_to_thread=True)
    def extract(self, data: JSONBody[ExtractRequest], service: Service) -> dict[str, Any]:
        return service.extraction.extract(data.content, data.entity_types, data.lang)

    @post("/extract", status_code=200, sync_to_thread=True)
    def extract_text(self, data: JSONBody[ExtractTextRequest], service: Service
                     ) -> dict[str, Any]:
        return service.extraction.extract_text(
            data.text, namespace=data.namespace, provider=data.provider, model=data.model,
            lang=data.lang, agent_id=data.agent_id, extractor_override=data.extractor_override)

    @get("/memory/entities/{memory_id:str}", sync_to_thread=True)
    def memory_entities(self, memory_id: FromPath[str], service: Service,
                        agent_id: FromQuery[str | None] = None) -> dict[str, Any]:
        return service.extraction.memory_entities(memory_id, agent_id)


class NamespaceConfigController(Controller):
    path = "/v1/namespaces/{namespace:str}/config"

    @get("/", sync_to_thread=True)
    def get_config(self, namespace: FromPath[str], service: Service) -> dict[str, Any]:
        return service.policies.ner(namespace)

    @patch("/", sync_to_thread=True)
    def patch_config(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
                     service: Service) -> dict[str, Any]:
        return service.policies.set_ner(namespace, data, replace=False)

    @put("/", sync_to_thread=True)
    def put_config(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
                   service: Service) -> dict[str, Any]:
        return service.policies.set_ner(namespace, data, replace=True)


controllers = [ExtractionController, NamespaceConfigController]
