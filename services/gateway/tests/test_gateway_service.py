"""The gateway as it runs (`bootstrap.build`), on the real test broker and PostgreSQL, with API keys:
two replicas sharing one idempotency table, and a fake request path that answers every request
event on `cairn.responses` as the safety service would.

The fake request path answers only this module's tenant, so other tests on the same broker do not
disturb it; what it answers depends on the question (see `FakeRequestPath.respond`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cairn_auth import AuthSettings, Role
from cairn_auth.adapters.postgres import PostgresKeyStore
from cairn_auth.management import create_key
from cairn_bus import Publisher
from cairn_bus.kafka import KafkaPublisher, consumer_at_end, ensure_topics, events_in, make_producer
from cairn_bus.postgres import create_pool
from cairn_events import RequestSubmittedV1, ResponseCompletedV1
from cairn_gateway.app import router
from cairn_gateway.bootstrap import Deps, build
from cairn_gateway.settings import Settings
from cairn_testing.databases import scratch_database

from .conftest import answer, deltas_of

pytestmark = pytest.mark.integration

TENANT = f"gw-it-{uuid.uuid4().hex[:8]}"
HOLD = "Please hold this answer."
BLOCK = "Please block this answer."


class FakeRequestPath:
    """Reads `cairn.requests` from its end and answers each request of `tenant` on `cairn.responses`:
    `held` for the question HOLD, `blocked` for BLOCK, else `completed`; a request that streams
    gets its text's deltas on `cairn.completions.deltas` first, as inference publishes them."""

    def __init__(self, bootstrap: str, tenant: str, publisher: Publisher, inference: Publisher) -> None:
        self.bootstrap, self.tenant, self.publisher, self.inference = bootstrap, tenant, publisher, inference
        self.seen: Counter[str] = Counter()
        self.requests: dict[str, RequestSubmittedV1] = {}
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    def respond(self, request: RequestSubmittedV1) -> ResponseCompletedV1:
        question = request.messages[-1].content
        if question == HOLD:
            return answer(request, status="held", text=None, reason="held for human review (review rev-it)")
        if question == BLOCK:
            return answer(request, status="blocked", text=None, reason="toxic output")
        return answer(request)

    async def start(self) -> None:
        self._consumer = await consumer_at_end(self.bootstrap, RequestSubmittedV1.topic)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for _, event in events_in(batch):
                if isinstance(event, RequestSubmittedV1) and event.tenant == self.tenant:
                    self.seen[event.request_id] += 1
                    self.requests[event.request_id] = event
                    response = self.respond(event)
                    if event.params.stream:  # as inference would: the text's deltas first
                        text = response.text or f"an answer to {event.messages[-1].content} to block"
                        for delta in deltas_of(event, text, size=6):
                            await self.inference.publish(delta)
                    await self.publisher.publish(response)

    async def caught_up(self) -> None:
        """Return once everything on `cairn.requests` when called has been read (and answered)."""
        ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
        for _ in range(600):
            if all([await self._consumer.position(tp) >= end for tp, end in ends.items()]):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the fake request path did not catch up with cairn.requests")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


@dataclass
class Replica:
    deps: Deps
    client: httpx.AsyncClient


@dataclass
class World:
    a: Replica
    b: Replica
    path: FakeRequestPath
    reviewer: Publisher
    key: str


def chat(question: str = "What does yield do?", **fields: Any) -> dict[str, Any]:
    return {"model": "qa", "messages": [{"role": "user", "content": question}], **fields}


@contextlib.asynccontextmanager
async def replica(settings: Settings, auth: AuthSettings, key: str) -> AsyncIterator[Replica]:
    producer = make_producer(settings)
    await producer.start()
    try:
        publisher = KafkaPublisher(
            producer, "/cairn/gateway", allowed_types=router.published_types, service="gateway"
        )
        async with build(settings, publisher, auth=auth) as deps:
            assert deps.http is not None
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=deps.http.url, headers=headers, timeout=60) as client:
                yield Replica(deps, client)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
async def world(kafka_bootstrap: str, postgres_dsn: str) -> AsyncIterator[World]:
    await ensure_topics(kafka_bootstrap)
    async with scratch_database(postgres_dsn, "gw") as dsn, contextlib.AsyncExitStack() as stack:
        pool = await create_pool(dsn)
        stack.push_async_callback(pool.close)
        keys = PostgresKeyStore(pool)
        await keys.migrate()
        issued, _, _ = await create_key(keys, tenant=TENANT, role=Role.VIEWER, name="it", actor="test")
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            postgres_dsn=dsn,
            http_port=0,
            gateway_answer_timeout_s=30,
            gateway_prompt_store_url=None,
            gateway_registry_url=None,
            gateway_stream_holdback_chars=8,
        )
        auth = AuthSettings(enabled=True, cache_ttl_s=0)
        producer = make_producer(settings)
        await producer.start()
        stack.push_async_callback(producer.stop)
        path = FakeRequestPath(
            kafka_bootstrap,
            TENANT,
            KafkaPublisher(producer, "/cairn/safety", service="safety"),
            KafkaPublisher(producer, "/cairn/inference", service="inference"),
        )
        await path.start()
        stack.push_async_callback(path.stop)
        a = await stack.enter_async_context(replica(settings, auth, issued.token))
        b = await stack.enter_async_context(replica(settings, auth, issued.token))
        reviewer = KafkaPublisher(producer, "/cairn/safety", service="safety")
        yield World(a, b, path, reviewer, issued.token)


