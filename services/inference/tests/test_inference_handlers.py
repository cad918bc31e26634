"""The handler through the service's real router and dispatcher, with a fake backend and in-memory bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from cairn_bus import Dispatcher, InMemoryInbox, InMemoryPublisher, Outcome, RawRecord, derive_event_id
from cairn_bus.publisher import OutgoingMessage
from cairn_events import (
    AdminActionRecordedV1,
    CompletionGeneratedV1,
    InputScreenedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    ResponseCompletedV1,
    ResponseStatus,
    TokenUsage,
    Verdict,
)
from cairn_inference.app import router
from cairn_inference.bootstrap import Deps, build
from cairn_inference.domain.completion import BackendUnavailableError, ModelError
from cairn_inference.domain.registry import RegistryView
from cairn_inference.settings import Settings

from .conftest import FakeBackend, screened


class Harness:
    """The inference service's dispatcher over an in-memory bus: deliver events, read what came out."""

    def __init__(self, deps: Deps, upstream: InMemoryPublisher) -> None:
        self.deps = deps
        self.upstream = upstream
        self.dispatcher = Dispatcher(
            router, deps, deps.publisher, group_id="cairn-inference", retry_backoff_s=0
        )
        self.offset = 0

    def message(self, event: InputScreenedV1) -> OutgoingMessage:
        return self.upstream.build(event)

    async def deliver(self, message: OutgoingMessage) -> Outcome:
        self.offset += 1
        record = RawRecord(
            message.topic, 0, self.offset, message.value, message.key, list(message.headers), 1
        )
        return await self.dispatcher.dispatch(record)

    @property
    def published(self) -> InMemoryPublisher:
        assert isinstance(self.deps.publisher, InMemoryPublisher)
        return self.deps.publisher

    def completions(self) -> list[CompletionGeneratedV1]:
        return [
            e
            for e in self.published.events(CompletionGeneratedV1.event_type)
            if isinstance(e, CompletionGeneratedV1)
        ]

    def responses(self) -> list[ResponseCompletedV1]:
        return [
            e
            for e in self.published.events(ResponseCompletedV1.event_type)
            if isinstance(e, ResponseCompletedV1)
        ]


def settings(**changes: object) -> Settings:
    return Settings(generation_timeout_s=5, **changes)  # type: ignore[arg-type]


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@asynccontextmanager
async def harnessed(settings: Settings, backend: FakeBackend, **deps: Any) -> AsyncIterator[Harness]:
    """A Harness on the service's `build` with an in-memory inbox and registry; `deps` as `build` takes
    them (cache, ledger, prices, embedder, ...)."""
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    async with build(
        settings, publisher, backend=backend, inbox=InMemoryInbox(), registry=RegistryView(), **deps
    ) as built:
        yield Harness(built, InMemoryPublisher("/cairn/safety"))


@pytest.fixture
async def harness(backend: FakeBackend) -> AsyncIterator[Harness]:
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    async with build(
        settings(), publisher, backend=backend, inbox=InMemoryInbox(), registry=RegistryView()
    ) as deps:
        yield Harness(deps, InMemoryPublisher("/cairn/safety"))


def test_the_router_consumes_screenings_models_and_erasures_and_publishes_completions_and_responses() -> None:
    assert sorted(router.topics) == ["cairn.admin", "cairn.models", "cairn.screenings"]
    assert router.consumed_types == {
        InputScreenedV1.event_type,
        ModelRegisteredV1.event_type,
        ModelPromotedV1.event_type,
        AdminActionRecordedV1.event_type,
    }
    assert {CompletionGeneratedV1.event_type, ResponseCompletedV1.event_type} <= router.published_types


@pytest.mark.parametrize("verdict", [Verdict.ALLOW, Verdict.REDACT])
async def test_allowed_and_redacted_input_gets_a_completion(
    harness: Harness, backend: FakeBackend, verdict: Verdict
) -> None:
    event = screened(verdict=verdict.value, model=None)
    message = harness.message(event)
    assert await harness.deliver(message) is Outcome.HANDLED
    (messages, params, model, adapter) = backend.calls[0]
    assert messages == list(event.messages)
    assert params == event.params
    assert model == "SmolLM2-135M-Instruct"  # no model asked for: the default
    assert adapter is None
    (completion,) = harness.completions()
    assert completion.text == "Refunds take 5 business days."
    assert completion.usage == TokenUsage(input_tokens=42, output_tokens=7)
    assert (completion.latency_ms, completion.time_to_first_token_ms) == (12.5, 3.25)
    assert (completion.model, completion.model_version, completion.adapter, completion.backend) == (
        "SmolLM2-135M-Instruct",
        None,  # the base model outside the registry: no version, whatever the backend says
        None,
        "fake",
    )
    assert completion.chunks == event.chunks
    assert (completion.prompt_name, completion.prompt_version) == (event.prompt_name, event.prompt_version)
    assert (completion.request_id, completion.tenant) == (event.request_id, event.tenant)
    (out,) = harness.published.messages
    assert out.meta.id == derive_event_id(message.meta.id, CompletionGeneratedV1.event_type, "")
    assert out.meta.causation_id == message.meta.id
    assert out.meta.subject == event.request_id
    assert harness.responses() == []


