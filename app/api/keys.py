"""API keys: the root key's /admin/keys, namespace admins' /v1/namespaces/{ns}/keys, and
/v1/auth/whoami -> service.keys. Only /admin/keys (never /v1/admin/keys), as the contract
says."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from app.api.deps import Principal, Service
from app.api.schemas import error_responses
from app.api.scopes import namespace_in_path, need
from app.errors import UnprocessableError, ValidationError
from app.service.keys import UNSET

CREATE_FIELDS = ("name", "scope", "namespaces", "expires_in_days")
NAMESPACE_CREATE_FIELDS = ("name", "scope", "extra_namespaces", "expires_in_days")
UPDATE_FIELDS = ("name", "namespaces")
ROTATE_FIELDS = ("grace_secs",)

class KeyInfo(msgspec.Struct, kw_only=True):
    """An API key as the server describes it (never its secret)."""

    key_id: str
    name: str
    scope: str
    namespaces: list[str] | None  # null = every namespace
    created_at: int
    expires_at: int | None
    active: bool
    expired: bool
    grants_version: int
    inert_namespaces: list[str]
    unrestricted: bool
    created_by: str | None
    rotated_to: str | None
    last_used_at: int | None
    namespace: str | msgspec.UnsetType = msgspec.UNSET


class CreatedKey(KeyInfo, kw_only=True):
    """A new key: `key` is shown this once."""

    key: str
    warning: str


class KeyList(msgspec.Struct, kw_only=True):
    keys: list[KeyInfo]
    total: int
    namespace: str | msgspec.UnsetType = msgspec.UNSET


class KeyAction(msgspec.Struct, kw_only=True):
    success: bool
    key_id: str
    message: str
    active: bool | msgspec.UnsetType = msgspec.UNSET
    deleted: bool | msgspec.UnsetType = msgspec.UNSET


class RotatedKey(msgspec.Struct, kw_only=True):
    """`new_key` is shown this once; `key_id` is the new key's id."""

    new_key: str
    key_id: str
    old_key_id: str
    old_key_expires_at: int | None  # null: the old key stopped at once
    name: str
    scope: str
    namespaces: list[str] | None
    created_at: int
    expires_at: int | None
    warning: str


class KeyUsage(msgspec.Struct, kw_only=True):
    """Counts are kept; bytes and latency since `traffic_since` (the server's start)."""

    key_id: str
    name: str
    total_requests: int
    successful_requests: int
    failed_requests: int
    last_used_at: int | None
    bytes_transferred: int
    avg_latency_ms: float
    traffic_since: int
    namespace: str | msgspec.UnsetType = msgspec.UNSET


class Whoami(msgspec.Struct, kw_only=True):
    key_id: str
    name: str
    scope: str
    namespaces: list[str] | None
    unrestricted: bool
    expires_at: int | None
    grants_version: int
    inert_namespaces: list[str]
    auth_enabled: bool


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


def _as(kind: type[Any], value: Any) -> Any:
    return msgspec.convert(value, kind)


E = error_responses