async def test_a_chat_completion_goes_through_the_broker_and_back(world: World) -> None:
    got = await world.a.client.post("/v1/chat/completions", json=chat())
    assert got.status_code == 200, got.text
    rid = got.headers["X-Cairn-Request-Id"]
    assert world.path.seen[rid] == 1
    assert world.path.requests[rid].tenant == TENANT
    body = got.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "answer to What does yield do?"
    assert body["usage"]["total_tokens"] == 18


async def test_each_replica_gets_the_answers_to_its_own_requests(world: World) -> None:
    got = await asyncio.gather(
        *(
            r.client.post("/v1/chat/completions", json=chat(f"question {i}"))
            for i, r in enumerate([world.a, world.b] * 3)
        )
    )
    assert [g.status_code for g in got] == [200] * 6
    assert [g.json()["choices"][0]["message"]["content"] for g in got] == [
        f"answer to question {i}" for i in range(6)
    ]
    assert world.a.deps.replies.dropped >= 3  # A saw B's answers and dropped them
    assert world.b.deps.replies.dropped >= 3


async def test_a_retry_with_the_idempotency_key_gets_the_stored_answer_and_sends_nothing(
    world: World,
) -> None:
    key = {"Idempotency-Key": f"it-{uuid.uuid4()}"}
    first = await world.a.client.post("/v1/chat/completions", json=chat(), headers=key)
    assert first.status_code == 200
    rid = first.headers["X-Cairn-Request-Id"]
    again = await world.b.client.post("/v1/chat/completions", json=chat(), headers=key)  # the other replica
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["X-Cairn-Request-Id"] == rid
    await world.path.caught_up()
    assert world.path.seen[rid] == 1  # one request event for both tries


async def test_a_blocked_answer_finishes_for_content_filter(world: World) -> None:
    got = await world.a.client.post("/v1/chat/completions", json=chat(BLOCK))
    assert got.status_code == 200
    choice = got.json()["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"], choice["message"]["refusal"]) == (
        "content_filter",
        None,
        "toxic output",
    )


async def test_a_held_answer_is_a_409_and_the_released_answer_reaches_the_retry(world: World) -> None:
    key = {"Idempotency-Key": f"it-held-{uuid.uuid4()}"}
    held = await world.a.client.post("/v1/chat/completions", json=chat(HOLD), headers=key)
    assert held.status_code == 409
    assert held.headers["x-should-retry"] == "false"
    rid = held.headers["X-Cairn-Request-Id"]
    assert held.json()["error"]["code"] == "held_for_review"
    assert rid in held.json()["error"]["message"]
    # the reviewer approves: safety publishes the final response for the same request id
    request = world.path.requests[rid]
    await world.reviewer.publish(answer(request, text="released by the reviewer"))
    for _ in range(200):  # replica A stores it when it reads it
        final = await world.b.client.post("/v1/chat/completions", json=chat(HOLD), headers=key)
        if final.status_code != 409:
            break
        await asyncio.sleep(0.05)
    assert final.status_code == 200
    assert final.json()["choices"][0]["message"]["content"] == "released by the reviewer"
    await world.path.caught_up()
    assert world.path.seen[rid] == 1


async def test_a_bad_key_is_a_401_in_openais_shape(world: World) -> None:
    got = await world.a.client.post(
        "/v1/chat/completions", json=chat(), headers={"Authorization": "Bearer cairn_nope_nope"}
    )
    assert got.status_code == 401
    assert got.json()["error"]["code"] == "invalid_api_key"
    assert got.headers["WWW-Authenticate"] == "Bearer"


def sse_events(text: str) -> list[Any]:
    blocks = [b for b in text.split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks), blocks
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in blocks]


def content_of(chunks: list[Any]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in chunks
        if isinstance(c, dict) and c.get("choices")
    )


async def test_a_streamed_answer_relays_the_deltas_through_the_broker_to_its_replica_only(
    world: World,
) -> None:
    before = world.a.deps.replies.dropped_deltas
    got = await world.b.client.post("/v1/chat/completions", json=chat(stream=True))
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/event-stream")
    chunks = sse_events(got.text)
    assert chunks[-1] == "[DONE]"
    assert content_of(chunks) == "answer to What does yield do?"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    rid = got.headers["X-Cairn-Request-Id"]
    assert world.path.requests[rid].params.stream is True
    for _ in range(100):  # A read the same deltas and dropped them
        if world.a.deps.replies.dropped_deltas > before:
            break
        await asyncio.sleep(0.05)
    assert world.a.deps.replies.dropped_deltas > before
    assert rid not in world.a.deps.replies


async def test_a_streamed_answer_blocked_by_screening_ends_for_content_filter(world: World) -> None:
    got = await world.a.client.post("/v1/chat/completions", json=chat(BLOCK, stream=True))
    assert got.status_code == 200
    chunks = sse_events(got.text)
    generated = f"an answer to {BLOCK} to block"
    shown = content_of(chunks)
    assert generated.startswith(shown)
    assert len(shown) <= len(generated) - 8  # the hold-back window is never shown
    assert chunks[-3]["choices"][0]["delta"] == {"refusal": "toxic output"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[-1] == "[DONE]"