async def test_the_base_model_asked_for_by_name_is_used(harness: Harness, backend: FakeBackend) -> None:
    await harness.deliver(harness.message(screened(model="SmolLM2-135M-Instruct")))
    assert backend.calls[0][2:] == ("SmolLM2-135M-Instruct", None)
    (completion,) = harness.completions()
    assert (completion.model, completion.model_version, completion.adapter) == (
        "SmolLM2-135M-Instruct",
        None,
        None,
    )


async def test_a_model_reference_that_names_nothing_fails_naming_it(
    harness: Harness, backend: FakeBackend
) -> None:
    await harness.deliver(harness.message(screened(model="support-bot")))
    assert backend.calls == []
    (response,) = harness.responses()
    assert response.status is ResponseStatus.FAILED
    assert response.reason is not None
    assert "'support-bot'" in response.reason
    assert "SmolLM2-135M-Instruct (base)" in response.reason
    assert response.model is None


@pytest.mark.parametrize("verdict", [Verdict.BLOCK, Verdict.REVIEW])
async def test_blocked_or_reviewed_input_is_left_to_safety(
    harness: Harness, backend: FakeBackend, verdict: Verdict
) -> None:
    assert await harness.deliver(harness.message(screened(verdict=verdict.value))) is Outcome.HANDLED
    assert backend.calls == []
    assert harness.published.messages == []


async def test_the_same_input_delivered_twice_gets_one_completion(
    harness: Harness, backend: FakeBackend
) -> None:
    message = harness.message(screened(model=None))
    await harness.deliver(message)
    await harness.deliver(message)
    assert len(backend.calls) == 1
    assert len(harness.completions()) == 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ModelError("prompt too long"), "model error: prompt too long"),
        (
            BackendUnavailableError("cannot reach SGLang"),
            "inference backend unavailable: cannot reach SGLang",
        ),
        (RuntimeError("CUDA error"), "model error: RuntimeError: CUDA error"),
    ],
)
async def test_a_failing_backend_answers_with_a_failed_response(
    harness: Harness, backend: FakeBackend, error: Exception, reason: str
) -> None:
    backend.error = error
    event = screened(model=None)
    message = harness.message(event)
    assert await harness.deliver(message) is Outcome.HANDLED
    assert harness.completions() == []
    (response,) = harness.responses()
    assert response.status is ResponseStatus.FAILED
    assert response.reason == reason
    assert (response.request_id, response.tenant, response.model) == (
        event.request_id,
        event.tenant,
        "SmolLM2-135M-Instruct",
    )
    assert (response.prompt_name, response.prompt_version) == (event.prompt_name, event.prompt_version)
    assert harness.published.messages[0].meta.causation_id == message.meta.id
    await harness.deliver(message)  # redelivered: already answered
    assert len(harness.responses()) == 1
    assert len(backend.calls) == 1


async def test_a_generation_past_the_timeout_is_abandoned_and_fails_the_request(backend: FakeBackend) -> None:
    backend.delay = 30
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    async with build(
        Settings(generation_timeout_s=0.05),
        publisher,
        backend=backend,
        inbox=InMemoryInbox(),
        registry=RegistryView(),
    ) as deps:
        harness = Harness(deps, InMemoryPublisher("/cairn/safety"))
        await harness.deliver(harness.message(screened(model=None)))
    (response,) = harness.responses()
    assert response.status is ResponseStatus.FAILED
    assert response.reason == "generation timed out after 0.05 s"
    assert backend.cancelled == 1


class FlakyPublisher(InMemoryPublisher):
    """Fails its first `failures` sends, like a broker that is briefly away."""

    def __init__(self, failures: int) -> None:
        super().__init__("/cairn/inference", allowed_types=router.published_types)
        self.failures = failures

    async def send(self, message: OutgoingMessage) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker away")
        await super().send(message)


async def test_a_completion_that_could_not_be_published_is_retried_not_lost(backend: FakeBackend) -> None:
    publisher = FlakyPublisher(failures=1)
    async with build(
        settings(), publisher, backend=backend, inbox=InMemoryInbox(), registry=RegistryView()
    ) as deps:
        harness = Harness(deps, InMemoryPublisher("/cairn/safety"))
        assert (
            await harness.deliver(harness.message(screened(model=None))) is Outcome.HANDLED
        )  # second attempt worked
    assert len(backend.calls) == 2
    assert len(harness.completions()) == 1


async def test_a_backend_built_by_bootstrap_is_closed_and_one_passed_in_is_not(backend: FakeBackend) -> None:
    async with build(settings(), InMemoryPublisher(), backend=backend, registry=RegistryView()) as deps:
        assert isinstance(deps.inbox, InMemoryInbox)
        assert deps.adapters is None
    assert backend.closed is False
