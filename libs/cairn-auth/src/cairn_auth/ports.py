"""The ports of access control: where API key records are kept."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cairn_auth.domain.keys import KeyRecord

__all__ = ["KeyStore"]


class KeyStore(Protocol):
    """Stored API keys (hashes only). Revoked keys are kept, with the time they were revoked."""

    async def add(self, record: KeyRecord) -> None:
        """Store a new key; raises DuplicateKeyError if its id exists already."""
        ...

    async def get(self, key_id: str) -> KeyRecord | None:
        """The key with this id (revoked or not), or None."""
        ...

    async def keys(self, tenant: str | None = None) -> list[KeyRecord]:
        """Every key (of `tenant` when given, exactly that tenant), oldest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> KeyRecord:
        """Revoke a key as of `at` and return it; revoking it again keeps the first time.

        Raises KeyNotFoundError for an unknown id.
        """
        ...
