"""The feedback service's ports: where request trails, feedback and dataset versions are kept."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from cairn_events import FeedbackSubmittedV1, InputScreenedV1, RequestSubmittedV1, ResponseCompletedV1
from cairn_feedback.domain.records import DatasetSummary, DatasetVersion, RequestTrail


class Repository(Protocol):
    """Requests, screenings, responses and feedback as seen on the bus, and immutable dataset versions.

    Writes are idempotent upserts: requests, screenings and responses are kept one per request id (the
    latest by event time, then event id, so the order of arrival does not matter); feedback is kept
    one per feedback id (the first seen; a repeated id is a duplicate). Storage failures that may
    pass raise `cairn_bus.TransientError`.
    """

    async def save_request(self, event: RequestSubmittedV1, event_id: str) -> None:
        """Store the request (upsert per request id)."""
        ...

    async def save_screening(self, event: InputScreenedV1, event_id: str) -> None:
        """Store the request's screened input (upsert per request id)."""
        ...

    async def save_response(self, event: ResponseCompletedV1, event_id: str, *, shadow: bool = False) -> None:
        """Store the request's final response (upsert per request id). A `shadow` one (the answer of a
        replay, from `cairn.responses.shadow`) is kept apart: it never replaces the live answer and
        appears only as the trail's `shadow_response`."""
        ...

    async def save_feedback(self, event: FeedbackSubmittedV1, event_id: str) -> bool:
        """Store feedback, even for a request not seen (yet); False when its feedback id was stored before."""
        ...

    async def trail(self, request_id: str) -> RequestTrail:
        """What is stored about one request id (parts missing when not seen)."""
        ...

    async def trails_with_feedback(self) -> list[RequestTrail]:
        """The trail of every request id that has feedback, by request id."""
        ...

    async def trails_answered_by(self, model: str) -> list[RequestTrail]:
        """The trail of every request id whose live or shadow answer `model` gave (`answered_by`), by
        request id; it may hold other trails too (answers stored before the model was recorded)."""
        ...

    async def add_version(
        self, dataset_id: str, make: Callable[[int], Awaitable[DatasetVersion]]
    ) -> DatasetVersion:
        """Record the dataset's next version (previous + 1, from 1) made by `make(version)`.

        Builds of one dataset are serialised: `make` runs while the version number is held, so it may
        write the version's files first. When `make` raises, nothing is recorded. Recorded versions
        never change.
        """
        ...

    async def version(self, dataset_id: str, version: int | None = None) -> DatasetVersion | None:
        """One version of a dataset (the latest without `version`), or None."""
        ...

    async def versions(self, dataset_id: str) -> list[DatasetVersion]:
        """Every version of the dataset, oldest first."""
        ...

    async def datasets(self) -> list[DatasetSummary]:
        """Every dataset with its latest version, by id."""
        ...
