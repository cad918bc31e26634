"""Waiting for `response.completed` events as an upstream system would (a `held` answer is followed by
the final one), and summarising trails."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer

from cairn_audit.domain.records import AuditRecord
from cairn_audit.domain.trail import causal_order
from cairn_bus.kafka import consumer_at_end, events_in
from cairn_events import ResponseCompletedV1, ResponseStatus

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

    async def wait_for(
        self, request_ids: Iterable[str], timeout: float, *, until_final: bool = False
    ) -> dict[str, ResponseCompletedV1]:
        """The latest response of each given request that arrived within `timeout` seconds.

        A `held` response (waiting for a human reviewer) is not final: the request is answered again
        once the review is decided, and that answer replaces it. Waiting ends when every request has
        its final response or, unless `until_final`, is held (a review may take up to its deadline).
        """
        assert self._consumer is not None
        wanted = set(request_ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def settled(rid: str) -> bool:
            got = self.responses.get(rid)
            return got is not None and (not until_final or is_final(got))

        while not all(settled(rid) for rid in wanted) and loop.time() < deadline:
            batch = await self._consumer.getmany(timeout_ms=200)
            for _, event in events_in(batch):
                if isinstance(event, ResponseCompletedV1) and event.request_id in wanted:
                    seen = self.responses.get(event.request_id)
                    if seen is None or not is_final(seen):  # a final answer is never replaced
                        self.responses[event.request_id] = event
        return {rid: self.responses[rid] for rid in wanted if rid in self.responses}


def is_final(response: ResponseCompletedV1) -> bool:
    """Whether the response ends the request (every status but `held`)."""
    return response.status is not ResponseStatus.HELD


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
