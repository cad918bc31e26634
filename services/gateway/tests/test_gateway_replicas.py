"""Two gateway replicas on the real test broker: each reads every response and keeps only its own."""

from __future__ import annotations

import asyncio

import pytest

from cairn_bus.kafka import KafkaPublisher, ensure_topics, make_producer
from cairn_bus.settings import ServiceSettings
from cairn_events import RequestSubmittedV1
from cairn_gateway.adapters.kafka_replies import listening
from cairn_gateway.replies import ReplyBook

from .conftest import NOW, answer

pytestmark = pytest.mark.integration


async def test_a_response_reaches_the_replica_that_sent_the_request_and_no_other(
    kafka_bootstrap: str,
) -> None:
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap, service_name="gateway-test")
    await ensure_topics(kafka_bootstrap)
    a, b = ReplyBook(), ReplyBook()

    async def to(book: ReplyBook):  # type: ignore[no-untyped-def]
        async def handle(event, meta):  # type: ignore[no-untyped-def]
            await book.deliver(event)

        return handle

    request = RequestSubmittedV1(
        request_id=f"gw-replica-{id(a)}", tenant="acme", prompt="qa", submitted_at=NOW
    )
    async with listening(settings, await to(a)), listening(settings, await to(b)):
        waiting = a.expect(request.request_id)
        producer = make_producer(settings)
        await producer.start()
        try:
            await KafkaPublisher(producer, "/cairn/test", service="test").publish(
                answer(request, text="for A")
            )
        finally:
            await producer.stop()
        got = await asyncio.wait_for(waiting, 30)
        assert got.text == "for A"
        for _ in range(100):  # B sees the same response and drops it
            if b.dropped:
                break
            await asyncio.sleep(0.1)
        assert b.dropped >= 1
        assert request.request_id not in b
