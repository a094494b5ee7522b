"""API keys: who a request is (`Principal`), what it may do (scopes and namespace grants),
and the keys the root key hands out (create, list, update, rotate, deactivate, delete).

A key is `dk_` + 32 hex digits, shown once when it is made; the store keeps only its
SHA-256. The root key is the server's own (`DAKERA_API_KEY`): super_admin over every
namespace, never stored. Scopes rank read < write < admin < super_admin; a key's
`namespaces` holds exact names or `prefix*` patterns (None = every namespace, [] = none).
Agents live in the namespace `_dakera_agent_<agent_id>`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.errors import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    KeyNotFoundError,
    NamespaceAccessDenied,
    ValidationError,
)
from app.models import ApiKey
from app.service.agents import AGENT_NAMESPACE_PREFIX
from app.store import Store

SCOPES = ("read", "write", "admin", "super_admin")
RANK = {scope: i for i, scope in enumerate(SCOPES)}
ROOT_KEY_ID = "root"
MAX_GRANTS = 100
MAX_GRANT_BYTES = 255
MAX_GRACE_SECS = 7 * 86_400
MAX_EXPIRY_DAYS = 36_500
MAX_NAME_CHARS = 255
# Server-internal namespaces: a grant naming one grants nothing (listed as inert).
INTERNAL_NAMESPACES = frozenset({"_dakera_sessions", "_dakera_embedding_models"})
GRANT = re.compile(r"^(\*|[A-Za-z0-9_][A-Za-z0-9_.:\-]*\*?)$")
SAVE_WARNING = "Save this key now: it is shown only once and cannot be retrieved again."


def agent_namespace(agent_id: str) -> str:
    return AGENT_NAMESPACE_PREFIX + agent_id


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def grant_matches(grant: str, namespace: str) -> bool:
    if grant in INTERNAL_NAMESPACES:
        return False
    if grant.endswith("*"):
        return namespace.startswith(grant[:-1])
    return grant == namespace


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as, and what that lets it do."""

    key_id: str
    name: str
    scope: str
    namespaces: tuple[str, ...] | None  # None = every namespace
    expires_at: int | None = None
    auth_enabled: bool = True

    @property
    def unrestricted(self) -> bool:
        return self.namespaces is None or "*" in self.namespaces

    @property
    def inert_namespaces(self) -> list[str]:
        return [g for g in self.namespaces or () if g in INTERNAL_NAMESPACES]

    def has_scope(self, scope: str) -> bool:
        return RANK[self.scope] >= RANK[scope]

    def reaches(self, namespace: str) -> bool:
        if self.unrestricted:
            return True
        return any(grant_matches(g, namespace) for g in self.namespaces or ())

    def reaches_agent(self, agent_id: str) -> bool:
        return self.reaches(agent_namespace(agent_id))

    def covers(self, grant: str) -> bool:
        """Whether a grant lies within this key's own grants (what it may hand on)."""
        if self.unrestricted:
            return True
        if grant == "*":
            return False
        if not grant.endswith("*"):
            return self.reaches(grant)
        prefix = grant[:-1]
        return any(g.endswith("*") and prefix.startswith(g[:-1]) and g not in
                   INTERNAL_NAMESPACES for g in self.namespaces or ())

    def require(self, scope: str) -> None:
        if not self.has_scope(scope):
            raise AuthorizationError(f"this needs the '{scope}' scope; the key "
                                     f"{self.key_id} has '{self.scope}'")

    def require_namespace(self, namespace: str) -> None:
        if not self.reaches(namespace):
            raise NamespaceAccessDenied(f"the key {self.key_id} has no access to the "
                                        f"namespace {namespace!r}", resource=namespace)

    def require_every_namespace(self) -> None:
        if not self.unrestricted:
            raise NamespaceAccessDenied(f"this needs a key for every namespace; the key "
                                        f"{self.key_id} is limited to "
                                        f"{', '.join(self.namespaces or ()) or 'none'}")

    def whoami(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "name": self.name, "scope": self.scope,
                "namespaces": None if self.namespaces is None else list(self.namespaces),
                "unrestricted": self.unrestricted, "expires_at": self.expires_at,
                "grants_version": 1, "inert_namespaces": self.inert_namespaces,
                "auth_enabled": self.auth_enabled}


AUTH_DISABLED = Principal("auth-disabled", "auth-disabled", "super_admin", None,
                          auth_enabled=False)
ROOT = Principal(ROOT_KEY_ID, "root", "super_admin", None)


def is_root(raw: str, settings: Settings) -> bool:
    """Whether `raw` is the server's root key (constant time, whatever the lengths)."""
    root = settings.api_key
    return bool(root) and hmac.compare_digest(hash_key(raw), hash_key(root or ""))


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # a field left out of a PATCH (None means "every namespace")


