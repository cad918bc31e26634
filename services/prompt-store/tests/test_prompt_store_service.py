"""The prompt store as a running service: real broker, real PostgreSQL, its HTTP API beside the consumer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from cairn_auth import AuthSettings, new_key
from cairn_bus import EventMeta, Publisher
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_bus.postgres import create_pool
from cairn_events import (
    AdminActionRecordedV1,
    Event,
    PromptRenderedV1,
    ResponseCompletedV1,
    ResponseStatus,
)
from cairn_prompt_store import management
from cairn_prompt_store.adapters.postgres import PostgresPromptStore
from cairn_prompt_store.app import router
from cairn_prompt_store.bootstrap import Deps, build
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.settings import Settings
from cairn_testing import expect_events, running_service, start_group_at_end

from .conftest import request

pytestmark = pytest.mark.integration
QUESTION = [{"role": "user", "content": "What does yield do?"}]


@pytest.fixture
async def settings(kafka_bootstrap: str, fresh_database: str, unique_group: str) -> Settings:
    await ensure_topics(kafka_bootstrap)
    await start_group_at_end(kafka_bootstrap, unique_group, ["cairn.requests"])
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        postgres_dsn=fresh_database,
        kafka_group_id=unique_group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        consumer_retry_backoff_ms=10,
        http_port=0,
    )


@pytest.fixture
async def seeded(settings: Settings, qa_spec: PromptSpec) -> None:
    """qa:1 on production."""
    pool = await create_pool(settings.postgres_dsn)
    try:
        store = PostgresPromptStore(pool)
        await store.migrate()
        await management.push(store, qa_spec, ["production"], by="test")
    finally:
        await pool.close()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
def upstream(producer: AIOKafkaProducer) -> KafkaPublisher:
    return KafkaPublisher(producer, "/cairn/test", service="test")


def about(request_id: str) -> Callable[[EventMeta, Event], bool]:
    return lambda meta, event: getattr(event, "request_id", None) == request_id


def distinct(
    events: list[tuple[EventMeta, Event]], where: Callable[[EventMeta, Event], bool]
) -> list[tuple[EventMeta, Event]]:
    """The events about this test's own request (the local broker may report an end offset short of
    the real end, so a capture can start with an earlier test's records), each event id once."""
    seen: set[str] = set()
    out = []
    for meta, event in events:
        if where(meta, event) and meta.id not in seen:
            seen.add(meta.id)
            out.append((meta, event))
    return out


def rid() -> str:
    return f"req-{uuid.uuid4().hex[:12]}"


class Capture:
    """A deps factory that keeps the deps the service built (to reach its HTTP API)."""

    def __init__(self, auth: AuthSettings | None = None) -> None:
        self.deps: Deps | None = None
        self.auth = auth

    @asynccontextmanager
    async def __call__(self, settings: Settings, publisher: Publisher) -> AsyncIterator[Deps]:
        async with build(settings, publisher, auth=self.auth) as deps:
            self.deps = deps
            yield deps


async def test_requests_are_rendered_or_rejected_end_to_end(
    settings: Settings, seeded: None, upstream: KafkaPublisher, kafka_bootstrap: str
) -> None:
    good, unknown, missing = rid(), rid(), rid()
    async with running_service(router, settings, build):
        async with expect_events(kafka_bootstrap, "cairn.prompts", where=about(good)) as prompts:
            sent = await upstream.publish(
                request("qa", good, tenant="acme", variables={"topic": "generators"}, messages=QUESTION)
            )
        async with expect_events(
            kafka_bootstrap, "cairn.responses", where=lambda m, e: m.subject in {unknown, missing}, count=2
        ) as responses:
            await upstream.publish(request("qa@canary", unknown))
            await upstream.publish(request("qa", missing))
    [(meta, rendered)] = distinct(prompts.of_type(PromptRenderedV1.event_type), about(good))
    assert isinstance(rendered, PromptRenderedV1)
    assert (rendered.prompt_name, rendered.prompt_version, rendered.prompt_label) == ("qa", 1, "production")
    assert rendered.tenant == "acme"
    assert [m.role for m in rendered.messages] == ["system", "user"]
    assert rendered.retrieval is not None
    assert rendered.retrieval.query == "generators: What does yield do?"
    assert (meta.causation_id, meta.correlation_id, meta.source) == (sent.id, good, "/cairn/prompt-store")
    reasons = {
        e.request_id: (e.status, e.reason)
        for _, e in responses.of_type(ResponseCompletedV1.event_type)
        if isinstance(e, ResponseCompletedV1) and e.request_id in {unknown, missing}  # the broker is shared
    }
    assert reasons == {
        unknown: (ResponseStatus.REJECTED, "prompt 'qa' has no label 'canary' (labels: production)"),
        missing: (ResponseStatus.REJECTED, "prompt qa:1: missing required variable 'question'"),
    }


