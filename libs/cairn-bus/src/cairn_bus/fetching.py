"""How a service's consumer waits for records: no blind sleep, and a longer broker wait when idle.

Two costs measured on the request path (issue 11, `benchmarks/pipeline_bench.py`):

* faststream's batch loop sleeps `batch_timeout_ms` after every empty `getmany`, deaf to records that
  arrive meanwhile: at low load a record waited up to 100 ms at each of the six hops. `getmany`
  already waits up to its timeout and returns as soon as records arrive, so the sleep adds nothing
  but latency; `wake_on_records` removes it.
* The local broker (Tansu) holds a fetch until `fetch_max_wait_ms` is nearly over even when records
  arrive, so the local runner keeps the wait short (25 ms) — and with no traffic every consumer then
  fetches 40 times a second, most of an idle stack's CPU. `FetchPacer` lengthens the wait after a
  quiet spell and shortens it again with the first records. Apache Kafka answers a held fetch when
  records arrive, so production leaves both waits at the default and pacing changes nothing there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from cairn_observability import get_logger

log = get_logger("cairn.fetching")

Clock = Callable[[], float]


class FetchPacer:
    """Chooses the broker fetch wait of one consumer from how recently it received records.

    After `idle_after_s` with no records the wait becomes `idle_ms`; the first batch with records sets
    it back to `busy_ms`. The first records after a quiet spell therefore wait up to about half of
    `idle_ms` at each hop on Tansu (it re-checks a held fetch at halving intervals); that is the price
    of an idle stack that does not spin.
    """

    def __init__(self, busy_ms: int, idle_ms: int | None, idle_after_s: float, clock: Clock = time.monotonic):
        self.busy_ms = busy_ms
        self.idle_ms = busy_ms if idle_ms is None else idle_ms
        self.idle_after_s = idle_after_s
        self._clock = clock
        self._last_records = clock()
        self.current_ms = busy_ms

    @property
    def enabled(self) -> bool:
        return self.idle_ms != self.busy_ms

    def wait_ms(self, got_records: bool) -> int:
        """The fetch wait to use after a poll that returned records (or not)."""
        now = self._clock()
        if got_records:
            self._last_records = now
            return self.busy_ms
        return self.idle_ms if now - self._last_records >= self.idle_after_s else self.busy_ms

    def observe(self, consumer: Any, got_records: bool) -> None:
        """Apply the wait chosen for this poll to the consumer's fetcher (when it changes)."""
        wanted = self.wait_ms(got_records)
        if wanted == self.current_ms or not self.enabled:
            return
        fetcher = getattr(consumer, "_fetcher", None)
        if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
            # aiokafka has no public setter; a release that renames the field turns pacing off
            log.warning("fetch pacing unavailable: aiokafka's fetcher has no _fetch_max_wait_ms")
            self.idle_ms = self.busy_ms
            return
        fetcher._fetch_max_wait_ms = wanted
        self.current_ms = wanted
        log.debug("fetch wait changed", fetch_max_wait_ms=wanted)


def wake_on_records(
    subscriber: Any, pacer: FetchPacer | None = None, linger_s: float = 0.0, clock: Clock = time.monotonic
) -> None:
    """Replace a faststream batch subscriber's poll with one that never sleeps deaf to records.

    The poll is the same `getmany(timeout_ms=batch_timeout_ms, max_records=max_records)`; an empty
    result returns at once (the loop polls again, and `getmany` itself waits), and each poll tells
    `pacer` whether records came. With `linger_s`, a poll that follows a batch waits until `linger_s`
    after that batch's poll, so a consumer off the request path (the audit) takes what arrived
    meanwhile as one batch: one transaction and one commit for many records instead of one each.
    """
    last_batch_at: float | None = None

    async def get_msg(consumer: Any) -> tuple[Any, ...]:
        nonlocal last_batch_at
        if linger_s > 0 and last_batch_at is not None:
            wait = last_batch_at + linger_s - clock()
            if wait > 0:
                await asyncio.sleep(wait)
        polled_at = clock()
        batches = await consumer.getmany(
            timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
        )
        records = tuple(record for batch in batches.values() for record in batch)
        last_batch_at = polled_at if records else None
        if pacer is not None:
            pacer.observe(consumer, bool(records))
        return records

    subscriber.get_msg = get_msg
