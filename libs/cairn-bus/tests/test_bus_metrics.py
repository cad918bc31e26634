"""Bus-level metrics every service gets: consumer lag, handler errors, hop latency, failed batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from cairn_bus import (
    Dispatcher,
    EventMeta,
    EventRouter,
    InMemoryPublisher,
    Outcome,
    RawRecord,
    TransientError,
)
from cairn_bus.dispatcher import hop_latency_s
from cairn_bus.service import (
    ConsumerLagRecorder,
    ThrottledLag,
    consumer_lag,
    dispatch_batch,
    partition_lags,
)
from cairn_events import DeadLetterKind, Event, RequestSubmittedV1

SERVICE = "metrics-test"
GROUP = "cairn-metrics-test"


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    """The offsets an AIOKafkaConsumer would report: highwater (None before a fetch) and position."""

    highwaters: dict[TP, int | None]
    positions: dict[TP, int]
    stuck: set[TP] = field(default_factory=set)

    def assignment(self) -> Iterable[TP]:
        return set(self.highwaters)

    def highwater(self, partition: TP) -> int | None:
        return self.highwaters[partition]

    async def position(self, partition: TP) -> int:
        if partition in self.stuck:
            await asyncio.sleep(10)
        return self.positions[partition]


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_lag_is_highwater_minus_position_never_negative() -> None:
    assert consumer_lag(highwater=120, position=100) == 20
    assert consumer_lag(highwater=100, position=100) == 0
    assert consumer_lag(highwater=0, position=0) == 0
    assert consumer_lag(highwater=5, position=9) == 0  # a stale highwater after a newer fetch


async def test_partition_lags_skip_partitions_without_a_highwater_or_position() -> None:
    a0, a1, b0, b1 = TP("a", 0), TP("a", 1), TP("b", 0), TP("b", 1)
    consumer = FakeConsumer(
        highwaters={a0: 50, a1: None, b0: 7, b1: 9},
        positions={a0: 40, a1: 0, b0: 7, b1: 0},
        stuck={b1},
    )
    lags = await partition_lags(consumer, timeout_s=0.05)
    assert lags == {("a", 0): 10, ("b", 0): 0}


async def test_the_recorder_sets_the_gauge_per_partition_and_drops_revoked_ones() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("lag", "lag", ["service", "group", "topic", "partition"], registry=registry)
    recorder = ConsumerLagRecorder(SERVICE, GROUP, gauge)
    p0, p1 = TP("cairn.requests", 0), TP("cairn.requests", 1)

    def lag(partition: str) -> float | None:
        labels = {"service": SERVICE, "group": GROUP, "topic": "cairn.requests", "partition": partition}
        return registry.get_sample_value("lag", labels)

    await recorder.record(FakeConsumer({p0: 10, p1: 30}, {p0: 4, p1: 30}))
    assert (lag("0"), lag("1")) == (6, 0)
    # partition 1 moved to another member of the group; partition 0 caught up
    assert await recorder.record(FakeConsumer({p0: 12}, {p0: 12})) == {("cairn.requests", 0): 0}
    assert (lag("0"), lag("1")) == (0, None)
    # still assigned but no highwater yet (just rebalanced back): the last value stays
    await recorder.record(FakeConsumer({p0: None}, {p0: 12}))
    assert lag("0") == 0


async def test_the_default_recorder_writes_cairn_consumer_lag() -> None:
    tp = TP("cairn.prompts", 2)
    await ConsumerLagRecorder(SERVICE, GROUP).record(FakeConsumer({tp: 9}, {tp: 2}))
    labels = {"service": SERVICE, "group": GROUP, "topic": "cairn.prompts", "partition": "2"}
    assert sample("cairn_consumer_lag", **labels) == 7


class CountingRecorder(ConsumerLagRecorder):
    def __init__(self) -> None:
        super().__init__(SERVICE, GROUP)
        self.lags: list[int] = []

    async def record(self, consumer: Any) -> dict[tuple[str, int], int]:
        lags = await super().record(consumer)
        self.lags.extend(lags.values())
        return lags


async def test_lag_is_recorded_at_most_once_per_interval_and_settles_after_a_burst() -> None:
    tp = TP("cairn.prompts", 5)
    recorder = CountingRecorder()
    throttled = ThrottledLag(recorder, interval_s=0.2)
    for behind in (9, 8, 7, 6, 5):  # a burst of batches well inside one interval
        await throttled.after_batch(FakeConsumer({tp: 10}, {tp: 10 - behind}))
    assert recorder.lags == [9]  # the first batch records at once, the others wait
    await asyncio.sleep(0.35)
    assert recorder.lags == [9, 5]  # one trailing update, with the state after the last batch
    await throttled.after_batch(FakeConsumer({tp: 10}, {tp: 10}))
    await throttled.close()
    assert len(recorder.lags) <= 3


def test_hop_latency_is_seconds_since_the_record_timestamp() -> None:
    assert hop_latency_s(1_000_000, 1_002.5) == pytest.approx(2.5)
    assert hop_latency_s(2_000_000, 1_999.0) == 0.0  # producer clock ahead


# --- the dispatcher's own metrics ------------------------------------------------------------


@dataclass
class Script:
    errors: list[BaseException] = field(default_factory=list)


async def on_request(event: Event, meta: EventMeta, deps: Script) -> None:
    if deps.errors:
        raise deps.errors.pop(0)


def dispatcher(deps: Script) -> Dispatcher[Script]:
    router: EventRouter[Script] = EventRouter(SERVICE)
    router.handler(RequestSubmittedV1)(on_request)
    return Dispatcher(router, deps, InMemoryPublisher(), group_id=GROUP, max_attempts=3, retry_backoff_s=0)


def record(request_submitted: RequestSubmittedV1, timestamp_ms: int | None) -> RawRecord:
    message = InMemoryPublisher("/cairn/gateway").build(request_submitted)
    return RawRecord(
        message.topic, 0, 0, message.value, message.key, list(message.headers), timestamp_ms=timestamp_ms
    )


def test_dead_letter_series_exist_at_zero_before_the_first_dead_letter() -> None:
    router: EventRouter[Any] = EventRouter("metrics-fresh")
    Dispatcher(router, None, InMemoryPublisher(), group_id="cairn-metrics-fresh")
    for kind in DeadLetterKind:
        assert sample("cairn_deadletters_total", service="metrics-fresh", kind=kind.value) == 0
    assert sample("cairn_batch_failures_total", service="metrics-fresh") == 0


async def test_failed_attempts_are_counted_as_retryable_or_not(request_submitted: RequestSubmittedV1) -> None:
    event_type = RequestSubmittedV1.event_type

    def errors(retryable: str) -> float:
        labels = {"service": SERVICE, "event_type": event_type, "retryable": retryable}
        return sample("cairn_handler_errors_total", **labels) or 0.0

    before = errors("true"), errors("false")
    deps = Script([TransientError("db"), ValueError("bad")])
    assert await dispatcher(deps).dispatch(record(request_submitted, None)) is Outcome.HANDLED
    assert (errors("true"), errors("false")) == (before[0] + 1, before[1] + 1)


async def test_a_handled_record_observes_its_hop_latency(request_submitted: RequestSubmittedV1) -> None:
    labels = {"service": SERVICE, "hop": "cairn.requests"}
    count = sample("cairn_hop_latency_seconds_count", **labels) or 0.0
    slow = sample("cairn_hop_latency_seconds_bucket", **labels, le="60.0") or 0.0
    ninety_s_ago = int((time.time() - 90) * 1000)
    await dispatcher(Script()).dispatch(record(request_submitted, ninety_s_ago))
    assert sample("cairn_hop_latency_seconds_count", **labels) == count + 1
    assert sample("cairn_hop_latency_seconds_bucket", **labels, le="60.0") == slow  # 90 s > 60 s
    await dispatcher(Script()).dispatch(record(request_submitted, None))  # no timestamp: not observed
    assert sample("cairn_hop_latency_seconds_count", **labels) == count + 1


async def test_a_batch_that_fails_transiently_is_counted(request_submitted: RequestSubmittedV1) -> None:
    before = sample("cairn_batch_failures_total", service=SERVICE) or 0.0
    deps = Script([ConnectionError("down")] * 3)
    raw = InMemoryPublisher("/cairn/gateway").build(request_submitted)

    class KafkaRecord(NamedTuple):
        topic: str
        partition: int
        offset: int
        key: bytes | None
        value: bytes | None
        headers: list[tuple[str, bytes | None]]
        timestamp: int

    batch = [KafkaRecord(raw.topic, 0, 0, raw.key, raw.value, list(raw.headers), 0)]
    with pytest.raises(ConnectionError):
        await dispatch_batch(dispatcher(deps), batch, concurrency=1)
    assert sample("cairn_batch_failures_total", service=SERVICE) == before + 1
    await dispatch_batch(dispatcher(Script()), batch, concurrency=1)
    assert sample("cairn_batch_failures_total", service=SERVICE) == before + 1
