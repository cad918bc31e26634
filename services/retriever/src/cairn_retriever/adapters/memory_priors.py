"""The PriorStore port in dictionaries: for unit tests, the benchmark and development. The behaviour
suite (tests/prior_store_behaviour.py) runs the same tests against it and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cairn_retriever.domain.priors import ChunkKey, ServedContext, Votes


@dataclass
class InMemoryPriorStore:
    """Served requests by (tenant, request id); votes by (tenant, chunk key)."""

    served_by_request: dict[tuple[str, str], ServedContext] = field(default_factory=dict)
    counts: dict[tuple[str, ChunkKey], Votes] = field(default_factory=dict)

    async def record_served(self, served: ServedContext, conn: Any = None) -> None:
        self.served_by_request.setdefault((served.tenant, served.request_id), served)

    async def served(self, tenant: str, request_id: str) -> ServedContext | None:
        return self.served_by_request.get((tenant, request_id))

    async def purge_served(self, before: datetime) -> int:
        old = [key for key, s in self.served_by_request.items() if s.served_at < before]
        for key in old:
            del self.served_by_request[key]
        return len(old)

    async def add_votes(self, tenant: str, votes: Mapping[ChunkKey, Votes], conn: Any = None) -> None:
        for key, vote in votes.items():
            self.counts[(tenant, key)] = self.counts.get((tenant, key), Votes()) + vote

    async def votes(self, tenant: str, keys: Sequence[ChunkKey]) -> dict[ChunkKey, Votes]:
        return {key: self.counts[(tenant, key)] for key in keys if (tenant, key) in self.counts}
