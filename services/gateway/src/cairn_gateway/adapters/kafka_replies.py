"""The reply listeners: each reads one topic (`cairn.responses`, `cairn.completions.deltas`) from its
end without a consumer group and hands every event to the gateway's handler (`handlers.py`): the
replica keeps its own requests' events and drops the rest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from cairn_bus import EventMeta
from cairn_bus.background import in_background
from cairn_bus.fetching import FetchPacer
from cairn_bus.kafka import consumer_at_end, events_in
from cairn_bus.settings import ServiceSettings
from cairn_events import Event, ResponseCompletedV1
from cairn_observability import get_logger

log = get_logger("cairn.gateway.replies")


@contextlib.asynccontextmanager
async def listening(
    settings: ServiceSettings,
    handle: Callable[[Event, EventMeta], Awaitable[None]],
    topic: str = ResponseCompletedV1.topic,
) -> AsyncIterator[None]:
    """Hand every event on `topic` to `handle` until the block exits. Positioned at the end before
    the block is entered, so every event produced after entering is seen.

    It waits for records as the services' consumers do (`cairn_bus.fetching`): the broker fetch wait
    of `settings` (short on the local broker, which answers a held fetch only when the wait expires),
    lengthened after a quiet spell so an idle gateway does not spin."""
    consumer = await consumer_at_end(
        settings.kafka_bootstrap, topic, settings=settings, fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms
    )
    pacer = FetchPacer(
        settings.kafka_fetch_max_wait_ms,
        settings.kafka_fetch_max_wait_idle_ms,
        settings.kafka_fetch_idle_after_ms / 1000,
    )

    async def run() -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
            except Exception as exc:  # a broker hiccup: keep reading
                log.warning("reading replies failed", topic=topic, error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            pacer.observe(consumer, any(batch.values()))
            for meta, event in events_in(batch):
                await handle(event, meta)

    try:
        async with in_background(run(), f"gateway-replies-{topic}"):
            yield
    finally:
        await consumer.stop()