class KeyAdminController(Controller):
    path = "/admin/keys"

    @post("/", status_code=201, opt=ROOT_ONLY, sync_to_thread=True,
          responses=E(415, 422))
    def create(self, data: JSONBody[dict[str, Any]], service: Service,
               principal: Principal) -> CreatedKey:
        body = fields(data, CREATE_FIELDS)
        return _as(CreatedKey, service.keys.create(
            principal, name=body.get("name"), scope=body.get("scope", "read"),
            namespaces=body.get("namespaces"), expires_in_days=body.get("expires_in_days")))

    @get("/", opt=ROOT_ONLY, sync_to_thread=True, responses=E())
    def list_keys(self, service: Service) -> KeyList:
        return _as(KeyList, service.keys.all())

    @get("/{key_id:str}", opt=ROOT_ONLY, sync_to_thread=True, responses=E(404))
    def get_key(self, key_id: FromPath[str], service: Service) -> KeyInfo:
        return _as(KeyInfo, service.keys.get(key_id))

    @patch("/{key_id:str}", opt=ROOT_ONLY, sync_to_thread=True, responses=E(404, 409, 422))
    def update(self, key_id: FromPath[str], data: JSONBody[dict[str, Any]],
               service: Service) -> KeyInfo:
        body = fields(data, UPDATE_FIELDS)
        return _as(KeyInfo, service.keys.update(key_id, name=body.get("name", UNSET),
                                                namespaces=body.get("namespaces", UNSET)))

    @delete("/{key_id:str}", status_code=200, opt=ROOT_ONLY, sync_to_thread=True,
            responses=E(404))
    def delete_key(self, key_id: FromPath[str], service: Service) -> KeyAction:
        return _as(KeyAction, service.keys.delete(key_id))

    @post("/{key_id:str}/deactivate", status_code=200, opt=ROOT_ONLY, sync_to_thread=True,
          responses=E(404))
    def deactivate(self, key_id: FromPath[str], service: Service) -> KeyAction:
        return _as(KeyAction, service.keys.deactivate(key_id))

    @post("/{key_id:str}/rotate", status_code=200, opt=ROOT_ONLY, sync_to_thread=True,
          responses=E(404, 409, 422))
    def rotate(self, key_id: FromPath[str], service: Service,
               data: JSONBody[dict[str, Any] | None] = None) -> RotatedKey:
        body = fields(data, ROTATE_FIELDS)
        return _as(RotatedKey, service.keys.rotate(key_id, body.get("grace_secs")))

    @get("/{key_id:str}/usage", opt=ROOT_ONLY, sync_to_thread=True, responses=E(404))
    def usage(self, key_id: FromPath[str], service: Service) -> KeyUsage:
        return _as(KeyUsage, service.keys.usage(key_id))


class NamespaceKeyController(Controller):
    path = "/v1/namespaces/{namespace:str}/keys"

    @post("/", status_code=201, opt=NAMESPACE_ADMIN, sync_to_thread=True,
          responses=E(415, 422))
    def create(self, namespace: FromPath[str], data: JSONBody[dict[str, Any]],
               service: Service, principal: Principal) -> CreatedKey:
        body = fields(data, NAMESPACE_CREATE_FIELDS)
        return _as(CreatedKey, service.keys.create_in(
            principal, namespace, name=body.get("name"), scope=body.get("scope", "read"),
            extra_namespaces=body.get("extra_namespaces"),
            expires_in_days=body.get("expires_in_days")))

    @get("/", opt=NAMESPACE_ADMIN, sync_to_thread=True, responses=E())
    def list_keys(self, namespace: FromPath[str], service: Service,
                  principal: Principal) -> KeyList:
        return _as(KeyList, service.keys.list_in(principal, namespace))

    @patch("/{key_id:str}", opt=NAMESPACE_ADMIN, sync_to_thread=True,
           responses=E(404, 409, 422))
    def update(self, namespace: FromPath[str], key_id: FromPath[str],
               data: JSONBody[dict[str, Any]], service: Service,
               principal: Principal) -> KeyInfo:
        body = fields(data, UPDATE_FIELDS)
        return _as(KeyInfo, service.keys.update_in(
            principal, namespace, key_id, name=body.get("name", UNSET),
            namespaces=body.get("namespaces", UNSET)))

    @delete("/{key_id:str}", status_code=200, opt=NAMESPACE_ADMIN, sync_to_thread=True,
            responses=E(404))
    def delete_key(self, namespace: FromPath[str], key_id: FromPath[str], service: Service,
                   principal: Principal) -> KeyAction:
        return _as(KeyAction, service.keys.delete_in(principal, namespace, key_id))

    @get("/{key_id:str}/usage", opt=NAMESPACE_ADMIN, sync_to_thread=True, responses=E(404))
    def usage(self, namespace: FromPath[str], key_id: FromPath[str], service: Service,
              principal: Principal) -> KeyUsage:
        return _as(KeyUsage, service.keys.usage_in(principal, namespace, key_id))


class WhoamiController(Controller):
    path = "/v1/auth/whoami"

    @get("/", opt=need("read"), sync_to_thread=False, responses=E())
    def whoami(self, principal: Principal) -> Whoami:
        return _as(Whoami, principal.whoami())
