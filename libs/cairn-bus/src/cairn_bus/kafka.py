"""Kafka adapters: connection security, explicit topic creation, the producer, the Kafka publisher and
record conversion.

Every Kafka client of Cairn (services, tools, tests) takes its security keywords from
`client_options(settings)`, and faststream's `KafkaBroker` its `security=` from `broker_security`, so
one set of `CAIRN_KAFKA_SECURITY_PROTOCOL` / `CAIRN_KAFKA_SASL_*` / `CAIRN_KAFKA_SSL_*` variables
configures them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from cairn_bus.envelope import EnvelopeError, EventMeta, meta_from_headers
from cairn_bus.publisher import BasePublisher, OutgoingMessage
from cairn_bus.records import RawRecord
from cairn_bus.settings import ServiceSettings
from cairn_events import DecodeError, Event, TopicSpec, decode, load_topics

T = TypeVar("T")


class KafkaSecurityError(RuntimeError):
    """The Kafka security settings are incomplete, or the broker refused the connection they describe
    (the message names the `CAIRN_KAFKA_*` setting to look at)."""


def _setting(field: str) -> str:
    return f"CAIRN_{field.upper()}"


def _ssl_context(settings: ServiceSettings) -> ssl.SSLContext:
    for field in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        path = getattr(settings, field)
        if path is not None and not Path(path).is_file():
            raise KafkaSecurityError(f"{_setting(field)} names {path}, which is not a readable file")
    if (settings.kafka_ssl_certfile is None) != (settings.kafka_ssl_keyfile is None):
        raise KafkaSecurityError(
            "mutual TLS needs both CAIRN_KAFKA_SSL_CERTFILE and CAIRN_KAFKA_SSL_KEYFILE (or neither)"
        )
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
    except ssl.SSLError as exc:
        raise KafkaSecurityError(
            f"cannot load the Kafka TLS files (CAIRN_KAFKA_SSL_CAFILE / _CERTFILE / _KEYFILE): {exc}"
        ) from None
    if settings.kafka_ssl_cafile is None:
        context.load_default_certs()
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def sasl_credentials(settings: ServiceSettings) -> tuple[str, str]:
    """The SASL user and password of `settings` (the password is a credential field, read through
    `read_secret`: the variable, its `_FILE` or Vault). Raises KafkaSecurityError naming what is
    missing."""
    if not settings.kafka_sasl_username:
        raise KafkaSecurityError(
            f"CAIRN_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs CAIRN_KAFKA_SASL_USERNAME"
        )
    if settings.kafka_sasl_password is None:
        raise KafkaSecurityError(
            f"CAIRN_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs the SASL password: set "
            "CAIRN_KAFKA_SASL_PASSWORD or CAIRN_KAFKA_SASL_PASSWORD_FILE, or configure Vault"
        )
    return settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value()


def client_options(settings: ServiceSettings | None = None) -> dict[str, Any]:
    """The security keywords of an aiokafka producer, consumer or admin client (`security_protocol`,
    `ssl_context`, `sasl_mechanism`, `sasl_plain_username`, `sasl_plain_password`) that `settings`
    describe; `settings` unset: the `CAIRN_*` environment. Empty for PLAINTEXT. Raises
    KafkaSecurityError naming the setting when they are incomplete or a file is missing."""
    settings = settings if settings is not None else ServiceSettings()
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL_"):
        username, password = sasl_credentials(settings)
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=username,
            sasl_plain_password=password,
        )
    return options


def broker_security(settings: ServiceSettings | None = None) -> BaseSecurity | None:
    """The same security as `client_options`, as the `security=` object of faststream's KafkaBroker."""
    options = client_options(settings)
    if not options:
        return None
    context: ssl.SSLContext | None = options.get("ssl_context")
    if "sasl_mechanism" not in options:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    kind = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    return kind[options["sasl_mechanism"]](
        options["sasl_plain_username"],
        options["sasl_plain_password"],
        ssl_context=context,
        use_ssl=context is not None,
    )


async def _tls_handshake(host: str, port: int, context: ssl.SSLContext, timeout_s: float) -> None:
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout_s
    )
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


