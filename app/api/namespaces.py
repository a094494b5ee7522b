"""/v1/namespaces: namespaces (-> service.namespaces), raw vectors (-> service.vectors), and
text, full-text and hybrid search (-> service.text). Bodies are taken as JSON objects and
checked by the service, which names the field at fault."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody

from app.api.deps import Principal, Service
from app.api.schemas import UpsertRequest, error_responses
from app.api.scopes import namespace_in_body, namespace_in_path, need
from app.errors import ValidationError

Body = JSONBody[dict[str, Any]]
# What these routes answer besides 2xx (the error envelope), for the OpenAPI document.
ERRORS = error_responses(404, 413, 415)


def _require(data: dict[str, Any], field: str) -> Any:
    if data.get(field) is None:
        raise ValidationError(f"'{field}' is required")
    return data[field]


class NamespaceController(Controller):
    path = "/v1/namespaces"

    @get("/", sync_to_thread=True, responses=ERRORS,
         opt=need("read", listing=True))
    def list_namespaces(self, service: Service, principal: Principal) -> dict[str, Any]:
        """Every namespace the key reaches (agent namespaces included, with their kinds)."""
        found = service.namespaces.all()
        names = [n for n in found["namespaces"] if principal.reaches(n)]
        return {"namespaces": names, "kinds": {n: found["kinds"][n] for n in names}}

    @post("/", status_code=201, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_body("name", "namespace")))
    def create(self, data: Body, service: Service) -> dict[str, Any]:
        if data.get("dimension") is None:
            err = ValidationError("'dimension' is required to create a namespace (or upsert "
                                  "vectors into a new one: it takes their dimension)",
                                  code="UNPROCESSABLE_CONTENT")
            err.status = 422
            raise err
        return service.namespaces.create(
            data.get("name", data.get("namespace")), data["dimension"],
            distance_=data.get("distance"), index_type=data.get("index_type"),
            metadata=data.get("metadata"))

    @get("/{namespace:str}", sync_to_thread=True, responses=ERRORS,
         opt=need("read", namespace=namespace_in_path()))
    def describe(self, namespace: FromPath[str], service: Service) -> dict[str, Any]:
        return service.namespaces.describe(namespace)

    @get("/{namespace:str}/stats", sync_to_thread=True, responses=ERRORS,
         opt=need("read", namespace=namespace_in_path()))
    def stats(self, namespace: FromPath[str], service: Service) -> dict[str, Any]:
        """What older JS/RS clients call (§8); the same as GET /v1/namespaces/{ns}."""
        return service.namespaces.describe(namespace)

    @put("/{namespace:str}", sync_to_thread=True, responses=ERRORS,
         opt=need("write", namespace=namespace_in_path()))
    def configure(self, namespace: FromPath[str], data: Body,
                  service: Service) -> dict[str, Any]:
        return service.namespaces.configure(namespace, _require(data, "dimension"),
                                            data.get("distance"))

    @delete("/{namespace:str}", status_code=200, sync_to_thread=True, responses=ERRORS,
            opt=need("admin", namespace=namespace_in_path()))
    def remove(self, namespace: FromPath[str], service: Service) -> dict[str, Any]:
        return service.namespaces.delete(namespace)


class VectorController(Controller):
    path = "/v1/namespaces/{namespace:str}"

    @post("/vectors", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def upsert(self, namespace: FromPath[str], data: JSONBody[UpsertRequest],
               service: Service) -> dict[str, Any]:
        return service.vectors.upsert(namespace, [
            {"id": v.id, "values": v.vector if v.values is None else v.values,
             "metadata": v.metadata, "ttl_seconds": v.ttl_seconds} for v in data.vectors])

    @post("/upsert-columns", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def upsert_columns(self, namespace: FromPath[str], data: Body,
                       service: Service) -> dict[str, Any]:
        """Column form of an upsert: ids, vectors and attributes (name -> one value per
        id) become rows."""
        ids, vectors = _require(data, "ids"), _require(data, "vectors")
        attributes = data.get("attributes") or {}
        if not isinstance(ids, list) or not isinstance(vectors, list) or len(ids) != len(
                vectors):
            raise ValidationError("'ids' and 'vectors' must be lists of the same length")
        if not isinstance(attributes, dict) or any(
                not isinstance(v, list) or len(v) != len(ids) for v in attributes.values()):
            raise ValidationError("'attributes' must map names to lists with one value per id")
        rows = [{"id": ids[i], "values": vectors[i], "ttl_seconds": data.get("ttl_seconds"),
                 "metadata": {name: values[i] for name, values in attributes.items()}}
                for i in range(len(ids))]
        out = service.vectors.upsert(namespace, rows)
        return {**out, "upserted": out["upserted_count"]}

    @post("/query", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def query(self, namespace: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        return service.vectors.query(
            namespace, _require(data, "vector"), top_k=data.get("top_k", 10),
            filter=data.get("filter"),
            include_vectors=data.get("include_vectors", data.get("include_values", False)),
            include_metadata=data.get("include_metadata", True),
            distance_metric=data.get("distance_metric"), consistency=data.get("consistency"))

    @post("/batch-query", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def batch_query(self, namespace: FromPath[str], data: Body,
                    service: Service) -> dict[str, Any]:
        return service.vectors.batch_query(namespace, _require(data, "queries"))

    @post("/vectors/delete", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def delete_ids(self, namespace: FromPath[str], data: Body,
                   service: Service) -> dict[str, Any]:
        return service.vectors.delete(namespace, _require(data, "ids"))

    @post("/delete", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def delete_alias(self, namespace: FromPath[str], data: Body,
                     service: Service) -> dict[str, Any]:
        """The path GO clients call (§8) for /vectors/delete (or, with a filter, bulk-delete)."""
        if data.get("ids") is None and data.get("filter") is not None:
            return service.vectors.bulk_delete(namespace, data["filter"])
        return service.vectors.delete(namespace, _require(data, "ids"))

    @post("/vectors/bulk-delete", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def bulk_delete(self, namespace: FromPath[str], data: Body,
                    service: Service) -> dict[str, Any]:
        return service.vectors.bulk_delete(namespace, data.get("filter"))

    @post("/vectors/bulk-update", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def bulk_update(self, namespace: FromPath[str], data: Body,
                    service: Service) -> dict[str, Any]:
        return service.vectors.bulk_update(namespace, data.get("filter"),
                                           _require(data, "update"))

    @post("/vectors/count", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def count(self, namespace: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        return service.vectors.count(namespace, data.get("filter"))

    @post("/fetch", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def fetch(self, namespace: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        """Vectors by id (what JS/RS clients call, §8)."""
        return service.vectors.fetch(namespace, _require(data, "ids"),
                                     include_vectors=data.get("include_vectors", True))

    @post("/flush", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def flush(self, namespace: FromPath[str], service: Service) -> dict[str, Any]:
        """What JS/RS clients call (§8): every write is durable once it answers, so there is
        nothing to flush; the namespace must exist."""
        service.namespaces.describe(namespace)
        return {"namespace": namespace, "flushed": True}

    @post("/export", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def export(self, namespace: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        return service.vectors.export(
            namespace, cursor=data.get("cursor"), filter=data.get("filter"),
            include_vectors=data.get("include_vectors", True),
            limit=data.get("limit", data.get("top_k")))


class TextController(Controller):
    path = "/v1/namespaces/{namespace:str}"

    @post("/upsert-text", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def upsert_text(self, namespace: FromPath[str], data: Body,
                    service: Service) -> dict[str, Any]:
        return service.text.upsert_text(namespace, _require(data, "documents"),
                                        data.get("model"))

    @post("/query-text", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def query_text(self, namespace: FromPath[str], data: Body,
                   service: Service) -> dict[str, Any]:
        return service.text.query_text(
            namespace, data.get("text", data.get("query")), top_k=data.get("top_k", 10),
            filter=data.get("filter"), include_text=data.get("include_text", True),
            include_vectors=data.get("include_vectors", False), model=data.get("model"))

    @post("/batch-query-text", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def batch_query_text(self, namespace: FromPath[str], data: Body,
                         service: Service) -> dict[str, Any]:
        return service.text.batch_query_text(
            namespace, _require(data, "queries"), top_k=data.get("top_k", 10),
            filter=data.get("filter"), include_vectors=data.get("include_vectors", False),
            model=data.get("model"))

    @post("/fulltext/index", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def index(self, namespace: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        return service.text.index_documents(namespace, _require(data, "documents"))

    @post("/fulltext/search", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def search(self, namespace: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        return service.text.fulltext_search(namespace, data.get("query", data.get("text")),
                                            top_k=data.get("top_k", 10),
                                            filter=data.get("filter"))

    @post("/fulltext/delete", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("write", namespace=namespace_in_path()))
    def unindex(self, namespace: FromPath[str], data: Body,
                service: Service) -> dict[str, Any]:
        return service.text.fulltext_delete(namespace, _require(data, "ids"))

    @get("/fulltext/stats", sync_to_thread=True, responses=ERRORS,
         opt=need("read", namespace=namespace_in_path()))
    def stats(self, namespace: FromPath[str], service: Service) -> dict[str, Any]:
        return service.text.fulltext_stats(namespace)

    @post("/hybrid", status_code=200, sync_to_thread=True, responses=ERRORS,
          opt=need("read", namespace=namespace_in_path()))
    def hybrid(self, namespace: FromPath[str], data: Body, service: Service) -> dict[str, Any]:
        """{text, vector?, vector_weight [0.5], top_k, filter}; older clients' {query,
        alpha} are the same fields."""
        weight = data.get("vector_weight")
        return service.text.hybrid(
            namespace, data.get("text", data.get("query")), vector=data.get("vector"),
            vector_weight=data.get("alpha") if weight is None else weight,
            top_k=data.get("top_k", 10), filter=data.get("filter"),
            include_metadata=data.get("include_metadata", True),
            include_vectors=data.get("include_vectors", False))


class IndexAdminController(Controller):
    """Mounted under /v1/admin and /admin (§3.7)."""

    path = "/indexes"

    @get("/stats", sync_to_thread=True, responses=ERRORS,
         opt=need("admin", listing=True))
    def stats(self, service: Service, principal: Principal) -> dict[str, Any]:
        """Every namespace's index statistics, by name (the newest GO client reads them
        here); only the namespaces the key reaches."""
        return service.namespaces.index_stats(principal.reaches)
