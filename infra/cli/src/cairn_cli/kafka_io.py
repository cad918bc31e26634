"""Reading a time range of a topic straight from the broker, partition by partition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cairn_bus.kafka import assign_topic, client_options, record_from_kafka, start_client
from cairn_bus.records import RawRecord


@asynccontextmanager
async def producer(bootstrap: str, client_id: str = "cairn-cli") -> AsyncIterator[AIOKafkaProducer]:
    """A started producer, stopped (and flushed) on exit; Kafka security from the `CAIRN_*` environment."""
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id=client_id, acks="all", linger_ms=5, **client_options()
    )
    await start_client(p.start, bootstrap)
    try:
        yield p
    finally:
        await p.stop()


async def read_range(
    bootstrap: str,
    topic: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    timeout_s: float = 30.0,
) -> list[RawRecord]:
    """Every record of `topic` with broker timestamp in [start_ms, end_ms), read without a group.

    Reads past the end offsets seen when it starts until a poll comes back empty. (Tansu reports
    the end offset of a partition as the base offset of its last batch + 1, which can be short of
    the real end, so the end offsets are a lower bound here, not the stop.)
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        client_id="cairn-cli-reader",
        **client_options(),
    )
    await start_client(consumer.start, bootstrap)
    try:
        tps = await assign_topic(consumer, topic)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        if start_ms is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(tps, start_ms))
            starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
        out: list[RawRecord] = []
        loop_time = asyncio.get_running_loop().time
        for tp in tps:
            if starts[tp] >= ends[tp]:
                continue
            consumer.seek(tp, starts[tp])
            deadline = loop_time() + timeout_s
            next_offset = starts[tp]
            while True:
                if loop_time() > deadline:
                    raise TimeoutError(
                        f"{topic}[{tp.partition}]: still reading at offset {next_offset} after {timeout_s:.0f} s"
                    )
                batch = await consumer.getmany(tp, timeout_ms=300, max_records=500)
                msgs = batch.get(tp, [])
                if not msgs and next_offset >= ends[tp]:
                    break
                for msg in msgs:
                    next_offset = msg.offset + 1
                    # the time index only narrows where to start (Tansu may answer an earlier offset)
                    if start_ms is not None and msg.timestamp < start_ms:
                        continue
                    if end_ms is not None and msg.timestamp >= end_ms:
                        continue
                    out.append(record_from_kafka(msg))
        out.sort(key=lambda r: (r.timestamp_ms or 0, r.partition, r.offset))
        return out
    finally:
        await consumer.stop()
