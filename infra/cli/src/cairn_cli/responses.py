"""Waiting for `response.completed` events as an upstream system would, and summarising trails."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer

from cairn_audit.domain.records import AuditRecord
from cairn_audit.domain.trail import causal_order
from cairn_bus.kafka import consumer_at_end, events_in
from cairn_events import ResponseCompletedV1

RESPONSES_TOPIC = "cairn.responses"


class ResponseWatcher:
    """Reads cairn.responses from the moment it starts; collects responses by request id."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.responses: dict[str, ResponseCompletedV1] = {}
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> ResponseWatcher:
        consumer = await consumer_at_end(self.bootstrap, RESPONSES_TOPIC)
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_for(self, request_ids: Iterable[str], timeout: float) -> dict[str, ResponseCompletedV1]:
        """Responses for the given requests (those that arrived within `timeout` seconds)."""
        assert self._consumer is not None
        wanted = set(request_ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not wanted <= set(self.responses) and loop.time() < deadline:
            batch = await self._consumer.getmany(timeout_ms=200)
            for _, event in events_in(batch):
                if isinstance(event, ResponseCompletedV1) and event.request_id in wanted:
                    self.responses.setdefault(event.request_id, event)
        return {rid: self.responses[rid] for rid in wanted if rid in self.responses}


def _short(event_type: str) -> str:
    parts = event_type.split(".")
    return ".".join(parts[1:-1]) if len(parts) > 2 else event_type


def trail_summary(records: Sequence[AuditRecord]) -> str:
    """One line: each hop of the request with the milliseconds it took, and the total.

    Follows the causal chain (dead letters and replays included when they belong to the request).
    """
    if not records:
        return "no trail stored"
    ordered = [n.record for n in causal_order(records)]
    parts = [_short(ordered[0].event_type)]
    for prev, cur in itertools.pairwise(ordered):
        ms = (cur.event_time - prev.event_time).total_seconds() * 1000
        parts.append(f"-{ms:.0f}ms-> {_short(cur.event_type)}")
    total = (ordered[-1].event_time - ordered[0].event_time).total_seconds() * 1000
    return f"{len(ordered) - 1} hops, {total:.0f} ms: " + " ".join(parts)
