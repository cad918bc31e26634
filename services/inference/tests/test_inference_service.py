"""The inference service against the real broker: the tiny model answers screened inputs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from cairn_bus import EventMeta
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_events import CompletionGeneratedV1, Event, ResponseCompletedV1, ResponseStatus
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_inference.settings import Settings
from cairn_testing import expect_events, running_service, start_group_at_end
from cairn_testing.tiny import TINY_MODEL_NAME

from .conftest import screened

pytestmark = pytest.mark.integration


@pytest.fixture
async def upstream(kafka_bootstrap: str) -> AsyncIterator[KafkaPublisher]:
    """Publishes as safety would (`/cairn/safety`)."""
    await ensure_topics(kafka_bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield KafkaPublisher(producer, "/cairn/safety", service="safety")
    await producer.stop()


@pytest.fixture
def s3_endpoint(local_stack: dict[str, str]) -> str:
    """The test stack's object store: the registry view of the shared broker names other tests' adapters,
    which inference tries to fetch when it starts (a wrong endpoint makes each try wait for its retries)."""
    return local_stack["CAIRN_S3_ENDPOINT"]


async def service_settings(kafka_bootstrap: str, group: str, model_dir: Path, **changes: Any) -> Settings:
    await start_group_at_end(kafka_bootstrap, group, router.topics)
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        kafka_group_id=group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        consumer_retry_backoff_ms=10,
        model_name=TINY_MODEL_NAME,
        model_dir=str(model_dir),
        batch_window_ms=5,
        served_model=f"test-{uuid.uuid4().hex[:8]}",  # the shared broker's cairn.models names other models
        **changes,
    )


def for_request(request_id: str) -> Callable[[EventMeta, Event], bool]:
    def match(meta: EventMeta, event: Event) -> bool:
        return getattr(event, "request_id", None) == request_id

    return match


@pytest.mark.parametrize("inbox", ["memory", "postgres"])
async def test_screened_input_gets_one_completion_even_when_delivered_twice(
    kafka_bootstrap: str,
    unique_group: str,
    tiny_model_dir: Path,
    upstream: KafkaPublisher,
    fresh_database: str,
    inbox: str,
    s3_endpoint: str,
) -> None:
    settings = await service_settings(
        kafka_bootstrap,
        unique_group,
        tiny_model_dir,
        inbox=inbox,
        postgres_dsn=fresh_database,
        s3_endpoint=s3_endpoint,
    )
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    event = screened(request_id=request_id, model=None, params={"max_tokens": 8})
    async with (
        running_service(router, settings, build),
        expect_events(
            kafka_bootstrap,
            CompletionGeneratedV1.topic,
            where=for_request(request_id),
            settle=3.0,
        ) as received,
    ):
        message = upstream.build(event)
        await upstream.send(message)
        await upstream.send(message)  # a redelivery: the same event id
    matching = [(m, e) for m, e in received.events if getattr(e, "request_id", None) == request_id]
    assert len(matching) == 1
    meta, completion = matching[0]
    assert isinstance(completion, CompletionGeneratedV1)
    assert meta.causation_id == message.meta.id
    assert completion.model == TINY_MODEL_NAME
    assert completion.backend == "transformers-cpu"
    assert 1 <= completion.usage.output_tokens <= 8
    assert completion.time_to_first_token_ms is not None
    assert completion.chunks == event.chunks


async def test_an_input_for_a_model_not_served_gets_a_failed_response(
    kafka_bootstrap: str, unique_group: str, tiny_model_dir: Path, upstream: KafkaPublisher, s3_endpoint: str
) -> None:
    settings = await service_settings(kafka_bootstrap, unique_group, tiny_model_dir, s3_endpoint=s3_endpoint)
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    async with (
        running_service(router, settings, build),
        expect_events(kafka_bootstrap, ResponseCompletedV1.topic, where=for_request(request_id)) as received,
    ):
        await upstream.publish(screened(request_id=request_id, model="gpt-5"))
    (_, response) = next((m, e) for m, e in received.events if getattr(e, "request_id", None) == request_id)
    assert isinstance(response, ResponseCompletedV1)
    assert response.status is ResponseStatus.FAILED
    assert response.reason is not None
    assert "not served" in response.reason