def check_scope(value: Any, allowed: tuple[str, ...] = SCOPES) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(f"'scope' must be one of {', '.join(allowed)}")
    return value


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("'name' must be a non-empty string")
    if len(value) > MAX_NAME_CHARS:
        raise ValidationError(f"'name' is longer than {MAX_NAME_CHARS} characters")
    return value.strip()


def check_grants(value: Any, field: str = "namespaces") -> list[str] | None:
    """A key's grants: None (every namespace) or a list of names and `prefix*` patterns."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValidationError(f"'{field}' must be a list of namespace names or prefix* "
                              "patterns, or null for every namespace")
    if len(value) > MAX_GRANTS:
        raise ValidationError(f"'{field}' has {len(value)} entries; at most {MAX_GRANTS}")
    out: list[str] = []
    for grant in value:
        if not isinstance(grant, str) or not GRANT.match(grant):
            raise ValidationError(
                f"'{field}' entry {grant!r} is not a namespace name or a prefix* pattern "
                "(letters, digits, _ . : - and one trailing *)")
        if len(grant.encode()) > MAX_GRANT_BYTES:
            raise ValidationError(f"'{field}' entry is longer than {MAX_GRANT_BYTES} bytes")
        if grant not in out:
            out.append(grant)
    return out


def check_expiry_days(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= \
            MAX_EXPIRY_DAYS:
        raise ValidationError(f"'expires_in_days' must be a whole number from 1 to "
                              f"{MAX_EXPIRY_DAYS}")
    return value


def check_grace(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= \
            MAX_GRACE_SECS:
        raise ValidationError(f"'grace_secs' must be a whole number of seconds from 0 to "
                              f"{MAX_GRACE_SECS} (7 days)")
    return value


class Keys:
    def __init__(self, store: Store, settings: Settings, now: Callable[[], int]) -> None:
        self.store = store
        self.settings = settings
        self.now = now
        self._cache: dict[str, ApiKey | None] = {}  # hash -> key (this process writes them)
        self._lock = threading.Lock()
        self._usage: dict[str, list[int]] = {}  # key id -> [requests, failed, last used]
        self._traffic: dict[str, list[float]] = {}  # key id -> [bytes, ms, requests] since start
        self._since = now()

    # -- who is asking ------------------------------------------------------------------

    def authenticate(self, raw: str) -> Principal:
        """The principal of a raw key other than the root key, or AuthenticationError."""
        digest = hash_key(raw)
        with self._lock:
            cached = self._cache.get(digest, False)
        if cached is False:
            cached = self.store.keys.by_hash(digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = cached
        key = cached if isinstance(cached, ApiKey) else None
        # The row was found by the hash; compare it again in constant time all the same.
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            raise AuthenticationError("invalid API key")
        if not key.active:
            raise AuthenticationError(
                f"the API key {key.key_id} was " + ("rotated; use its successor "
                                                   f"{key.rotated_to}" if key.rotated_to
                                                   else "deactivated"))
        if key.expires_at is not None and key.expires_at <= self.now():
            raise AuthenticationError(
                f"the API key {key.key_id} expired"
                + (f" (rotated; use its successor {key.rotated_to})" if key.rotated_to
                   else ""), code="API_KEY_EXPIRED")
        return Principal(key.key_id, key.name, key.scope,
                         None if key.namespaces is None else tuple(key.namespaces),
                         key.expires_at)

    def record(self, key_id: str, failed: bool, nbytes: int, latency_ms: float) -> None:
        """Count one request of a stored key (written to the store by flush_usage)."""
        with self._lock:
            usage = self._usage.setdefault(key_id, [0, 0, 0])
            usage[0] += 1
            usage[1] += int(failed)
            usage[2] = self.now()
            traffic = self._traffic.setdefault(key_id, [0.0, 0.0, 0.0])
            traffic[0] += nbytes
            traffic[1] += latency_ms
            traffic[2] += 1

    def flush_usage(self) -> int:
        with self._lock:
            pending, self._usage = self._usage, {}
        if pending:
            rows = [(k, u[0], u[1], u[2]) for k, u in pending.items()]
            self.store.write(lambda tx: tx.keys.add_usage(rows))
        return len(pending)

    # -- the root key's management (/admin/keys) ----------------------------------------

    def create(self, caller: Principal, *, name: Any, scope: Any = "read",
               namespaces: Any = None, expires_in_days: Any = None) -> dict[str, Any]:
        grants = check_grants(namespaces)
        return self._create(caller, check_name(name), check_scope(scope), grants,
                            check_expiry_days(expires_in_days))

    def all(self) -> dict[str, Any]:
        keys = [self.info(k) for k in self.store.keys.all()]
        return {"keys": keys, "total": len(keys)}

    def get(self, key_id: str) -> dict[str, Any]:
        return self.info(self._stored(key_id))

    def update(self, key_id: str, *, name: Any = UNSET, namespaces: Any = UNSET,
               caller: Principal | None = None) -> dict[str, Any]:
        if key_id == ROOT_KEY_ID:
            raise ValidationError("the root key is DAKERA_API_KEY; it cannot be changed here")
        if name is UNSET and namespaces is UNSET:
            raise ValidationError("give 'name' or 'namespaces' (null = every namespace)")
        new_name = None if name is UNSET else check_name(name)
        grants = None if namespaces is UNSET else check_grants(namespaces)
        if caller is not None and namespaces is not UNSET:
            self._check_can_grant(caller, grants)

        def job(tx: Any) -> ApiKey:
            key = tx.keys.get(key_id)
            if key is None:
                raise KeyNotFoundError(f"no API key {key_id!r}", resource="api_key")
            if not key.active:
                raise ConflictError(f"the API key {key_id} is inactive")
            if new_name is not None:
                key.name = new_name
            if namespaces is not UNSET:
                key.namespaces = grants
            tx.keys.update(key)
            return key

        key = self._write(job)
        return self.info(key)

    def deactivate(self, key_id: str) -> dict[str, Any]:
        def job(tx: Any) -> ApiKey:
            key = tx.keys.get(key_id)
            if key is None:
                raise KeyNotFoundError(f"no API key {key_id!r}", resource="api_key")
            key.active = False
            tx.keys.update(key)
            return key

        key = self._write(job)
        return {"success": True, "key_id": key.key_id, "active": False,
                "message": f"API key {key.key_id} deactivated"}

    def delete(self, key_id: str) -> dict[str, Any]:
        def job(tx: Any) -> bool:
            return bool(tx.keys.delete(key_id))

        if not self._write(job):
            raise KeyNotFoundError(f"no API key {key_id!r}", resource="api_key")
        return {"success": True, "key_id": key_id, "deleted": True,
                "message": f"API key {key_id} deleted"}

    def rotate(self, key_id: str, grace_secs: Any = None) -> dict[str, Any]:
        """A new key with the old one's name, scope, grants and expiry; the old one keeps
        working for grace_secs (0: deactivated at once)."""
        grace = check_grace(grace_secs)
        now = self.now()
        raw, new = self._new_key(now)

        def job(tx: Any) -> tuple[ApiKey, ApiKey]:
            old = tx.keys.get(key_id)
            if old is None:
                raise KeyNotFoundError(f"no API key {key_id!r}", resource="api_key")
            if not old.active or (old.expires_at is not None and old.expires_at <= now):
                raise ConflictError(f"the API key {key_id} is inactive or expired: create a "
                                    "new key instead")
            new.name, new.scope, new.namespaces = old.name, old.scope, old.namespaces
            new.expires_at, new.created_by = old.expires_at, old.created_by
            tx.keys.insert(new)
            old.rotated_to = new.key_id
            if grace:
                end = now + grace
                old.expires_at = end if old.expires_at is None else min(old.expires_at, end)
            else:
                old.active = False
            tx.keys.update(old)
            return old, new

        old, new = self._write(job)
        return {"new_key": raw, "key_id": new.key_id, "old_key_id": old.key_id,
                "old_key_expires_at": old.expires_at if old.active else None,
                "name": new.name, "scope": new.scope, "namespaces": new.namespaces,
                "created_at": new.created_at, "expires_at": new.expires_at,
                "warning": SAVE_WARNING}

    def usage(self, key_id: str) -> dict[str, Any]:
        key = self._stored(key_id)
        with self._lock:
            pending = list(self._usage.get(key_id, [0, 0, 0]))
            traffic = list(self._traffic.get(key_id, [0.0, 0.0, 0.0]))
        total = key.total_requests + pending[0]
        failed = key.failed_requests + pending[1]
        last = max(key.last_used_at or 0, pending[2]) or None
        return {"key_id": key_id, "name": key.name, "total_requests": total,
                "successful_requests": total - failed, "failed_requests": failed,
                "last_used_at": last, "bytes_transferred": int(traffic[0]),
                "avg_latency_ms": round(traffic[1] / traffic[2], 3) if traffic[2] else 0.0,
                "traffic_since": self._since}

    # -- keys managed by namespace admins (/v1/namespaces/{ns}/keys) ----------------------

    def create_in(self, caller: Principal, namespace: str, *, name: Any, scope: Any = "read",
                  extra_namespaces: Any = None, expires_in_days: Any = None
                  ) -> dict[str, Any]:
        scope = check_scope(scope, ("read", "write", "admin"))
        if not caller.has_scope(scope):
            raise AuthorizationError(f"a key with the '{caller.scope}' scope cannot create "
                                     f"a '{scope}' key")
        extra = check_grants(extra_namespaces, "extra_namespaces") or []
        grants = check_grants([namespace, *extra]) or []
        body = self._create(caller, check_name(name), scope, grants,
                            check_expiry_days(expires_in_days))
        body["namespace"] = namespace
        return body

    def list_in(self, caller: Principal, namespace: str) -> dict[str, Any]:
        keys = [{**self.info(k), "namespace": namespace} for k in self.store.keys.all()
                if self._manageable(caller, k, namespace)]
        return {"namespace": namespace, "keys": keys, "total": len(keys)}

    def update_in(self, caller: Principal, namespace: str, key_id: str, *, name: Any = UNSET,
                  namespaces: Any = UNSET) -> dict[str, Any]:
        self._managed(caller, namespace, key_id)
        return self.update(key_id, name=name, namespaces=namespaces, caller=caller)

    def delete_in(self, caller: Principal, namespace: str, key_id: str) -> dict[str, Any]:
        self._managed(caller, namespace, key_id)
        return self.delete(key_id)

    def usage_in(self, caller: Principal, namespace: str, key_id: str) -> dict[str, Any]:
        self._managed(caller, namespace, key_id)
        return {**self.usage(key_id), "namespace": namespace}

    # -- helpers ------------------------------------------------------------------------

    def info(self, key: ApiKey) -> dict[str, Any]:
        expired = key.expires_at is not None and key.expires_at <= self.now()
        return {"key_id": key.key_id, "name": key.name, "scope": key.scope,
                "namespaces": key.namespaces, "created_at": key.created_at,
                "expires_at": key.expires_at, "active": key.active and not expired,
                "expired": expired, "grants_version": 1,
                "inert_namespaces": [g for g in key.namespaces or ()
                                     if g in INTERNAL_NAMESPACES],
                "unrestricted": key.namespaces is None or "*" in key.namespaces,
                "created_by": key.created_by, "rotated_to": key.rotated_to,
                "last_used_at": key.last_used_at}

    def _create(self, caller: Principal, name: str, scope: str, grants: list[str] | None,
                days: int | None) -> dict[str, Any]:
        self._check_can_grant(caller, grants)
        now = self.now()
        raw, key = self._new_key(now)
        key.name, key.scope, key.namespaces = name, scope, grants
        key.expires_at = now + days * 86_400 if days else None
        key.created_by = caller.key_id
        self._write(lambda tx: tx.keys.insert(key))
        body = {**self.info(key), "key": raw, "warning": SAVE_WARNING}
        if not self.settings.api_key:
            body["warning"] += (" Authentication is off (no DAKERA_API_KEY): keys take "
                                "effect once the server runs with one.")
        return body

    def _check_can_grant(self, caller: Principal, grants: list[str] | None) -> None:
        if grants is None:
            if not caller.unrestricted:
                raise NamespaceAccessDenied("only a key for every namespace can grant every "
                                            "namespace (namespaces: null)")
            return
        outside = [g for g in grants if not caller.covers(g)]
        if outside:
            raise NamespaceAccessDenied(f"the key {caller.key_id} cannot grant "
                                        f"{', '.join(outside)}: outside its own namespaces")

    def _manageable(self, caller: Principal, key: ApiKey, namespace: str) -> bool:
        """A key a namespace admin may see and change: it reaches the namespace, all its
        grants lie within the caller's and its scope is not above the caller's."""
        if key.namespaces is None:
            return caller.unrestricted and caller.has_scope(key.scope)
        return (any(grant_matches(g, namespace) or g == namespace for g in key.namespaces)
                and all(caller.covers(g) for g in key.namespaces)
                and caller.has_scope(key.scope))

    def _managed(self, caller: Principal, namespace: str, key_id: str) -> ApiKey:
        key = self.store.keys.get(key_id)
        if key is None or not self._manageable(caller, key, namespace):
            raise KeyNotFoundError(f"no API key {key_id!r} in the namespace {namespace!r}",
                                   resource="api_key")
        return key

    def _stored(self, key_id: str) -> ApiKey:
        key = self.store.keys.get(key_id)
        if key is None:
            raise KeyNotFoundError(f"no API key {key_id!r}", resource="api_key")
        return key

    def _new_key(self, now: int) -> tuple[str, ApiKey]:
        raw = "dk_" + secrets.token_hex(16)
        key = ApiKey(key_id="dk_key_" + secrets.token_hex(8), key_hash=hash_key(raw),
                     name="", scope="read", namespaces=None, created_at=now)
        return raw, key

    def _write(self, job: Callable[[Any], Any]) -> Any:
        try:
            return self.store.write(job)
        finally:
            with self._lock:
                self._cache.clear()
