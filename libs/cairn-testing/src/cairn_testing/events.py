"""`expect_events`: assert what reached a topic after an action, read from the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from cairn_bus.envelope import EventMeta
from cairn_bus.kafka import client_options, consumer_at_end, read_event, record_from_kafka, start_client
from cairn_bus.records import RawRecord
from cairn_bus.settings import ServiceSettings
from cairn_events import Event

Match = Callable[[EventMeta, Event], bool]


@dataclass
class Received:
    """Events seen on the topic after the block started, decoded, each event id once (as every Cairn
    consumer sees them: the bus delivers at least once, and a produce retried under load can write a
    record twice with the same id); `duplicates` counts the repeats left out; `raw` keeps what did not
    decode."""

    events: list[tuple[EventMeta, Event]] = field(default_factory=list)
    raw: list[RawRecord] = field(default_factory=list)
    duplicates: int = 0

    def of_type(self, event_type: str) -> list[tuple[EventMeta, Event]]:
        """The events of one type."""
        return [(m, e) for m, e in self.events if m.type == event_type]


@asynccontextmanager
async def expect_events(
    bootstrap: str,
    topic: str,
    *,
    where: Match | None = None,
    count: int = 1,
    timeout: float = 30.0,
    settle: float = 0.0,
    settings: ServiceSettings | None = None,
) -> AsyncIterator[Received]:
    """Capture the topic's end offsets, run the block, then wait for `count` matching events.

    Raises AssertionError listing what was seen when fewer arrive within `timeout`. With
    `settle`, keeps reading that many seconds more after the count is reached (to catch extras).
    Kafka security from `settings` (unset: the `CAIRN_*` environment).
    """
    try:
        consumer = await consumer_at_end(bootstrap, topic, settings=settings)
    except LookupError as exc:
        raise AssertionError(str(exc)) from None
    received = Received()
    ids: set[str] = set()
    try:
        yield received

        def matching() -> int:
            return sum(1 for m, e in received.events if where is None or where(m, e))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        settle_until: float | None = None
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for msg in msgs:
                    found = read_event(msg)
                    if found is None:
                        received.raw.append(record_from_kafka(msg))
                    elif found[0].id in ids:
                        received.duplicates += 1
                    else:
                        ids.add(found[0].id)
                        received.events.append(found)
            if matching() >= count:
                if settle <= 0:
                    break
                settle_until = settle_until or loop.time() + settle
                if loop.time() >= settle_until:
                    break
        if matching() < count:
            seen = [(m.type, m.subject) for m, _ in received.events]
            raise AssertionError(
                f"expected {count} matching event(s) on {topic} within {timeout}s; saw {seen}"
            )
    finally:
        await consumer.stop()


async def start_group_at_end(
    bootstrap: str, group_id: str, topics: list[str], *, settings: ServiceSettings | None = None
) -> None:
    """Commit the current end offsets of `topics` for a new consumer group, so it starts from now.

    Tests give each service its own group; without this a new group would first read everything
    earlier tests left on the broker.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False, **client_options(settings)
    )
    await start_client(consumer.start, bootstrap, settings)
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()
