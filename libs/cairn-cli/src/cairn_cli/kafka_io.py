"""Reading a time range of a topic straight from the broker, partition by partition."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cairn_bus.kafka import record_from_kafka
from cairn_bus.records import RawRecord


@asynccontextmanager
async def producer(bootstrap: str, client_id: str = "cairn-cli") -> AsyncIterator[AIOKafkaProducer]:
    """A started producer, stopped (and flushed) on exit."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=client_id, acks="all", linger_ms=5)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def read_range(
    bootstrap: str, topic: str, start_ms: int | None = None, end_ms: int | None = None
) -> list[RawRecord]:
    """Every record of `topic` with broker timestamp in [start_ms, end_ms), read without a group.

    Reads up to the end offsets seen when it starts, so it terminates on a live topic.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="cairn-cli-reader"
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise LookupError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        if start_ms is not None:
            found = await consumer.offsets_for_times({tp: start_ms for tp in tps})
            starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
        out: list[RawRecord] = []
        for tp in tps:
            if starts[tp] >= ends[tp]:
                continue
            consumer.seek(tp, starts[tp])
            done = False
            while not done:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
                msgs = batch.get(tp, [])
                if not msgs:
                    break
                for msg in msgs:
                    if msg.offset >= ends[tp]:
                        done = True
                        break
                    if end_ms is not None and msg.timestamp >= end_ms:
                        continue
                    out.append(record_from_kafka(msg))
                    if msg.offset + 1 >= ends[tp]:
                        done = True
        out.sort(key=lambda r: (r.timestamp_ms or 0, r.partition, r.offset))
        return out
    finally:
        await consumer.stop()
