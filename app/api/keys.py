"""API keys: the root key's /admin/keys, namespace admins' /v1/namespaces/{ns}/keys, and
/v1/auth/whoami -> service.keys. Only /admin/keys (never /v1/admin/keys), as the contract
says."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from app.api.access import namespace_in_path, need
from app.api.deps import Principal, Service
from app.errors import UnprocessableError, ValidationError
from app.service.keys import UNSET

CREATE_FIELDS = ("name", "scope", "namespaces", "expires_in_days")
NAMESPACE_CREATE_FIELDS = ("name", "scope", "extra_namespaces", "expires_in_days")
UPDATE_FIELDS = ("name", "namespaces")
ROTATE_FIELDS = ("grace_secs",)

ROOT_ONLY = need("super_admin", every_namespace=True)
NAMESPACE_ADMIN = need("admin", namespace=namespace_in_path("namespace"))


def fields(data: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The body as an object with only the allowed fields (unknown ones are 422)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise UnprocessableError(f"unknown field(s) {', '.join(map(repr, unknown))}; this "
                                 f"route takes {', '.join(allowed)}")
    return data


class KeyAdminController(Controller):
    path = "/admin/keys"

    @post("/", status_code=201, opt=ROOT_ONLY, sync_to_thread=True)
    def create(self, data: JSONBody[dict[str, Any]], service: Service,
               principal: Principal) -> dict[str, Any]:
        body = fields(data, CREATE_FIELDS)
        return service.keys.create(principal, name=body.get("name"),
                                   scope=body.get("scope", "read"),
                                   namespaces=body.get("namespaces"),
                                   expires_in_days=body.get("expires_in_days"))

    @get("/", opt=ROOT_ONLY, sync_to_thread=True)
    def list_keys(self, service: Service) -> dict[str, Any]:
        return service.keys.all()

    @get("/{key_id:str}", opt=ROOT_ONLY, sync_to_thread=True)
    def get_key(self, key_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.keys.get(key_id)

    @patch("/{key_id:str}", opt=ROOT_ONLY, sync_to_thread=True)
    def update(self, key_id: FromPath[str], data: JSONBody[dict[str, Any]],
               service: Service) -> dict[str, Any]:
        body = fields(data, UPDATE_FIELDS)
        return service.keys.update(key_id, name=body.get("name", UNSET),
                                   namespaces=body.get("namespaces", UNSET))

    @delete("/{key_id:str}", status_code=200, opt=ROOT_ONLY, sync_to_thread=True)
    def delete_key(self, key_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.keys.delete(key_id)

    @post("/{key_id:str}/deactivate", status_code=200, opt=ROOT_ONLY, sync_to_thread=True)
    def deactivate(self, key_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.keys.deactivate(key_id)

    @post("/{key_id:str}/rotate", status_code=200, opt=ROOT_ONLY, sync_to_thread=True)
    def rotate(self, key_id: FromPath[str], service: Service,
               data: JSONBody[dict[str, Any] | None] = None) -> dict[str, Any]:
        body = fields(data, ROTATE_FIELDS)
        return service.keys.rotate(key_id, body.get("grace_secs"))

    @get("/{key_id:str}/usage", opt=ROOT_ONLY, sync_to_thread=True)
    def usage(self, key_id: FromPath[str], service: Service) -> dict[str, Any]:
        return service.keys.usage(key_id)


class NamespaceKeyController(Controller):
    path = "/v1/namespaces/{namespace:str}/keys"

    @post("/", status_code=201, opt=NAMESPACE_ADMIN, sync_to_thread=True)
    def create(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
               service: Service, principal: Principal) -> dict[str, Any]:
        body = fields(data, NAMESPACE_CREATE_FIELDS)
        return service.keys.create_in(principal, namespace, name=body.get("name"),
                                      scope=body.get("scope", "read"),
                                      extra_namespaces=body.get("extra_namespaces"),
                                      expires_in_days=body.get("expires_in_days"))

    @get("/", opt=NAMESPACE_ADMIN, sync_to_thread=True)
    def list_keys(self, namespace: FromPath[str], service: Service,
                  principal: Principal) -> dict[str, Any]:
        return service.keys.list_in(principal, namespace)

    @patch("/{key_id:str}", opt=NAMESPACE_ADMIN, sync_to_thread=True)
    def update(self, namespace: FromPath[str], key_id: FromPath[str],
               data: JSONBody[dict[str, Any]], service: Service,
               principal: Principal) -> dict[str, Any]:
        body = fields(data, UPDATE_FIELDS)
        return service.keys.update_in(principal, namespace, key_id,
                                      name=body.get("name", UNSET),
                                      namespaces=body.get("namespaces", UNSET))

    @delete("/{key_id:str}", status_code=200, opt=NAMESPACE_ADMIN, sync_to_thread=True)
    def delete_key(self, namespace: FromPath[str], key_id: FromPath[str], service: Service,
                   principal: Principal) -> dict[str, Any]:
        return service.keys.delete_in(principal, namespace, key_id)

    @get("/{key_id:str}/usage", opt=NAMESPACE_ADMIN, sync_to_thread=True)
    def usage(self, namespace: FromPath[str], key_id: FromPath[str], service: Service,
              principal: Principal) -> dict[str, Any]:
        return service.keys.usage_in(principal, namespace, key_id)


class WhoamiController(Controller):
    path = "/v1/auth/whoami"

    @get("/", opt=need("read"), sync_to_thread=False)
    def whoami(self, principal: Principal) -> dict[str, Any]:
        return principal.whoami()
