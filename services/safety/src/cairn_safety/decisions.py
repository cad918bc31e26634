"""Review decisions as events: whoever decides (the API, the CLI, the deadline sweeper) changes the
item and publishes `cairn.review.resolved.v1` in one transaction, so a decision is never kept without
its event (a publish that fails leaves the item pending).

The decision's event id is derived from the review id, and its cause is the item's
`cairn.review.requested.v1`: the trail of the request shows the hold, then the decision under it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from cairn_bus import EventMeta, Publisher, derive_event_id
from cairn_bus.background import in_background
from cairn_events import ReviewRequestedV1, ReviewResolvedV1
from cairn_observability import get_logger
from cairn_safety.domain.reviews import ReviewItem, resolution_event
from cairn_safety.ports import Announce, ReviewQueue

__all__ = [
    "announcer",
    "deadline_sweeper",
    "decision_cause",
    "decision_event_id",
    "envelope_of",
    "sweep_deadlines",
]

log = get_logger("cairn.safety.reviews")


def decision_event_id(review_id: str) -> str:
    """The id of the `cairn.review.resolved.v1` of a review: one per review, whoever decides."""
    return derive_event_id(review_id, ReviewResolvedV1.event_type)


def envelope_of(meta: EventMeta) -> dict[str, Any]:
    """What an item keeps of the screened event's envelope, so its decision joins the same trail."""
    return {
        "correlation_id": meta.correlation_id or meta.id,
        "replay_id": meta.replay_id,
        "replay_of": meta.replay_of,
        "traceparent": meta.traceparent,
        "tracestate": meta.tracestate,
    }


def decision_cause(item: ReviewItem) -> EventMeta:
    """The envelope of the item's `cairn.review.requested.v1` (as the screening handler published it)."""
    kept: dict[str, Any] = item.release.get("envelope", {})
    return EventMeta(
        id=derive_event_id(item.event_id, ReviewRequestedV1.event_type),
        type=ReviewRequestedV1.event_type,
        source="/cairn/safety",
        time=item.created_at,
        subject=item.request_id,
        correlation_id=kept.get("correlation_id") or item.request_id,
        causation_id=item.event_id,
        tenant=item.tenant,
        replay_id=kept.get("replay_id"),
        replay_of=kept.get("replay_of"),
        traceparent=kept.get("traceparent"),
        tracestate=kept.get("tracestate"),
    )


def announcer(publisher: Publisher) -> Announce:
    """Publishes a decided item's `cairn.review.resolved.v1` (pass it as a queue's `then`)."""

    async def announce(item: ReviewItem) -> None:
        await publisher.publish(
            resolution_event(item), cause=decision_cause(item), event_id=decision_event_id(item.review_id)
        )

    return announce


async def sweep_deadlines(
    queue: ReviewQueue, publisher: Publisher, now: datetime | None = None, limit: int = 100
) -> list[ReviewItem]:
    """Decide every overdue pending item with its policy's default (`decided_by="deadline"`) and
    publish each decision; returns the items decided."""
    done = await queue.resolve_overdue(now or datetime.now(UTC), announcer(publisher), limit)
    for item in done:
        log.info(
            "review decided by its deadline",
            review_id=item.review_id,
            request_id=item.request_id,
            decision=item.status.value,
        )
    return done


@asynccontextmanager
async def deadline_sweeper(
    queue: ReviewQueue, publisher: Publisher, interval_s: float
) -> AsyncIterator[None]:
    """Sweep overdue reviews every `interval_s` seconds until the block exits. Replicas may all run
    one: an item being decided by one is skipped by the others. A failed sweep is logged; the next
    one tries again."""

    async def repeat() -> None:
        while True:
            try:
                while len(await sweep_deadlines(queue, publisher)) >= 100:
                    pass  # a backlog: the next batch at once
            except Exception as exc:
                log.warning("review deadline sweep failed", error=repr(exc))
            await asyncio.sleep(interval_s)

    async with in_background(repeat(), "cairn-safety-review-deadlines"):
        yield
