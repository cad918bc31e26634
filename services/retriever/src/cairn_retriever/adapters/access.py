"""Access-control wiring: the bootstrap admin key, and a Kafka publisher for the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cairn_auth import AuthSettings, KeyStore, install_bootstrap_key
from cairn_auth.management import action_event_id
from cairn_bus import Publisher
from cairn_bus.settings import ServiceSettings


async def install_bootstrap(keys: KeyStore, auth: AuthSettings, publisher: Publisher) -> None:
    """Install the key in `CAIRN_AUTH_BOOTSTRAP_KEY_FILE` (when set and access control is on) as a
    platform-wide admin key, and publish its creation on `cairn.admin` the first time."""
    if not auth.enabled or auth.bootstrap_key_file is None:
        return
    _, event = await install_bootstrap_key(keys, auth.bootstrap_key_file)
    if event is not None:
        await publisher.publish(
            event, event_id=action_event_id(event.action, event.target, event.recorded_at)
        )


@asynccontextmanager
async def kafka_publisher(settings: ServiceSettings) -> AsyncIterator[Publisher]:
    """A publisher of its own, for an API served without the service (its admin actions)."""
    from cairn_bus.kafka import KafkaPublisher, make_producer

    producer = make_producer(settings)
    await producer.start()
    try:
        yield KafkaPublisher(producer, f"/cairn/{settings.service_name}", service=settings.service_name)
    finally:
        await producer.stop()
