"""The Repository in dictionaries, for unit tests; the same behaviour suite runs against PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, TypeVar

from cairn_events import FeedbackSubmittedV1, InputScreenedV1, RequestSubmittedV1, ResponseCompletedV1
from cairn_feedback.domain.records import (
    DatasetSummary,
    DatasetVersion,
    RequestTrail,
    answered_by,
    check_made,
    feedback_order,
)

E = TypeVar("E")


class _Latest(Generic[E]):
    """One event per request id: the one with the greatest (event time, event id)."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[datetime, str, E]] = {}

    def put(self, request_id: str, at: datetime, event_id: str, event: E) -> None:
        current = self.items.get(request_id)
        if current is None or (at, event_id) > (current[0], current[1]):
            self.items[request_id] = (at, event_id, event)

    def get(self, request_id: str) -> E | None:
        found = self.items.get(request_id)
        return found[2] if found else None


class InMemoryRepository:
    """Repository in memory; `fail_with` makes every call raise (an outage)."""

    def __init__(self) -> None:
        self.requests: _Latest[RequestSubmittedV1] = _Latest()
        self.screenings: _Latest[InputScreenedV1] = _Latest()
        self.responses: _Latest[ResponseCompletedV1] = _Latest()
        self.shadow_responses: _Latest[ResponseCompletedV1] = _Latest()
        self.feedback: dict[str, FeedbackSubmittedV1] = {}
        self._versions: dict[str, list[DatasetVersion]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fail_with: Exception | None = None

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def save_request(self, event: RequestSubmittedV1, event_id: str) -> None:
        self._check()
        self.requests.put(event.request_id, event.submitted_at, event_id, event)

    async def save_screening(self, event: InputScreenedV1, event_id: str) -> None:
        self._check()
        self.screenings.put(event.request_id, event.screened_at, event_id, event)

    async def save_response(self, event: ResponseCompletedV1, event_id: str, *, shadow: bool = False) -> None:
        self._check()
        kept = self.shadow_responses if shadow else self.responses
        kept.put(event.request_id, event.completed_at, event_id, event)

    async def save_feedback(self, event: FeedbackSubmittedV1, event_id: str) -> bool:
        self._check()
        if event.feedback_id in self.feedback:
            return False
        self.feedback[event.feedback_id] = event
        return True

    async def trail(self, request_id: str) -> RequestTrail:
        self._check()
        feedback = sorted(
            (f for f in self.feedback.values() if f.request_id == request_id), key=feedback_order
        )
        return RequestTrail(
            request_id=request_id,
            request=self.requests.get(request_id),
            screening=self.screenings.get(request_id),
            response=self.responses.get(request_id),
            feedback=tuple(feedback),
            shadow_response=self.shadow_responses.get(request_id),
        )

    async def trails_with_feedback(self) -> list[RequestTrail]:
        self._check()
        return [await self.trail(rid) for rid in sorted({f.request_id for f in self.feedback.values()})]

    async def trails_answered_by(self, model: str) -> list[RequestTrail]:
        self._check()
        ids = {
            rid
            for kept in (self.responses, self.shadow_responses)
            for rid, (_, _, event) in kept.items.items()
            if answered_by(event) == model
        }
        return [await self.trail(rid) for rid in sorted(ids)]

    async def add_version(
        self, dataset_id: str, make: Callable[[int], Awaitable[DatasetVersion]]
    ) -> DatasetVersion:
        self._check()
        async with self._locks.setdefault(dataset_id, asyncio.Lock()):
            versions = self._versions.setdefault(dataset_id, [])
            made = check_made(dataset_id, len(versions) + 1, await make(len(versions) + 1))
            versions.append(made)
            return made

    async def version(self, dataset_id: str, version: int | None = None) -> DatasetVersion | None:
        self._check()
        versions = self._versions.get(dataset_id, [])
        if version is None:
            return versions[-1] if versions else None
        return versions[version - 1] if 1 <= version <= len(versions) else None

    async def versions(self, dataset_id: str) -> list[DatasetVersion]:
        self._check()
        return list(self._versions.get(dataset_id, []))

    async def datasets(self) -> list[DatasetSummary]:
        self._check()
        return [
            DatasetSummary(
                dataset_id=name,
                versions=len(vs),
                latest_version=vs[-1].version,
                latest_rows=vs[-1].manifest.row_count,
                latest_created_at=vs[-1].manifest.created_at,
            )
            for name, vs in sorted(self._versions.items())
            if vs
        ]
