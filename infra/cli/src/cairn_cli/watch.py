"""Watching topics for events as an upstream system or operator would: from now on, decoded, by predicate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

from aiokafka import AIOKafkaConsumer

from cairn_bus.kafka import consumer_at_end, events_in
from cairn_events import Event

E = TypeVar("E", bound=Event)


class EventWatcher:
    """Reads some topics from the moment it enters; keeps every decodable event, in arrival order."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.seen: list[Event] = []
        self._consumers: list[AIOKafkaConsumer] = []
        self._ids: set[str] = set()

    async def __aenter__(self) -> EventWatcher:
        for topic in self.topics:
            self._consumers.append(await consumer_at_end(self.bootstrap, topic))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for consumer in self._consumers:
            await consumer.stop()

    async def _poll(self) -> list[Event]:
        new: list[Event] = []
        for consumer in self._consumers:
            batch = await consumer.getmany(timeout_ms=100)
            for meta, event in events_in(batch):
                if meta.id not in self._ids:
                    self._ids.add(meta.id)
                    new.append(event)
        self.seen.extend(new)
        return new

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool],
        timeout: float,
        on_event: Callable[[Event], None] | None = None,
    ) -> E:
        """The first event of type `kind` matching `predicate`, seen before or within `timeout` seconds.

        `on_event` is called for each new event while waiting (progress display). Raises TimeoutError.
        """
        for event in self.seen:
            if isinstance(event, kind) and predicate(event):
                return event
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for event in await self._poll():
                if on_event is not None:
                    on_event(event)
                if isinstance(event, kind) and predicate(event):
                    return event
        raise TimeoutError(f"no {kind.event_type} within {timeout:.0f} s")
