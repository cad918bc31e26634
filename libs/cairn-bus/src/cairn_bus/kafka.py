"""Kafka adapters: explicit topic creation, the producer, the Kafka publisher and record conversion."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from cairn_bus.envelope import EnvelopeError, EventMeta, meta_from_headers
from cairn_bus.publisher import BasePublisher, OutgoingMessage
from cairn_bus.records import RawRecord
from cairn_bus.settings import ServiceSettings
from cairn_events import DecodeError, Event, TopicSpec, decode, load_topics


async def ensure_topics(
    bootstrap: str, topics: Iterable[TopicSpec] | None = None, *, replication_factor: int = 1
) -> list[str]:
    """Create the registry's topics (or `topics`) with their partition counts; returns those created.

    Topics that exist are left as they are; any other broker error raises. Brokers that auto-create topics would pick their own
    partition count, so services call this before producing.
    """
    specs = list(topics) if topics is not None else list(load_topics().values())
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(s.name, num_partitions=s.partitions, replication_factor=replication_factor)
                    for s in missing
                ]
            )
            # aiokafka returns broker errors inside the response instead of raising them
            for name, code, *rest in response.topic_errors:
                if code == 0:
                    created.append(name)
                elif code != TopicAlreadyExistsError.errno:
                    message = rest[0] if rest and rest[0] else f"error code {code}"
                    raise RuntimeError(f"could not create topic {name}: {message}")
        return created
    finally:
        await admin.close()


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas; not idempotent (the local broker lacks it)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"cairn-{settings.service_name}",
        acks="all",
        linger_ms=2,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        max_request_size=4 * 1024 * 1024,
    )


class KafkaPublisher(BasePublisher):
    """Publishes through an aiokafka producer; `send` returns once the broker acknowledged."""

    def __init__(self, producer: AIOKafkaProducer, source: str, **kwargs: Any) -> None:
        super().__init__(source, **kwargs)
        self.producer = producer

    async def send(self, message: OutgoingMessage) -> None:
        await self.producer.send_and_wait(
            message.topic, value=message.value, key=message.key, headers=message.headers
        )

    async def send_raw(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send bytes as they are (replays and tools)."""
        await self.producer.send_and_wait(topic, value=value, key=key, headers=headers)


def record_from_kafka(msg: Any) -> RawRecord:
    """A RawRecord from an aiokafka ConsumerRecord."""
    return RawRecord(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        value=msg.value,
        key=msg.key,
        headers=[(k, v) for k, v in (msg.headers or ())],
        timestamp_ms=msg.timestamp,
    )


async def assign_topic(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Assign every partition of `topic` to a started consumer (no group), refreshing the metadata once
    when the topic is not known yet; the partitions, in order. Raises LookupError when it does not exist."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise LookupError(f"topic {topic!r} does not exist")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    return tps


def read_event(msg: Any) -> tuple[EventMeta, Event] | None:
    """The envelope and event of a consumed aiokafka record, or None when either cannot be read (not a
    Cairn event, a missing header, an unknown type, an invalid payload)."""
    try:
        meta = meta_from_headers(list(msg.headers or ()))
        return meta, decode(meta.type, msg.value or b"", meta.content_type)
    except (EnvelopeError, DecodeError):
        return None


def events_in(batch: Mapping[Any, Iterable[Any]]) -> Iterator[tuple[EventMeta, Event]]:
    """The readable events of a consumer's `getmany` result, partition by partition, in order;
    records that are not readable Cairn events are skipped (see `read_event`)."""
    for msgs in batch.values():
        for msg in msgs:
            if (found := read_event(msg)) is not None:
                yield found


async def consumer_at_end(bootstrap: str, topic: str, **config: Any) -> AIOKafkaConsumer:
    """A started consumer (no group) assigned every partition of `topic`, positioned at its end.

    It reads what is produced from now on. (Tansu may report an end offset short of the real end
    after batched writes, so a few earlier records can show up: match on ids, not on position.)
    Raises LookupError when the topic does not exist. The caller stops it.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **config)
    await consumer.start()
    try:
        tps = await assign_topic(consumer, topic)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
    except BaseException:
        await consumer.stop()
        raise
    return consumer
