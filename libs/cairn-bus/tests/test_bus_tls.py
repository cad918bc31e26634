"""Kafka TLS against a real TLS endpoint (a private Tansu behind an OpenSSL proxy), and the mapping of
the security settings to aiokafka and faststream options."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram512

from cairn_bus import EventMeta, EventRouter, Publisher
from cairn_bus.kafka import (
    KafkaPublisher,
    KafkaSecurityError,
    assign_topic,
    broker_security,
    client_options,
    ensure_topics,
    make_producer,
    read_event,
    start_client,
)
from cairn_bus.settings import ServiceSettings
from cairn_events import Event, RequestSubmittedV1, load_topics
from cairn_testing import expect_events, running_service, schema_examples
from cairn_testing.kafka_tls import CertificateAuthority, TlsBroker, tls_broker

TOPIC = "cairn.requests"


@pytest.fixture(scope="module")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TlsBroker]:
    async with tls_broker(tmp_path_factory.mktemp("kafka-tls")) as started:
        yield started


def tls_settings(broker: TlsBroker, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "service_name": "tls-test",
        "kafka_bootstrap": broker.bootstrap,
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": str(broker.ca_file),
        "kafka_session_timeout_ms": 2000,
        "kafka_heartbeat_interval_ms": 500,
        "kafka_request_timeout_ms": 10_000,
        **overrides,
    }
    return ServiceSettings(**values)


def a_request(rid: str) -> RequestSubmittedV1:
    event = schema_examples(RequestSubmittedV1.event_type)[0].event()
    assert isinstance(event, RequestSubmittedV1)
    return event.model_copy(update={"request_id": rid})


async def read_all(settings: ServiceSettings, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, **client_options(settings)
    )
    await start_client(consumer.start, settings.kafka_bootstrap, settings)
    try:
        tps = await assign_topic(consumer, topic)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        for _ in range(50):
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records += batch
            if all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                break
        return records
    finally:
        await consumer.stop()


@asynccontextmanager
async def tls_publisher(settings: ServiceSettings) -> AsyncIterator[KafkaPublisher]:
    producer = make_producer(settings)
    await start_client(producer.start, settings.kafka_bootstrap, settings)
    try:
        yield KafkaPublisher(producer, "/cairn/tls-test", service="tls-test")
    finally:
        await producer.stop()


# --- against the TLS endpoint ------------------------------------------------------------------------


async def test_admin_producer_and_consumer_work_through_tls(broker: TlsBroker) -> None:
    settings = tls_settings(broker)
    topic = f"cairn.tls-{uuid.uuid4().hex[:8]}"
    spec = dataclasses.replace(load_topics()[TOPIC], name=topic, partitions=2)
    created = await ensure_topics(settings.kafka_bootstrap, [spec], settings=settings)
    assert created == [topic]
    async with tls_publisher(settings) as publisher:
        sent = [await publisher.publish(a_request(f"tls-{i}")) for i in range(3)]
    # the publisher writes to the event's topic; copy them to the test topic raw as well
    async with tls_publisher(settings) as publisher:
        for i in range(3):
            await publisher.send_raw(topic, f"v{i}".encode(), f"k{i}".encode(), [("h", b"1")])
    values = sorted(r.value for r in await read_all(settings, topic))
    assert values == [b"v0", b"v1", b"v2"]
    ids = {m.id for m in sent}
    seen = {found[0].id for r in await read_all(settings, TOPIC) if (found := read_event(r))}
    assert ids <= seen


async def test_a_service_serves_and_expect_events_reads_through_tls(broker: TlsBroker) -> None:
    settings = tls_settings(broker, kafka_group_id=f"tls-{uuid.uuid4().hex[:8]}")
    router: EventRouter[list[str]] = EventRouter("tls-test")
    router.publishes(RequestSubmittedV1)

    @router.handler(RequestSubmittedV1)
    async def on_request(event: Event, meta: EventMeta, deps: list[str]) -> None:
        assert isinstance(event, RequestSubmittedV1)
        deps.append(event.request_id)

    handled: list[str] = []

    @asynccontextmanager
    async def deps_factory(s: ServiceSettings, publisher: Publisher) -> AsyncIterator[list[str]]:
        yield handled

    rid = f"tls-serve-{uuid.uuid4().hex[:8]}"
    async with (
        running_service(router, settings, deps_factory),
        expect_events(
            settings.kafka_bootstrap,
            TOPIC,
            where=lambda m, e: getattr(e, "request_id", None) == rid,
            settings=settings,
        ) as got,
        tls_publisher(settings) as publisher,
    ):
        await publisher.publish(a_request(rid))
        for _ in range(200):
            if rid in handled:
                break
            await asyncio.sleep(0.05)
    assert [e.request_id for _, e in got.events if isinstance(e, RequestSubmittedV1)] == [rid]
    assert handled.count(rid) == 1  # (and the requests earlier tests left: the group starts at the beginning)


async def test_a_certificate_from_another_ca_is_refused(broker: TlsBroker, tmp_path: Path) -> None:
    other_ca = CertificateAuthority("unrelated-ca").write(tmp_path / "other-ca.pem")
    settings = tls_settings(broker, kafka_ssl_cafile=str(other_ca))
    with pytest.raises(KafkaSecurityError, match="CAIRN_KAFKA_SSL_CAFILE") as refused:
        await ensure_topics(settings.kafka_bootstrap, [], settings=settings)
    assert "not signed by the CA" in str(refused.value)
    assert isinstance(refused.value.__cause__, KafkaConnectionError)


async def test_a_certificate_for_another_host_is_refused(broker: TlsBroker) -> None:
    cert, key = broker.ca.issue(broker.folder, "elsewhere", ["kafka.elsewhere.example"])
    async with broker.proxy_with(cert, key) as elsewhere:
        settings = tls_settings(broker, kafka_bootstrap=f"127.0.0.1:{elsewhere.port}")
        with pytest.raises(KafkaSecurityError, match="CAIRN_KAFKA_SSL_CHECK_HOSTNAME") as refused:
            await ensure_topics(settings.kafka_bootstrap, [], settings=settings)
        assert "does not name '127.0.0.1'" in str(refused.value)
        # the same CA without the host check connects: the name was the only fault
        lax = tls_settings(broker, kafka_bootstrap=settings.kafka_bootstrap, kafka_ssl_check_hostname=False)
        assert await ensure_topics(lax.kafka_bootstrap, [], settings=lax) == []


async def test_a_plaintext_client_on_the_tls_port_is_told_to_use_tls(broker: TlsBroker) -> None:
    settings = tls_settings(broker, kafka_security_protocol="PLAINTEXT")
    with pytest.raises(KafkaSecurityError, match=r"speaks TLS.*CAIRN_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"):
        await ensure_topics(settings.kafka_bootstrap, [], settings=settings)


async def test_mutual_tls_needs_a_client_certificate(broker: TlsBroker, tmp_path: Path) -> None:
    client_ca = CertificateAuthority("client-ca")
    client_ca_file = client_ca.write(tmp_path / "client-ca.pem")
    cert, key = client_ca.issue(tmp_path, "svc", ["cairn-inference"], client=True)
    server_cert, server_key = broker.proxy.certfile, broker.proxy.keyfile
    async with broker.proxy_with(server_cert, server_key, client_ca=client_ca_file) as mtls:
        bootstrap = f"127.0.0.1:{mtls.port}"
        anonymous = tls_settings(broker, kafka_bootstrap=bootstrap)
        with pytest.raises((KafkaSecurityError, KafkaConnectionError)):
            await ensure_topics(bootstrap, [], settings=anonymous)
        known = tls_settings(
            broker, kafka_bootstrap=bootstrap, kafka_ssl_certfile=str(cert), kafka_ssl_keyfile=str(key)
        )
        assert await ensure_topics(bootstrap, [], settings=known) == []


# --- the option mapping (no broker) -------------------------------------------------------------------


def test_plaintext_adds_no_options() -> None:
    settings = ServiceSettings()
    assert client_options(settings) == {}
    assert broker_security(settings) is None


def test_ssl_builds_a_verifying_context(tmp_path: Path) -> None:
    ca = CertificateAuthority("ca").write(tmp_path / "ca.pem")
    options = client_options(ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(ca)))
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert "sasl_mechanism" not in options
    security = broker_security(ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(ca)))
    assert type(security) is BaseSecurity
    assert security.use_ssl


@pytest.mark.parametrize(("mechanism", "kind"), [("SCRAM-SHA-512", SASLScram512), ("PLAIN", SASLPlaintext)])
def test_sasl_ssl_maps_user_password_and_mechanism(
    tmp_path: Path, mechanism: str, kind: type[BaseSecurity]
) -> None:
    ca = CertificateAuthority("ca").write(tmp_path / "ca.pem")
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="cairn-safety",
        kafka_sasl_password="s3cret-passw0rd",
        kafka_ssl_cafile=str(ca),
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "cairn-safety",
        "s3cret-passw0rd",
    )
    security = broker_security(settings)
    assert type(security) is kind
    assert security.use_ssl
    assert isinstance(security.ssl_context, ssl.SSLContext)


def test_sasl_plaintext_has_no_tls_and_reads_the_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("from-a-mounted-file\n")
    monkeypatch.delenv("CAIRN_KAFKA_SASL_PASSWORD", raising=False)
    monkeypatch.setenv("CAIRN_KAFKA_SASL_PASSWORD_FILE", str(secret))
    settings = ServiceSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="cairn-audit")
    options = client_options(settings)
    assert "ssl_context" not in options
    assert options["sasl_plain_password"] == "from-a-mounted-file"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    security = broker_security(settings)
    assert not security.use_ssl


def test_incomplete_settings_name_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAIRN_KAFKA_SASL_PASSWORD", raising=False)
    monkeypatch.delenv("CAIRN_KAFKA_SASL_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("CAIRN_VAULT_ADDR", raising=False)
    with pytest.raises(KafkaSecurityError, match="CAIRN_KAFKA_SASL_USERNAME"):
        client_options(ServiceSettings(kafka_security_protocol="SASL_PLAINTEXT"))
    with pytest.raises(KafkaSecurityError, match="CAIRN_KAFKA_SASL_PASSWORD"):
        client_options(ServiceSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u"))
    with pytest.raises(KafkaSecurityError, match="CAIRN_KAFKA_SSL_CAFILE names"):
        client_options(
            ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "nope"))
        )
    ca = CertificateAuthority("ca").write(tmp_path / "ca.pem")
    with pytest.raises(KafkaSecurityError, match="both CAIRN_KAFKA_SSL_CERTFILE and CAIRN_KAFKA_SSL_KEYFILE"):
        client_options(ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_certfile=str(ca)))


def test_the_settings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = CertificateAuthority("ca").write(tmp_path / "ca.pem")
    monkeypatch.setenv("CAIRN_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("CAIRN_KAFKA_SSL_CAFILE", str(ca))
    monkeypatch.setenv("CAIRN_KAFKA_SSL_CHECK_HOSTNAME", "false")
    options = client_options()
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].check_hostname is False
    assert options["ssl_context"].verify_mode is ssl.CERT_REQUIRED