async def diagnose_connection(bootstrap: str, settings: ServiceSettings | None = None) -> str | None:
    """Why a Kafka client configured by `settings` could not connect to `bootstrap`, naming the setting
    to change, when TLS is the reason: a broker certificate the CA does not vouch for, one that does
    not name the host, or a TLS port reached in PLAINTEXT. None when TLS is not the reason found."""
    settings = settings if settings is not None else ServiceSettings()
    host, _, port_text = bootstrap.split(",")[0].strip().rpartition(":")
    host, port = host.strip("[]") or "localhost", int(port_text)
    where = f"the Kafka broker at {host}:{port}"
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        try:
            await _tls_handshake(host, port, _ssl_context(settings), 5.0)
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code == 62 or "hostname" in str(exc).lower() or "IP address" in str(exc):
                return (
                    f"{where} presented a certificate that does not name {host!r} ({exc.verify_message}): "
                    "connect through a name in its certificate, or (only if you must) set "
                    "CAIRN_KAFKA_SSL_CHECK_HOSTNAME=false"
                )
            return (
                f"{where} presented a certificate not signed by the CA in CAIRN_KAFKA_SSL_CAFILE="
                f"{settings.kafka_ssl_cafile or '(unset: the system CAs)'} ({exc.verify_message})"
            )
        except ssl.SSLError as exc:
            return (
                f"TLS to {where} failed ({exc.reason or exc}): does it serve TLS on that port? "
                "Check CAIRN_KAFKA_BOOTSTRAP and CAIRN_KAFKA_SECURITY_PROTOCOL"
            )
        except (OSError, TimeoutError):
            return None
        return None
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    try:
        await _tls_handshake(host, port, probe, 2.0)
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    return (
        f"{where} speaks TLS but CAIRN_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}: "
        "set it to SSL or SASL_SSL (with CAIRN_KAFKA_SSL_CAFILE)"
    )


async def start_client(
    start: Callable[[], Awaitable[T]], bootstrap: str, settings: ServiceSettings | None = None
) -> T:
    """`await start()` (an aiokafka client's start), turning a connection failure caused by TLS into
    a KafkaSecurityError that names the setting to change (see `diagnose_connection`)."""
    try:
        return await start()
    except KafkaConnectionError as exc:
        reason = await diagnose_connection(bootstrap, settings)
        if reason is None:
            raise
        raise KafkaSecurityError(reason) from exc


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[TopicSpec] | None = None,
    *,
    replication_factor: int = 1,
    settings: ServiceSettings | None = None,
) -> list[str]:
    """Create the registry's topics (or `topics`) with their partition counts; returns those created.

    Topics that exist are left as they are; any other broker error raises. Brokers that auto-create topics would pick their own
    partition count, so services call this before producing. Connects with the security of
    `settings` (unset: the `CAIRN_*` environment); a TLS refusal raises KafkaSecurityError.
    """
    specs = list(topics) if topics is not None else list(load_topics().values())
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(settings))
    await start_client(admin.start, bootstrap, settings)
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
    """A producer that waits for all in-sync replicas; not idempotent (the local broker lacks it).
    Start it with `start_client(producer.start, settings.kafka_bootstrap, settings)` for a clear
    error when TLS refuses the connection."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"cairn-{settings.service_name}",
        acks="all",
        linger_ms=2,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        max_request_size=4 * 1024 * 1024,
        **client_options(settings),
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


async def consumer_at_end(
    bootstrap: str, topic: str, *, settings: ServiceSettings | None = None, **config: Any
) -> AIOKafkaConsumer:
    """A started consumer (no group) assigned every partition of `topic`, positioned at its end.

    It reads what is produced from now on. (Tansu may report an end offset short of the real end
    after batched writes, so a few earlier records can show up: match on ids, not on position.)
    Raises LookupError when the topic does not exist. The caller stops it. Connects with the
    security of `settings` (unset: the `CAIRN_*` environment).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options(settings), **config
    )
    await start_client(consumer.start, bootstrap, settings)
    try:
        tps = await assign_topic(consumer, topic)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
    except BaseException:
        await consumer.stop()
        raise
    return consumer
