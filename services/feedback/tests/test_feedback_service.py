"""The feedback service as a running consumer (real broker, PostgreSQL and S3), then a build from what it stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_bus.objects import S3ObjectStore
from cairn_bus.postgres import create_pool
from cairn_events import DatasetPublishedV1
from cairn_events.artifacts import DatasetRow
from cairn_feedback.adapters.postgres import PostgresRepository
from cairn_feedback.app import router
from cairn_feedback.bootstrap import build
from cairn_feedback.datasets import build_dataset
from cairn_feedback.domain.records import RequestTrail
from cairn_feedback.domain.rules import Rules
from cairn_feedback.settings import Settings
from cairn_testing import expect_events, running_service, start_group_at_end
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration
F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))


@pytest.fixture
async def settings(local_stack: dict[str, str], fresh_database: str, unique_group: str) -> Settings:
    bootstrap = local_stack["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    await start_group_at_end(bootstrap, unique_group, router.topics)
    return Settings(
        kafka_bootstrap=bootstrap,
        postgres_dsn=fresh_database,
        kafka_group_id=unique_group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        consumer_retry_backoff_ms=10,
        s3_endpoint=local_stack["CAIRN_S3_ENDPOINT"],
        s3_access_key=local_stack["CAIRN_S3_ACCESS_KEY"],
        s3_secret_key=local_stack["CAIRN_S3_SECRET_KEY"],  # type: ignore[arg-type]
    )


@pytest.fixture
async def upstream(kafka_bootstrap: str) -> AsyncIterator[KafkaPublisher]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield KafkaPublisher(producer, "/cairn/test", service="test")
    await producer.stop()


@pytest.fixture
async def repository(settings: Settings) -> AsyncIterator[PostgresRepository]:
    pool = await create_pool(settings.postgres_dsn, 1, 2)
    repo = PostgresRepository(pool)
    await repo.migrate()
    yield repo
    await pool.close()


async def wait_for(repository: PostgresRepository, request_id: str, feedback: int) -> RequestTrail:
    for _ in range(150):
        trail = await repository.trail(request_id)
        if trail.request and trail.screening and trail.response and len(trail.feedback) >= feedback:
            return trail
        await asyncio.sleep(0.2)
    raise AssertionError(f"{request_id} not stored: {trail}")


async def test_events_delivered_twice_in_any_order_are_stored_once_and_curated(
    settings: Settings, upstream: KafkaPublisher, repository: PostgresRepository, kafka_bootstrap: str
) -> None:
    rid = f"req-{uuid.uuid4().hex[:10]}"
    evaluation = f"eval-{uuid.uuid4().hex[:10]}"
    events = [
        F.feedback(
            f"{rid}-fb", rid, corrected_answer="Reset it under Settings > Security. Mail help@acme.test."
        ),
        F.response(rid),
        F.screening(rid),
        F.request(rid),
        *F.request_events(evaluation, user_id="cairn-evaluator"),
        F.feedback(f"{evaluation}-fb", evaluation, rating=5),
    ]
    async with running_service(router, settings, build):
        for event in events:
            message = upstream.build(event)
            await upstream.send(message)
            await upstream.send(message)  # a redelivery: same record, same ce_id
        trail = await wait_for(repository, rid, 1)
        await wait_for(repository, evaluation, 1)
        await asyncio.sleep(1.0)  # let the redeliveries land too
    assert (trail.request, trail.screening, trail.response) == (
        F.request(rid),
        F.screening(rid),
        F.response(rid),
    )
    assert len((await repository.trail(rid)).feedback) == 1

    objects = S3ObjectStore.from_settings(settings)
    dataset_id = f"it-{uuid.uuid4().hex[:8]}"
    async with expect_events(
        kafka_bootstrap, "cairn.datasets", where=lambda m, e: getattr(e, "dataset_id", None) == dataset_id
    ) as published:
        built = await build_dataset(
            repository,
            objects,
            upstream_as_feedback(upstream),
            dataset_id=dataset_id,
            rules=Rules(corrected=True, min_rating=4),
            bucket=settings.s3_bucket,
            code_version="test",
        )
    [(meta, event)] = published.events
    assert isinstance(event, DatasetPublishedV1)
    assert (meta.source, event.uri, event.row_count) == ("/cairn/feedback", built.version.uri, 1)
    [line] = (await asyncio.to_thread(objects.get, event.uri + "train.jsonl")).decode().splitlines()
    row = DatasetRow.model_validate_json(line)
    assert (row.request_id, row.source) == (rid, "corrected")
    assert row.completion == "Reset it under Settings > Security. Mail [EMAIL]."
    assert built.version.manifest.dropped == {"evaluation": 1}
    await asyncio.to_thread(objects.delete_prefix, f"s3://{settings.s3_bucket}/datasets/{dataset_id}/")


def upstream_as_feedback(upstream: KafkaPublisher) -> KafkaPublisher:
    """A publisher on the same producer under the feedback service's name and declared types."""
    return KafkaPublisher(
        upstream.producer, "/cairn/feedback", allowed_types=router.published_types, service="feedback"
    )
