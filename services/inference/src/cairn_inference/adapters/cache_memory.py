"""The response cache in this process's memory: one replica, nothing kept across restarts.

An entry is unexpired while `now < expires_at`. Past `capacity` entries, the oldest stored are
dropped first (whether or not they have expired), so memory stays bounded between purges.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from cairn_inference.domain.cache import CachedAnswer

__all__ = ["InMemoryResponseCache"]


class InMemoryResponseCache:
    """`ResponseCache` in an ordered dict holding at most `capacity` entries."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.entries: OrderedDict[str, CachedAnswer] = OrderedDict()  # oldest stored first

    async def get(self, key: str, tenant: str, now: datetime) -> CachedAnswer | None:
        found = self.entries.get(key)
        if found is None or found.tenant != tenant or found.expires_at <= now:
            return None
        return found

    async def put(self, answer: CachedAnswer) -> None:
        stored = self.entries.get(answer.key)
        if stored is not None and stored.expires_at > answer.created_at:
            return  # the first unexpired answer wins
        self.entries.pop(answer.key, None)  # a replaced entry counts as stored now
        self.entries[answer.key] = answer
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    async def purge(self, before: datetime) -> int:
        expired = [key for key, entry in self.entries.items() if entry.expires_at < before]
        for key in expired:
            del self.entries[key]
        return len(expired)

    async def erase_tenant(self, tenant: str) -> int:
        theirs = [key for key, entry in self.entries.items() if entry.tenant == tenant]
        for key in theirs:
            del self.entries[key]
        return len(theirs)
