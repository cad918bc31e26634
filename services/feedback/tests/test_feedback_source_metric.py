"""Feedback naming the right source (`source:<uri>`): counted by whether the request retrieved it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from cairn_bus import Dispatcher, InMemoryPublisher, RawRecord
from cairn_bus.objects import InMemoryObjectStore
from cairn_events import Event
from cairn_events.feedback import named_sources
from cairn_feedback.adapters.memory import InMemoryRepository
from cairn_feedback.app import router
from cairn_feedback.bootstrap import Deps, build
from cairn_feedback.settings import Settings
from cairn_testing.suites import load_suite

F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))
CHUNK = {
    "document_id": "d1",
    "chunk_id": "c1",
    "source_uri": "kb://refunds",
    "content_hash": "sha256:" + "0" * 64,
    "score": 0.8,
    "text": "Refunds are paid within five days.",
}


def _count(tenant: str, outcome: str) -> float:
    labels = {"tenant": tenant, "outcome": outcome}
    return REGISTRY.get_sample_value("cairn_retrieval_source_feedback_total", labels) or 0.0


@pytest.fixture
async def dispatcher() -> AsyncIterator[Dispatcher[Deps]]:
    publisher = InMemoryPublisher("/cairn/feedback", allowed_types=router.published_types)
    repo = InMemoryRepository()
    async with build(Settings(), publisher, repository=repo, objects=InMemoryObjectStore()) as deps:
        yield Dispatcher(router, deps, publisher, group_id="cairn-feedback", max_attempts=1)


async def deliver(dispatcher: Dispatcher[Deps], *events: Event) -> None:
    upstream = InMemoryPublisher("/cairn/test")
    for offset, event in enumerate(events):
        message = upstream.build(event)
        record = RawRecord(message.topic, 0, offset, message.value, message.key, list(message.headers), 0)
        await dispatcher.dispatch(record)


def test_source_tags_are_read_in_order_without_repeats() -> None:
    assert named_sources(
        ["hallucination", "source:kb://a", "source: kb://b ", "source:kb://a", "source:"]
    ) == [
        "kb://a",
        "kb://b",
    ]


async def test_a_named_source_is_retrieved_missed_or_unknown(dispatcher: Dispatcher[Deps]) -> None:
    tenant = "src-metric"
    before = {o: _count(tenant, o) for o in ("retrieved", "missed", "unknown")}
    await deliver(
        dispatcher,
        F.response("req-src", tenant=tenant, citations=[CHUNK]),
        F.feedback("fb-1", "req-src", tenant=tenant, tags=["source:kb://refunds", "source:kb://shipping"]),
        F.feedback("fb-1", "req-src", tenant=tenant, tags=["source:kb://refunds"]),  # a duplicate id
        F.feedback("fb-2", "req-not-seen", tenant=tenant, tags=["source:kb://refunds"]),
        F.feedback("fb-3", "req-src", tenant=tenant, tags=["off_topic"]),
    )
    after = {o: _count(tenant, o) - before[o] for o in before}
    assert after == {"retrieved": 1, "missed": 1, "unknown": 1}


async def test_the_screened_chunks_count_when_the_answer_cites_none(dispatcher: Dispatcher[Deps]) -> None:
    tenant = "src-metric-2"
    await deliver(
        dispatcher,
        F.screening("req-b", tenant=tenant, chunks=[CHUNK]),
        F.response("req-b", text=None, tenant=tenant, status="blocked"),
        F.feedback("fb-b", "req-b", tenant=tenant, tags=["source:kb://refunds"]),
    )
    assert _count(tenant, "retrieved") == 1
