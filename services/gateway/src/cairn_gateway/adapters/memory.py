"""In-memory adapters for tests (one process, nothing kept)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from cairn_gateway.ports import StoredRequest


class InMemoryAnsweredRequests:
    """`AnsweredRequests` in a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredRequest] = {}

    async def claim(self, request: StoredRequest) -> StoredRequest | None:
        found = self.rows.get(request.request_id)
        if found is not None:
            return found
        self.rows[request.request_id] = replace(request, http_status=None, body=None, final=False)
        return None

    async def answer(
        self, request_id: str, http_status: int, body: dict[str, Any], final: bool, now: datetime
    ) -> None:
        found = self.rows.get(request_id)
        if found is None or found.final:
            return
        self.rows[request_id] = replace(found, http_status=http_status, body=dict(body), final=final)

    async def unfinished(self, since: datetime) -> list[StoredRequest]:
        rows = [r for r in self.rows.values() if not r.final and r.claimed_at >= since]
        return sorted(rows, key=lambda r: r.claimed_at)

    async def purge(self, before: datetime) -> int:
        old = [rid for rid, row in self.rows.items() if row.claimed_at < before]
        for rid in old:
            del self.rows[rid]
        return len(old)


class StaticCatalogue:
    """`Catalogue` with fixed listings."""

    def __init__(self, prompts: list[dict[str, Any]], models: list[dict[str, Any]]) -> None:
        self._prompts, self._models = prompts, models
        self.authorizations: list[str | None] = []

    async def prompts(self, authorization: str | None) -> list[dict[str, Any]]:
        self.authorizations.append(authorization)
        return list(self._prompts)

    async def models(self, authorization: str | None) -> list[dict[str, Any]]:
        return list(self._models)
