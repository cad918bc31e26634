"""The safety service against the real broker and PostgreSQL, driven only through topics."""

from __future__ import annotations

import asyncio
import getpass
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_bus.postgres import create_pool
from cairn_events import (
    ChatMessage,
    CompletionGeneratedV1,
    ContextAssembledV1,
    InputScreenedV1,
    ResponseCompletedV1,
    ResponseStatus,
    ReviewDecision,
    ReviewRequestedV1,
    ReviewResolvedV1,
    Verdict,
)
from cairn_safety import bootstrap
from cairn_safety.adapters.policy_files import load_policy
from cairn_safety.app import router
from cairn_safety.cli import app as cli_app
from cairn_safety.handlers import held_reason
from cairn_safety.settings import Settings
from cairn_testing import expect_events, running_service, schema_examples, start_group_at_end

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def settings(kafka_bootstrap: str, fresh_database: str, unique_group: str) -> Settings:
    """The service's settings for one test: its own database, its own group starting at the topics' ends."""
    await ensure_topics(kafka_bootstrap)
    await start_group_at_end(kafka_bootstrap, unique_group, router.topics)
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
async def upstream(kafka_bootstrap: str) -> AsyncIterator[KafkaPublisher]:
    """Publishes what retriever and inference would (`/cairn/test`)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield KafkaPublisher(producer, "/cairn/test", service="test")
    await producer.stop()


def context(rid: str, user: str) -> ContextAssembledV1:
    [found] = schema_examples(ContextAssembledV1.event_type)
    base = ContextAssembledV1.model_validate(found.payload)
    return base.model_copy(
        update={"request_id": rid, "messages": [base.messages[0], ChatMessage(role="user", content=user)]}
    )


def completion(rid: str, text: str | None = None) -> CompletionGeneratedV1:
    [found] = schema_examples(CompletionGeneratedV1.event_type)
    base = CompletionGeneratedV1.model_validate(found.payload)
    return base.model_copy(update={"request_id": rid, **({"text": text} if text is not None else {})})


def of(rid: str) -> Any:
    return lambda meta, event: getattr(event, "request_id", None) == rid


async def test_toxic_input_gets_a_blocked_response(
    settings: Settings, upstream: KafkaPublisher, kafka_bootstrap: str
) -> None:
    rid = f"tox-{uuid.uuid4().hex[:8]}"
    async with (
        running_service(router, settings, bootstrap.build),
        expect_events(kafka_bootstrap, "cairn.responses", where=of(rid)) as got,
    ):
        sent = await upstream.publish(context(rid, "You are a fucking idiot, answer me now"))
    [(meta, response)] = [(m, e) for m, e in got.events if of(rid)(m, e)]
    assert isinstance(response, ResponseCompletedV1)
    assert response.status is ResponseStatus.BLOCKED
    assert response.verdict is Verdict.BLOCK
    assert response.reason is not None
    assert "toxicity" in response.reason
    assert [f.check for f in response.findings if f.fired] == ["toxicity"]
    assert meta.causation_id == sent.id
    assert meta.source == "/cairn/safety"


async def test_pii_input_is_screened_with_redacted_messages(
    settings: Settings, upstream: KafkaPublisher, kafka_bootstrap: str
) -> None:
    rid = f"pii-{uuid.uuid4().hex[:8]}"
    event = context(rid, "My IBAN is DE89 3704 0044 0532 0130 00 and email bob@example.com - refund please")
    async with (
        running_service(router, settings, bootstrap.build),
        expect_events(kafka_bootstrap, "cairn.screenings", where=of(rid)) as got,
    ):
        await upstream.publish(event)
    [screened] = [e for m, e in got.events if of(rid)(m, e)]
    assert isinstance(screened, InputScreenedV1)
    assert screened.verdict is Verdict.REDACT
    tenant_policy = load_policy(REPO / "infra" / "policies" / "acme-support.yaml")
    assert screened.policy == tenant_policy.ref  # the tenant's own file in infra/policies
    assert screened.messages[0] == event.messages[0]
    assert screened.messages[1].content == "My IBAN is [IBAN] and email [EMAIL] - refund please"
    assert screened.chunks == event.chunks
    assert (screened.prompt_name, screened.prompt_version, screened.params) == (
        event.prompt_name,
        event.prompt_version,
        event.params,
    )


async def test_clean_completion_gets_one_completed_response_with_citations(
    settings: Settings, upstream: KafkaPublisher, kafka_bootstrap: str
) -> None:
    rid = f"ok-{uuid.uuid4().hex[:8]}"
    event = completion(rid)
    message = upstream.build(event)
    async with (
        running_service(router, settings, bootstrap.build),
        expect_events(kafka_bootstrap, "cairn.responses", where=of(rid), settle=2.0) as got,
    ):
        await upstream.send(message)
        await upstream.send(message)  # a redelivery: one response all the same
    [response] = [e for m, e in got.events if of(rid)(m, e)]
    assert isinstance(response, ResponseCompletedV1)
    assert response.status is ResponseStatus.COMPLETED
    assert response.verdict is Verdict.ALLOW
    assert response.text == event.text
    assert response.citations == event.chunks
    assert (response.model, response.model_version, response.adapter, response.usage) == (
        event.model,
        event.model_version,
        event.adapter,
        event.usage,
    )


async def test_the_same_flagged_input_twice_gives_one_review_and_one_held_response(
    settings: Settings, upstream: KafkaPublisher, kafka_bootstrap: str
) -> None:
    rid = f"dup-{uuid.uuid4().hex[:8]}"
    message = upstream.build(context(rid, "I am so pissed off about this"))
    async with running_service(router, settings, bootstrap.build):
        async with (
            expect_events(kafka_bootstrap, "cairn.reviews", where=of(rid), settle=2.0) as reviews,
            expect_events(kafka_bootstrap, "cairn.responses", where=of(rid), settle=2.0) as responses,
        ):
            await upstream.send(message)
            await upstream.send(message)  # a redelivery: same id
        [requested] = [e for m, e in reviews.events if of(rid)(m, e)]
        [response] = [e for m, e in responses.events if of(rid)(m, e)]
        assert isinstance(requested, ReviewRequestedV1)
        assert requested.stage == "input"
        assert isinstance(response, ResponseCompletedV1)
        assert (response.status, response.reason, response.verdict) == (
            ResponseStatus.HELD,
            held_reason(requested.review_id),
            Verdict.REVIEW,
        )
        pool = await create_pool(settings.postgres_dsn, 1, 1)
        try:
            rows = await pool.fetch(
                "SELECT id, request_id, stage, status, findings, release FROM safety_reviews"
            )
            claims = await pool.fetchval(
                "SELECT count(*) FROM cairn_inbox WHERE event_id = $1", message.meta.id
            )
        finally:
            await pool.close()
        assert [(r["id"], r["request_id"], r["stage"], r["status"]) for r in rows] == [
            (requested.review_id, rid, "input", "pending")
        ]
        assert rows[0]["findings"] == [f.model_dump(mode="json") for f in requested.findings]
        # what approval lets go on, sealed under the tenant's key (the release below opens it)
        assert set(rows[0]["release"]) == {"envelope", "sealed"}
        assert claims == 1

        # an operator works the queue with the CLI (directly in the database: it says so)
        env = {"CAIRN_POSTGRES_DSN": settings.postgres_dsn, "CAIRN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}
        runner = CliRunner()

        def cli(*args: str) -> Any:
            return runner.invoke(cli_app, list(args), env=env)

        listed = await asyncio.to_thread(cli, "reviews", "list", "--json")
        assert listed.exit_code == 0, listed.output
        [item] = [json.loads(line) for line in listed.output.splitlines() if line.startswith("{")]
        assert (item["review_id"], item["request_id"], item["status"]) == (
            requested.review_id,
            rid,
            "pending",
        )
        async with (
            expect_events(kafka_bootstrap, "cairn.reviews", where=of(rid), settle=1.0) as decisions,
            expect_events(kafka_bootstrap, "cairn.screenings", where=of(rid)) as screenings,
        ):
            done = await asyncio.to_thread(cli, "reviews", "decide", requested.review_id, "approve")
            assert done.exit_code == 0, done.output
        who = f"cli:{getpass.getuser()}"
        assert f"approved by {who}" in done.output
        assert f"DIRECTLY IN THE DATABASE as {who}" in done.output  # and it says so loudly
        [decision] = [e for m, e in decisions.events if of(rid)(m, e)]
        assert isinstance(decision, ReviewResolvedV1)
        assert (decision.decision, decision.decided_by) == (ReviewDecision.APPROVE, who)
        [released] = [e for m, e in screenings.events if of(rid)(m, e)]
        assert isinstance(released, InputScreenedV1)  # the request goes on to the model
        again = await asyncio.to_thread(cli, "reviews", "decide", requested.review_id, "reject")
        assert again.exit_code == 1
        assert f"approved by {who}" in again.output
        pending = await asyncio.to_thread(cli, "reviews", "list", "--json")
        assert [line for line in pending.output.splitlines() if line.startswith("{")] == []
        shown = await asyncio.to_thread(cli, "reviews", "show", requested.review_id)
        assert json.loads(shown.output)["resolved_by"] == who


async def test_an_overdue_review_is_decided_by_the_sweeper(
    settings: Settings, upstream: KafkaPublisher, kafka_bootstrap: str, tmp_path: Any
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    for source in (REPO / "infra" / "policies").glob("*.yaml"):
        (folder / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    default = yaml.safe_load((folder / "default.yaml").read_text(encoding="utf-8"))
    quick = {**default, "name": "quick", "review": {"deadline_s": 1, "on_deadline": "reject"}}
    (folder / "quick.yaml").write_text(yaml.safe_dump(quick), encoding="utf-8")
    settings = settings.model_copy(update={"policy_dir": str(folder), "review_sweep_interval_s": 0.5})
    rid = f"late-{uuid.uuid4().hex[:8]}"
    held = context(rid, "I am so pissed off about this").model_copy(update={"tenant": "quick"})
    async with (
        running_service(router, settings, bootstrap.build),
        expect_events(kafka_bootstrap, "cairn.reviews", where=of(rid), count=2) as reviews,
        expect_events(kafka_bootstrap, "cairn.responses", where=of(rid), count=2) as responses,
    ):
        await upstream.publish(held)
    kinds = [type(e).__name__ for m, e in reviews.events if of(rid)(m, e)]
    assert kinds == ["ReviewRequestedV1", "ReviewResolvedV1"]
    decision = reviews.events[-1][1]
    assert (decision.decided_by, decision.by_deadline, decision.decision) == (
        "deadline",
        True,
        ReviewDecision.REJECT,
    )
    statuses = [e.status for m, e in responses.events if of(rid)(m, e)]
    assert statuses == [ResponseStatus.HELD, ResponseStatus.BLOCKED]
