"""The response cache in this process's memory: one replica, nothing kept across restarts.

An entry is unexpired while `now < expires_at`. Past `capacity` entries, the oldest stored are
dropped first (whether or not they have expired), so memory stays bounded between purges. Entries
with a semantic scope are also listed per scope, for `nearest`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from cairn_inference.domain.cache import CachedAnswer, best_match
from cairn_inference.domain.questions import compatible

__all__ = ["InMemoryResponseCache"]


class InMemoryResponseCache:
    """`ResponseCache` in an ordered dict holding at most `capacity` entries."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.entries: OrderedDict[str, CachedAnswer] = OrderedDict()  # oldest stored first
        self.scopes: dict[str, dict[str, None]] = {}  # semantic scope -> its entries' keys

    async def get(self, key: str, tenant: str, now: datetime) -> CachedAnswer | None:
        found = self.entries.get(key)
        if found is None or found.tenant != tenant or found.expires_at <= now:
            return None
        return found

    async def put(self, answer: CachedAnswer) -> None:
        stored = self.entries.get(answer.key)
        if stored is not None and stored.expires_at > answer.created_at:
            return  # the first unexpired answer wins
        self._drop(answer.key)  # a replaced entry counts as stored now
        self.entries[answer.key] = answer
        if answer.scope is not None and answer.vector is not None:
            self.scopes.setdefault(answer.scope, {})[answer.key] = None
        while len(self.entries) > self.capacity:
            self._drop(next(iter(self.entries)))

    async def nearest(
        self, scope: str, tenant: str, vector: Sequence[float], signature: str, now: datetime
    ) -> tuple[CachedAnswer, float] | None:
        keys = self.scopes.get(scope, {})
        usable = (self.entries[k] for k in keys)
        match = best_match(
            vector,
            (
                (e.key, e.vector)
                for e in usable
                if e.tenant == tenant
                and e.expires_at > now
                and e.vector is not None
                and compatible(e.signature, signature)
            ),
        )
        return None if match is None else (self.entries[match[0]], match[1])

    async def purge(self, before: datetime) -> int:
        expired = [key for key, entry in self.entries.items() if entry.expires_at < before]
        for key in expired:
            self._drop(key)
        return len(expired)

    async def erase_tenant(self, tenant: str) -> int:
        theirs = [key for key, entry in self.entries.items() if entry.tenant == tenant]
        for key in theirs:
            self._drop(key)
        return len(theirs)

    def _drop(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is None or entry.scope is None:
            return
        keys = self.scopes.get(entry.scope)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self.scopes[entry.scope]
