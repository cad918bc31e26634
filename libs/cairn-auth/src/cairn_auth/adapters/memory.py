"""An in-memory KeyStore: for unit tests and single-process tools."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from cairn_auth.domain.errors import DuplicateKeyError, KeyNotFoundError
from cairn_auth.domain.keys import KeyRecord

__all__ = ["InMemoryKeyStore"]


class InMemoryKeyStore:
    """Keys in a dict, with the same promises as the PostgreSQL store."""

    def __init__(self) -> None:
        self._keys: dict[str, KeyRecord] = {}

    async def add(self, record: KeyRecord) -> None:
        if record.key_id in self._keys:
            raise DuplicateKeyError(f"API key {record.key_id} exists already")
        self._keys[record.key_id] = record

    async def get(self, key_id: str) -> KeyRecord | None:
        return self._keys.get(key_id)

    async def keys(self, tenant: str | None = None) -> list[KeyRecord]:
        found = [r for r in self._keys.values() if tenant is None or r.tenant == tenant]
        return sorted(found, key=lambda r: (r.created_at, r.key_id))

    async def revoke(self, key_id: str, at: datetime) -> KeyRecord:
        record = self._keys.get(key_id)
        if record is None:
            raise KeyNotFoundError(f"no API key {key_id}")
        if record.revoked_at is None:
            record = dataclasses.replace(record, revoked_at=at)
            self._keys[key_id] = record
        return record
