"""The retriever service on the real broker and PostgreSQL, with the real MiniLM: Python language
reference topics are ingested, a question about `yield` is grounded in the `yield` topic."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from cairn_bus import EventMeta
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_events import ContextAssembledV1, Event, PromptRenderedV1
from cairn_retriever import bootstrap
from cairn_retriever.adapters.sources import PydocTopicsSource
from cairn_retriever.app import router
from cairn_retriever.ingest import DocumentStatus
from cairn_retriever.settings import Settings
from cairn_testing import expect_events, running_service, start_group_at_end

pytestmark = pytest.mark.integration
TOPICS = ["yield", "return", "while", "for", "pass", "lambda", "assert", "break", "continue", "del", "global"]


def prompt(rid: str, question: str, retrieval: dict[str, Any] | None) -> PromptRenderedV1:
    return PromptRenderedV1.model_validate(
        {
            "request_id": rid,
            "tenant": "default",
            "prompt_name": "python-qa",
            "prompt_version": 1,
            "messages": [
                {"role": "system", "content": "Answer questions about Python."},
                {"role": "user", "content": question},
            ],
            "retrieval": retrieval,
            "params": {"max_tokens": 64},
            "rendered_at": datetime.now(UTC).isoformat(),
        }
    )


def for_request(rid: str) -> Callable[[EventMeta, Event], bool]:
    return lambda meta, event: isinstance(event, ContextAssembledV1) and event.request_id == rid


async def test_a_question_is_grounded_in_the_right_python_topic(
    kafka_bootstrap: str, fresh_database: str, unique_group: str, minilm: Any
) -> None:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        postgres_dsn=fresh_database,
        kafka_group_id=unique_group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        consumer_retry_backoff_ms=10,
        context_token_budget=600,
        http_port=0,  # the ingestion API beside the consumer, on any free port
    )
    async with bootstrap.open_store(settings) as store:
        report = await bootstrap.make_ingestor(settings, minilm, store).ingest(
            PydocTopicsSource(TOPICS), "default"
        )
    assert report.count(DocumentStatus.ADDED) == len(TOPICS)

    await ensure_topics(kafka_bootstrap)
    await start_group_at_end(kafka_bootstrap, unique_group, router.topics)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        upstream = KafkaPublisher(producer, "/cairn/prompt-store", service="prompt-store")
        build = lambda s, p: bootstrap.build(s, p, embedder=minilm)  # noqa: E731 - the loaded model, once
        run = uuid.uuid4().hex[:8]
        asked = prompt(f"yield-{run}", "What does the yield statement do?", {"top_k": 3})
        plain = prompt(f"plain-{run}", "Hello!", None)
        async with running_service(router, settings, build):
            async with expect_events(
                kafka_bootstrap, "cairn.contexts", where=for_request(asked.request_id), settle=2.0
            ) as got:
                message = upstream.build(asked)
                await upstream.send(message)
                await upstream.send(message)  # redelivered: must produce one context
            async with expect_events(
                kafka_bootstrap, "cairn.contexts", where=for_request(plain.request_id)
            ) as passed:
                await upstream.publish(plain)
    finally:
        await producer.stop()

    (meta, out), *extra = [(m, e) for m, e in got.events if for_request(asked.request_id)(m, e)]
    assert extra == []
    assert isinstance(out, ContextAssembledV1)
    assert meta.causation_id == message.meta.id
    assert out.chunks[0].source_uri == "pydoc:topics/yield"
    assert 1 <= len(out.chunks) <= 3
    context = out.messages[1].content
    assert out.messages[0].content == "Answer questions about Python."
    assert f"[1] (pydoc:topics/yield) {out.chunks[0].text}" in context
    assert "yield" in out.chunks[0].text
    assert 0 < out.context_tokens <= 600
    assert all(-1.0 <= c.score <= 1.0 for c in out.chunks)

    (_, through), *_ = [(m, e) for m, e in passed.events if for_request(plain.request_id)(m, e)]
    assert isinstance(through, ContextAssembledV1)
    assert through.chunks == []
    assert through.messages == plain.messages