async def test_the_same_request_delivered_twice_is_rendered_once(
    settings: Settings, seeded: None, upstream: KafkaPublisher, kafka_bootstrap: str
) -> None:
    twice = rid()
    message = upstream.build(request("qa", twice, messages=QUESTION))
    async with (
        running_service(router, settings, build),
        expect_events(kafka_bootstrap, "cairn.prompts", where=about(twice), settle=2.0) as prompts,
    ):
        await upstream.send(message)
        await upstream.send(message)  # a redelivery: same ce_id
    assert len(distinct(prompts.events, about(twice))) == 1


async def test_an_unreadable_request_is_rejected_with_the_dead_letter_reason(
    settings: Settings, producer: AIOKafkaProducer, upstream: KafkaPublisher, kafka_bootstrap: str
) -> None:
    broken = rid()
    headers = upstream.build(request("qa", broken)).headers
    value = b'{"request_id": "' + broken.encode() + b'", "tenant": "acme", "prompt": "qa"}'
    async with (
        running_service(router, settings, build),
        expect_events(kafka_bootstrap, "cairn.responses", where=about(broken)) as responses,
        expect_events(
            kafka_bootstrap, "cairn.deadletter", where=lambda m, e: m.correlation_id == broken
        ) as dead,
    ):
        await producer.send_and_wait("cairn.requests", value=value, key=broken.encode(), headers=headers)
    [(_, response)] = distinct(responses.events, about(broken))
    assert isinstance(response, ResponseCompletedV1)
    assert (response.status, response.tenant) == (ResponseStatus.REJECTED, "acme")
    assert response.reason is not None
    assert response.reason.startswith("schema_invalid: ")
    assert "submitted_at" in response.reason
    assert len(distinct(dead.events, lambda m, e: m.correlation_id == broken)) == 1


async def test_the_service_serves_its_api_and_stops_it(
    settings: Settings,
    qa_spec: PromptSpec,
    upstream: KafkaPublisher,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    bootstrap = new_key()
    key_file = tmp_path / "bootstrap.key"
    key_file.write_text(bootstrap.token + "\n")
    capture = Capture(AuthSettings(bootstrap_key_file=key_file))
    fresh = rid()
    async with running_service(router, settings, capture):
        assert capture.deps is not None
        assert capture.deps.http is not None
        url = capture.deps.http.url
        body = {"spec": qa_spec.canonical(), "labels": ["production"]}
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/health")).json() == {"status": "ok"}
            assert (await client.post("/prompts", json=body)).status_code == 401
            async with expect_events(
                kafka_bootstrap,
                "cairn.admin",
                where=lambda m, e: getattr(e, "actor", None) == bootstrap.key_id,
            ) as admin:
                pushed = await client.post(
                    "/prompts", json=body, headers={"Authorization": f"Bearer {bootstrap.token}"}
                )
            assert pushed.json()["version"] == 1
        async with expect_events(kafka_bootstrap, "cairn.prompts", where=about(fresh)) as prompts:
            await upstream.publish(request("qa", fresh, messages=QUESTION))
    assert len(distinct(prompts.events, about(fresh))) == 1
    [(_, moved)] = distinct(admin.events, lambda m, e: getattr(e, "actor", None) == bootstrap.key_id)
    assert isinstance(moved, AdminActionRecordedV1)
    assert (moved.action, moved.target, moved.details) == (
        "prompt.label.moved",
        "prompt:qa@production",
        {"label": "production", "to_version": 1},
    )
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get("/health")
