"""The durable broker (Tansu on `s3://`, stored in the local SeaweedFS) survives a restart:
the topic and its partition count, every message with its key and headers, and the consumer
group's committed offsets. Ports +350, in a temporary folder."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from cairn_localstack import LocalStack, StackConfig
from cairn_localstack.process import pid_alive

pytestmark = [pytest.mark.integration, pytest.mark.durable]

OFFSET = 350
MESSAGES = 300
PARTITIONS = 3
# Tansu: a group join waits session_timeout_ms / 2; real Kafka would refuse < 6000
GROUP_SETTINGS = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}

Record = tuple[int, int, bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]


@pytest.fixture(scope="module")
def durable_stack(
    tmp_path_factory: pytest.TempPathFactory,
    make_config: Callable[..., StackConfig],
    stack_runner: Callable[[StackConfig], Iterator[LocalStack]],
) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("durable") / "stack"
    yield from stack_runner(make_config(root, "durable", OFFSET, broker_storage="s3"))


async def _produce(bootstrap: str, topic: str) -> list[Record]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        sent = []
        for i in range(MESSAGES):
            key, value = f"key-{i % 17}".encode(), f"message-{i}".encode()
            headers = (("seq", str(i).encode()), ("origin", b"durability-test"))
            sent.append(
                (key, value, headers, await producer.send(topic, value, key=key, headers=list(headers)))
            )
        return [
            (m.partition, m.offset, k, v, h) for k, v, h, m in [(k, v, h, await f) for k, v, h, f in sent]
        ]
    finally:
        await producer.stop()


def _as_record(msg: object) -> Record:
    return (
        msg.partition,  # type: ignore[attr-defined]
        msg.offset,  # type: ignore[attr-defined]
        msg.key,  # type: ignore[attr-defined]
        msg.value,  # type: ignore[attr-defined]
        tuple(msg.headers),  # type: ignore[attr-defined]
    )


async def _consume_in_group(bootstrap: str, topic: str, group: str, at_least: int) -> list[Record]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **GROUP_SETTINGS,
    )
    await consumer.start()
    try:
        got: list[Record] = []
        deadline = time.monotonic() + 60
        while len(got) < at_least and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=50)
            for records in batches.values():
                got.extend(_as_record(r) for r in records)
        if at_least < MESSAGES:  # commit exactly what was consumed
            last: dict[int, int] = {}
            for partition, offset, *_ in got:
                last[partition] = max(offset, last.get(partition, -1))
            await consumer.commit({TopicPartition(topic, p): o + 1 for p, o in last.items()})
        return got
    finally:
        await consumer.stop()


async def _read_everything(bootstrap: str, topic: str, partitions: list[TopicPartition]) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        got: list[Record] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= end[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
            batches = await consumer.getmany(*partitions, timeout_ms=500)
            for records in batches.values():
                got.extend(_as_record(r) for r in records)
        return got
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, group: str, partitions: list[TopicPartition]) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Tansu drops the connection when the partitions are not given
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return {tp.partition: meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()


async def _partition_count(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
        [description] = await admin.describe_topics([topic])
        return len(description["partitions"])
    finally:
        await admin.close()


async def test_broker_restart_keeps_topic_messages_and_group_offsets(durable_stack: LocalStack) -> None:
    bootstrap = durable_stack.config.kafka_bootstrap
    topic, group = f"durable-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    produced = await _produce(bootstrap, topic)
    assert len(produced) == MESSAGES
    assert {p for p, *_ in produced} == set(range(PARTITIONS))

    first_part = await _consume_in_group(bootstrap, topic, group, at_least=MESSAGES // 2)
    assert MESSAGES // 2 <= len(first_part) < MESSAGES
    committed = await _committed(bootstrap, group, partitions)
    expected = {p: max((o + 1 for q, o, *_ in first_part if q == p), default=-1) for p in range(PARTITIONS)}
    assert committed == expected  # -1: nothing committed on that partition

    old_pid = durable_stack.status()["broker"].pid
    restarted = await asyncio.to_thread(durable_stack.restart_broker)
    assert restarted.healthy
    assert restarted.pid != old_pid
    assert old_pid is not None
    assert not pid_alive(old_pid)

    assert await _partition_count(bootstrap, topic) == PARTITIONS
    assert sorted(await _read_everything(bootstrap, topic, partitions)) == sorted(produced)
    assert await _committed(bootstrap, group, partitions) == committed

    # the group resumes where it committed: the rest, and nothing consumed before
    rest = await _consume_in_group(bootstrap, topic, group, at_least=MESSAGES - len(first_part))
    assert sorted(first_part + rest) == sorted(produced)
