"""API keys in SQL: one row per key, found by the SHA-256 of the raw key (never stored)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from app.models import ApiKey
from app.store.protocol import ConnSource

_COLUMNS = ("key_id, key_hash, name, scope, namespaces, created_at, expires_at, active, "
            "created_by, rotated_to, last_used_at, total_requests, failed_requests")


def _row(r: Any) -> ApiKey:
    return ApiKey(key_id=r[0], key_hash=r[1], name=r[2], scope=r[3],
                  namespaces=None if r[4] is None else list(msgspec.json.decode(r[4])),
                  created_at=r[5], expires_at=r[6], active=bool(r[7]), created_by=r[8],
                  rotated_to=r[9], last_used_at=r[10], total_requests=r[11],
                  failed_requests=r[12])


def _namespaces(value: list[str] | None) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


class SqliteKeys:
    def __init__(self, conn: ConnSource) -> None:
        self._conn = conn

    def get(self, key_id: str) -> ApiKey | None:
        r = self._conn().execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?",
                                 (key_id,)).fetchone()
        return None if r is None else _row(r)

    def by_hash(self, key_hash: str) -> ApiKey | None:
        r = self._conn().execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?",
                                 (key_hash,)).fetchone()
        return None if r is None else _row(r)

    def all(self) -> list[ApiKey]:
        return [_row(r) for r in self._conn().execute(
            f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id")]

    def insert(self, key: ApiKey) -> None:
        self._conn().execute(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key.key_id, key.key_hash, key.name, key.scope, _namespaces(key.namespaces),
             key.created_at, key.expires_at, int(key.active), key.created_by, key.rotated_to,
             key.last_used_at, key.total_requests, key.failed_requests))

    def update(self, key: ApiKey) -> bool:
        """Save the mutable fields (name, namespaces, expiry, active, rotation)."""
        cur = self._conn().execute(
            "UPDATE api_keys SET name = ?, namespaces = ?, expires_at = ?, active = ?, "
            "rotated_to = ? WHERE key_id = ?",
            (key.name, _namespaces(key.namespaces), key.expires_at, int(key.active),
             key.rotated_to, key.key_id))
        return cur.rowcount > 0

    def delete(self, key_id: str) -> bool:
        return self._conn().execute("DELETE FROM api_keys WHERE key_id = ?",
                                    (key_id,)).rowcount > 0

    def add_usage(self, usage: Iterable[tuple[str, int, int, int]]) -> None:
        """(key_id, requests, failed, last used at) added to each key's counters."""
        self._conn().executemany(
            "UPDATE api_keys SET total_requests = total_requests + ?, "
            "failed_requests = failed_requests + ?, "
            "last_used_at = max(coalesce(last_used_at, 0), ?) WHERE key_id = ?",
            [(n, failed, at, key_id) for key_id, n, failed, at in usage])
