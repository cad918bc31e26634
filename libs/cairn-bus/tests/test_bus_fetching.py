"""The consumer's poll: no deaf sleep after an empty poll, and a longer broker wait when idle."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker

from cairn_bus.fetching import FetchPacer, wake_on_records
from cairn_bus.kafka import assign_topic


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    def __init__(self, wait_ms: int) -> None:
        self._fetch_max_wait_ms = wait_ms


class Consumer:
    """What the poll and the pacer touch of an AIOKafkaConsumer: getmany and the fetcher."""

    def __init__(self, polls: list[dict[Any, list[Any]]], wait_ms: int = 25) -> None:
        self.polls = polls
        self.calls: list[tuple[int, int]] = []
        self._fetcher = Fetcher(wait_ms)

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        self.calls.append((timeout_ms, max_records))
        return self.polls.pop(0)


def test_pacer_waits_long_only_after_a_quiet_spell() -> None:
    clock = Clock()
    pacer = FetchPacer(25, 1000, idle_after_s=10, clock=clock)
    assert pacer.wait_ms(got_records=False) == 25
    clock.now += 9.9
    assert pacer.wait_ms(got_records=False) == 25
    clock.now += 0.2
    assert pacer.wait_ms(got_records=False) == 1000
    assert pacer.wait_ms(got_records=True) == 25
    clock.now += 5
    assert pacer.wait_ms(got_records=False) == 25


def test_pacer_sets_the_fetchers_wait_and_back() -> None:
    clock = Clock()
    consumer = Consumer([])
    pacer = FetchPacer(25, 1000, idle_after_s=1, clock=clock)
    clock.now += 2
    pacer.observe(consumer, got_records=False)
    assert consumer._fetcher._fetch_max_wait_ms == 1000
    pacer.observe(consumer, got_records=True)
    assert consumer._fetcher._fetch_max_wait_ms == 25


def test_pacer_without_an_idle_wait_never_touches_the_fetcher() -> None:
    clock = Clock()
    consumer = Consumer([], wait_ms=500)
    pacer = FetchPacer(500, None, idle_after_s=0, clock=clock)
    clock.now += 60
    pacer.observe(consumer, got_records=False)
    assert not pacer.enabled
    assert consumer._fetcher._fetch_max_wait_ms == 500


def test_pacer_turns_itself_off_when_the_fetcher_has_no_wait_field() -> None:
    class Bare:
        _fetcher = object()

    pacer = FetchPacer(25, 1000, idle_after_s=0)
    pacer.observe(Bare(), got_records=False)
    assert not pacer.enabled
    assert pacer.wait_ms(got_records=False) == 25


def batch_subscriber() -> Any:
    broker = KafkaBroker("127.0.0.1:1", apply_types=False)
    return broker.subscriber("t", group_id="g", batch=True, max_records=7, batch_timeout_ms=100)


async def test_an_empty_poll_returns_at_once_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    async def deaf_sleep(*_: Any) -> None:
        raise AssertionError("the poll slept after an empty getmany")

    monkeypatch.setattr("anyio.sleep", deaf_sleep)
    subscriber = batch_subscriber()
    wake_on_records(subscriber)
    consumer = Consumer([{}, {"p0": ["a", "b"], "p1": ["c"]}])
    assert await subscriber.get_msg(consumer) == ()
    assert await subscriber.get_msg(consumer) == ("a", "b", "c")
    assert consumer.calls == [(100, 7), (100, 7)]


async def test_the_poll_tells_the_pacer_whether_records_came() -> None:
    clock = Clock()
    pacer = FetchPacer(25, 1000, idle_after_s=0, clock=clock)
    subscriber = batch_subscriber()
    wake_on_records(subscriber, pacer)
    consumer = Consumer([{}, {"p0": ["a"]}])
    await subscriber.get_msg(consumer)
    assert consumer._fetcher._fetch_max_wait_ms == 1000
    await subscriber.get_msg(consumer)
    assert consumer._fetcher._fetch_max_wait_ms == 25


@pytest.mark.integration
async def test_a_real_consumer_is_paced_and_still_gets_its_records(kafka_bootstrap: str) -> None:
    """aiokafka's fetcher keeps the field the pacer sets (an upgrade that renames it fails here)."""
    topic = f"test-fetching-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, fetch_max_wait_ms=25)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        await assign_topic(consumer, topic)
        subscriber = batch_subscriber()
        pacer = FetchPacer(25, 300, idle_after_s=0)
        wake_on_records(subscriber, pacer)
        assert await subscriber.get_msg(consumer) == ()
        assert consumer._fetcher._fetch_max_wait_ms == 300
        assert pacer.enabled
        await producer.send_and_wait(topic, b"hello")
        got: tuple[Any, ...] = ()
        for _ in range(50):
            got = await subscriber.get_msg(consumer)
            if got:
                break
        assert [record.value for record in got] == [b"hello"]
        assert consumer._fetcher._fetch_max_wait_ms == 25
    finally:
        await producer.stop()
        await consumer.stop()


async def test_a_lingering_poll_waits_after_a_batch_and_not_after_an_empty_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock.now += seconds

    monkeypatch.setattr("cairn_bus.fetching.asyncio.sleep", sleep)
    subscriber = batch_subscriber()
    wake_on_records(subscriber, linger_s=0.2, clock=clock)
    consumer = Consumer([{"p0": ["a"]}, {"p0": ["b"]}, {}, {"p0": ["c"]}])
    assert await subscriber.get_msg(consumer) == ("a",)
    clock.now += 0.05  # handling the batch took 50 ms
    assert await subscriber.get_msg(consumer) == ("b",)
    assert slept == [0.15]
    clock.now += 0.3  # a slow batch: no wait is left
    assert await subscriber.get_msg(consumer) == ()
    assert await subscriber.get_msg(consumer) == ("c",)  # after an empty poll: no linger
    assert slept == [0.15]
