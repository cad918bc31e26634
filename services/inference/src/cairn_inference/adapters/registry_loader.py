"""Rebuilds the registry view at start: `cairn.models` read from the beginning to its current end.

A plain consumer (no group, nothing committed) is assigned every partition, notes the end offsets,
seeks to the beginning and applies every registration and promotion until each partition reaches
the end it noted. Records that are not model events, or do not decode, are skipped with a warning:
the group subscription's dispatcher dead-letters them anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from cairn_bus.envelope import EnvelopeError, meta_from_headers
from cairn_bus.kafka import client_options, start_client
from cairn_bus.settings import ServiceSettings
from cairn_events import DecodeError, ModelPromotedV1, ModelRegisteredV1, decode
from cairn_inference.domain.registry import RegistryView
from cairn_observability import get_logger

__all__ = ["read_registry"]

log = get_logger("cairn.inference")
MODEL_EVENTS = frozenset({ModelRegisteredV1.event_type, ModelPromotedV1.event_type})


async def read_registry(
    bootstrap: str,
    view: RegistryView,
    *,
    topic: str = ModelRegisteredV1.topic,
    timeout_s: float = 60.0,
    settings: ServiceSettings | None = None,
) -> int:
    """Apply every model event on `topic` up to its current end to `view`; returns how many applied.

    A topic that does not exist yet holds no events (0). Raises TimeoutError when the end is not
    reached within `timeout_s`, OSError/KafkaError when the broker is unreachable. Connects with the
    Kafka security of `settings` (unset: the `CAIRN_*` environment).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options(settings)
    )
    await start_client(consumer.start, bootstrap, settings)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            log.info("registry topic absent; empty view", topic=topic)
            return 0
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        applied = await _read_to(consumer, view, ends, timeout_s)
    finally:
        await consumer.stop()
    log.info("registry view rebuilt", topic=topic, events=applied, models=view.models())
    return applied


async def _read_to(
    consumer: AIOKafkaConsumer, view: RegistryView, ends: dict[TopicPartition, int], timeout_s: float
) -> int:
    deadline = time.monotonic() + timeout_s
    applied = 0
    while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"registry not read to its end within {timeout_s:g} s")
        batches = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
        for tp, records in batches.items():
            for record in records:
                if record.offset < ends[tp]:
                    applied += apply_record(view, record.headers or (), record.value)
        await asyncio.sleep(0)
    return applied


def apply_record(view: RegistryView, headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> int:
    """Apply one consumed record to `view`: 1 when it was a model event applied, 0 otherwise."""
    try:
        meta = meta_from_headers(headers)
        if meta.type not in MODEL_EVENTS:
            return 0
        event = decode(meta.type, value or b"", meta.content_type)
    except (EnvelopeError, DecodeError) as exc:
        log.warning("registry record skipped", error=str(exc))
        return 0
    if isinstance(event, ModelRegisteredV1):
        return int(view.apply_registered(event, meta.id) is not None)
    if isinstance(event, ModelPromotedV1):
        return int(view.apply_promoted(event, meta.id) is not None)
    return 0
