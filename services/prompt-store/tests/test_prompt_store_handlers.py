"""The handlers through the service's real router and dispatcher, with in-memory fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_bus import (
    Dispatcher,
    InMemoryInbox,
    InMemoryPublisher,
    Outcome,
    RawRecord,
    TransientError,
    derive_event_id,
)
from cairn_bus.publisher import OutgoingMessage
from cairn_events import (
    CONTENT_TYPE_JSON,
    AdminActionRecordedV1,
    ChatMessage,
    DeadLetterKind,
    DeadLetterRecordedV1,
    ExperimentConcludedV1,
    GenerationParams,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
    RetrievalOptions,
)
from cairn_prompt_store import management
from cairn_prompt_store.adapters.memory import InMemoryPromptStore
from cairn_prompt_store.app import router
from cairn_prompt_store.bootstrap import Deps, build
from cairn_prompt_store.domain.experiments import Experiment, Variant
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.settings import Settings
from cairn_testing import schema_examples

from .conftest import NOW, as_record, request

QUESTION = [ChatMessage(role="user", content="What does yield do?")]
QA_SYSTEM_ON_GENERATORS = (
    "You are a careful assistant for the Python documentation.\n"
    "Answer using only the numbered context passages that follow.\n"
    'Cite each passage you use as [n], where n is its number, for example: "yield makes a generator [2]."\n'
    "If the passages do not contain the answer, say you don't know. Never invent facts, code or citations.\n"
    "The question is about generators.\n"
    "Answer in a few sentences."
)


@pytest.fixture
def store() -> InMemoryPromptStore:
    return InMemoryPromptStore()


@pytest.fixture
async def deps(store: InMemoryPromptStore) -> AsyncIterator[Deps]:
    publisher = InMemoryPublisher("/cairn/prompt-store", allowed_types=router.published_types)
    async with build(Settings(), publisher, store=store, inbox=InMemoryInbox(), clock=lambda: NOW) as built:
        yield built


@pytest.fixture
def dispatcher(deps: Deps) -> Dispatcher[Deps]:
    return Dispatcher(router, deps, deps.publisher, group_id="cairn-prompt-store", retry_backoff_s=0)


@pytest.fixture
async def qa(store: InMemoryPromptStore, qa_spec: PromptSpec) -> PromptSpec:
    """qa:1 (production) and qa:2 (staging) pushed."""
    await management.push(store, qa_spec, ["production"], by="test")
    v2 = qa_spec.model_copy(update={"description": "second"})
    await management.push(store, v2, ["staging"], by="test")
    return qa_spec


upstream = InMemoryPublisher("/cairn/upstream")


def sent(event: RequestSubmittedV1) -> OutgoingMessage:
    return upstream.build(event)


def published(deps: Deps) -> list[OutgoingMessage]:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return deps.publisher.messages


def only_response(deps: Deps) -> ResponseCompletedV1:
    [message] = published(deps)
    assert isinstance(message.event, ResponseCompletedV1)
    return message.event


async def test_a_request_gets_its_rendered_prompt(
    dispatcher: Dispatcher[Deps], deps: Deps, qa: PromptSpec
) -> None:
    message = sent(
        request(
            "qa",
            tenant="acme",
            variables={"topic": "generators"},
            messages=[m.model_dump() for m in QUESTION],
            params={"max_tokens": 100, "temperature": 0.0, "top_p": 1.0, "stop": [], "seed": None},
            model="smol",
        )
    )
    assert await dispatcher.dispatch(as_record(message)) is Outcome.HANDLED
    [out] = published(deps)
    assert out.topic == "cairn.prompts"
    assert out.key == b"req-1"
    assert out.meta.causation_id == message.meta.id
    assert out.meta.correlation_id == "req-1"  # the request's subject
    assert out.meta.id == derive_event_id(message.meta.id, PromptRenderedV1.event_type)
    assert out.event == PromptRenderedV1(
        request_id="req-1",
        tenant="acme",
        prompt_name="qa",
        prompt_version=1,
        prompt_label="production",
        messages=[
            ChatMessage(role="system", content=QA_SYSTEM_ON_GENERATORS),
            ChatMessage(role="user", content="What does yield do?"),
        ],
        retrieval=RetrievalOptions(query="generators: What does yield do?", top_k=4),
        params=GenerationParams(max_tokens=100, temperature=0.0),
        model="smol",
        rendered_at=NOW,
    )


@pytest.mark.parametrize(
    ("prompt", "version", "label"),
    [
        ("qa", 1, "production"),
        ("qa@production", 1, "production"),
        ("qa@staging", 2, "staging"),
        ("qa:2", 2, None),
    ],
)
async def test_the_rendered_event_records_the_version_used(
    dispatcher: Dispatcher[Deps], deps: Deps, qa: PromptSpec, prompt: str, version: int, label: str | None
) -> None:
    await dispatcher.dispatch(as_record(sent(request(prompt, messages=QUESTION))))
    [out] = published(deps)
    assert isinstance(out.event, PromptRenderedV1)
    assert (out.event.prompt_name, out.event.prompt_version, out.event.prompt_label) == ("qa", version, label)


@pytest.mark.parametrize(
    ("prompt", "fields", "reason", "name", "version"),
    [
        ("nope", {}, "unknown prompt 'nope'", None, None),
        ("qa@canary", {}, "prompt 'qa' has no label 'canary' (labels: production, staging)", "qa", None),
        ("qa:9", {}, "prompt 'qa' has no version 9 (latest is 2)", "qa", None),
        ("qa", {}, "prompt qa:1: missing required variable 'question'", "qa", 1),
        (
            "qa",
            {"variables": {"question": "q", "topic": "x" * 201}},
            "prompt qa:1: variable 'topic' is 201 characters long, at most 200 allowed",
            "qa",
            1,
        ),
    ],
)
async def test_requests_that_cannot_be_served_are_rejected_with_a_clear_reason(
    dispatcher: Dispatcher[Deps],
    deps: Deps,
    qa: PromptSpec,
    prompt: str,
    fields: dict[str, Any],
    reason: str,
    name: str | None,
    version: int | None,
) -> None:
    message = sent(request(prompt, request_id="req-9", tenant="acme", **fields))
    assert await dispatcher.dispatch(as_record(message)) is Outcome.HANDLED
    [out] = published(deps)
    assert out.topic == "cairn.responses"
    assert out.meta.causation_id == message.meta.id
    assert out.event == ResponseCompletedV1(
        request_id="req-9",
        tenant="acme",
        status=ResponseStatus.REJECTED,
        reason=reason,
        prompt_name=name,
        prompt_version=version,
        completed_at=NOW,
    )


async def test_a_template_error_is_a_rejection_not_a_crash(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore
) -> None:
    evil = PromptSpec.model_validate(
        {"name": "evil", "messages": [{"role": "user", "content": "{{ ''.__class__.__mro__ }}"}]}
    )
    await store.push(evil, "test")  # stored behind the push checks, which pass it: it parses
    await store.move_label("evil", "production", 1, "test")
    await dispatcher.dispatch(as_record(sent(request("evil"))))
    response = only_response(deps)
    assert response.status is ResponseStatus.REJECTED
    assert response.reason == (
        "prompt evil:1: template error in message 1 (user): access to attribute '__class__' of 'str' object is unsafe."
    )
    assert (response.prompt_name, response.prompt_version) == ("evil", 1)


async def test_the_same_request_delivered_twice_is_answered_once(
    dispatcher: Dispatcher[Deps], deps: Deps, qa: PromptSpec
) -> None:
    record = as_record(sent(request("qa", messages=QUESTION)))
    assert await dispatcher.dispatch(record) is Outcome.HANDLED
    assert await dispatcher.dispatch(record) is Outcome.HANDLED
    assert len(published(deps)) == 1


async def test_a_rejected_request_delivered_twice_is_rejected_once(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore, qa_spec: PromptSpec
) -> None:
    record = as_record(sent(request("qa", messages=QUESTION)))
    await dispatcher.dispatch(record)
    await management.push(store, qa_spec, ["production"], by="test")  # too late for this request
    await dispatcher.dispatch(record)
    assert only_response(deps).reason == "unknown prompt 'qa'"


async def test_a_store_outage_is_retried_not_rejected(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore, qa: PromptSpec
) -> None:
    record = as_record(sent(request("qa", messages=QUESTION)))
    store.fail_with = TransientError("database unavailable")
    with pytest.raises(TransientError):
        await dispatcher.dispatch(record)
    store.fail_with = ConnectionRefusedError("refused")
    with pytest.raises(ConnectionRefusedError):
        await dispatcher.dispatch(record)
    assert published(deps) == []  # neither rejected nor dead-lettered
    store.fail_with = None
    assert await dispatcher.dispatch(record) is Outcome.HANDLED  # the claim was given back
    [out] = published(deps)
    assert isinstance(out.event, PromptRenderedV1)


async def test_a_failed_publish_gives_the_claim_back(deps: Deps, qa: PromptSpec) -> None:
    class FlakyPublisher(InMemoryPublisher):
        fail = True

        async def send(self, message: OutgoingMessage) -> None:
            if self.fail:
                raise ConnectionError("broker down")
            await super().send(message)

    flaky = FlakyPublisher("/cairn/prompt-store", allowed_types=router.published_types)
    deps.publisher = flaky
    dispatcher = Dispatcher(router, deps, flaky, group_id="cairn-prompt-store", retry_backoff_s=0)
    record = as_record(sent(request("qa", messages=QUESTION)))
    with pytest.raises(ConnectionError):
        await dispatcher.dispatch(record)
    flaky.fail = False
    await dispatcher.dispatch(record)
    assert [m.meta.type for m in flaky.messages] == [PromptRenderedV1.event_type]


async def test_experiments_choose_sticky_variants_and_are_recorded(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore, qa: PromptSpec
) -> None:
    experiment = Experiment(
        name="v1-vs-v2",
        prompt="qa",
        variants=[Variant(name="control", label="production"), Variant(name="new", version=2)],
    )
    await management.set_experiment(store, experiment, "test")
    seen: dict[str, set[tuple[int, str | None, str | None]]] = {}
    offset = 0
    for user in [f"user-{i}" for i in range(12)]:
        for n in range(2):
            offset += 1
            event = request("qa", request_id=f"r-{user}-{n}", user_id=user, messages=QUESTION)
            await dispatcher.dispatch(as_record(sent(event), offset))
            out = published(deps)[-1].event
            assert isinstance(out, PromptRenderedV1)
            assert out.experiment == "v1-vs-v2"
            seen.setdefault(user, set()).add((out.prompt_version, out.variant, out.prompt_label))
    assert all(len(choices) == 1 for choices in seen.values())  # sticky per user
    assigned = {next(iter(c)) for c in seen.values()}
    assert assigned == {(1, "control", "production"), (2, "new", "production")}
    for user, choices in seen.items():
        assert next(iter(choices))[1] == experiment.assign(user).name
    # pinned versions and other labels bypass the experiment
    await dispatcher.dispatch(as_record(sent(request("qa:1", request_id="pinned", messages=QUESTION)), 999))
    pinned = published(deps)[-1].event
    assert isinstance(pinned, PromptRenderedV1)
    assert (pinned.experiment, pinned.variant, pinned.prompt_version) == (None, None, 1)


async def test_without_a_user_the_request_id_decides_the_variant(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore, qa: PromptSpec
) -> None:
    experiment = Experiment(
        name="split", prompt="qa", variants=[Variant(name="a", version=1), Variant(name="b", version=2)]
    )
    await management.set_experiment(store, experiment, "test")
    for i in range(10):
        await dispatcher.dispatch(as_record(sent(request("qa", request_id=f"req-{i}", messages=QUESTION)), i))
        out = published(deps)[-1].event
        assert isinstance(out, PromptRenderedV1)
        assert out.variant == experiment.assign(f"req-{i}").name


async def test_an_experiment_arm_that_no_longer_resolves_rejects_clearly(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore, qa: PromptSpec
) -> None:
    broken = Experiment(name="gone", prompt="qa", variants=[Variant(name="ghost", label="canary")])
    await store.set_experiment(broken, "test")  # behind management's checks
    await dispatcher.dispatch(as_record(sent(request("qa", messages=QUESTION))))
    assert only_response(deps).reason == (
        "experiment 'gone' variant 'ghost': prompt 'qa' has no label 'canary' (labels: production, staging)"
    )


async def test_schema_example_requests_end_in_exactly_one_event(
    dispatcher: Dispatcher[Deps], deps: Deps
) -> None:
    examples = schema_examples(RequestSubmittedV1.event_type)
    assert len(examples) == 2
    for offset, example in enumerate(examples):
        await dispatcher.dispatch(as_record(sent(example.event()), offset))  # type: ignore[arg-type]
    assert [m.meta.type for m in published(deps)] == [ResponseCompletedV1.event_type] * 2
    assert {m.event.reason for m in published(deps)} == {"unknown prompt 'qa'"}  # type: ignore[union-attr]


# ---------------------------------------------------------------- dead letters


def raw(
    value: bytes | None, offset: int = 7, headers: list[tuple[str, bytes | None]] | None = None
) -> RawRecord:
    good = sent(request("qa")).headers
    return RawRecord("cairn.requests", 2, offset, value, b"k", headers if headers is not None else list(good))


async def test_an_unreadable_request_with_a_readable_id_is_rejected(
    dispatcher: Dispatcher[Deps], deps: Deps
) -> None:
    record = raw(b'{"request_id": "req-42", "tenant": "acme", "prompt": 5}')
    assert await dispatcher.dispatch(record) is Outcome.DEADLETTERED
    dead, response = published(deps)
    assert dead.meta.type == DeadLetterRecordedV1.event_type
    assert isinstance(dead.event, DeadLetterRecordedV1)
    assert isinstance(response.event, ResponseCompletedV1)
    assert response.event.request_id == "req-42"
    assert response.event.tenant == "acme"
    assert response.event.status is ResponseStatus.REJECTED
    assert response.event.reason == f"schema_invalid: {dead.event.reason}"
    assert "prompt" in dead.event.reason
    assert response.meta.id == derive_event_id(
        "cairn.requests/2/7", ResponseCompletedV1.event_type, router.service
    )
    assert response.meta.correlation_id == "req-42"
    assert response.key == b"req-42"


async def test_the_dead_letter_rejection_is_the_same_event_when_redelivered(
    dispatcher: Dispatcher[Deps], deps: Deps
) -> None:
    record = raw(b'{"request_id": "req-42", "prompt": "qa"}')  # no submitted_at
    await dispatcher.dispatch(record)
    await dispatcher.dispatch(record)
    responses = [m for m in published(deps) if m.meta.type == ResponseCompletedV1.event_type]
    assert len(responses) == 2
    assert responses[0].meta.id == responses[1].meta.id
    assert responses[0].value == responses[1].value
    other = raw(b'{"request_id": "req-42", "prompt": "qa"}', offset=8)
    await dispatcher.dispatch(other)
    assert published(deps)[-1].meta.id != responses[0].meta.id


@pytest.mark.parametrize(
    ("value", "headers", "kind", "tenant"),
    [
        (
            b'{"request_id": "req-5", "tenant": "", "prompt": "qa"}',
            None,
            DeadLetterKind.SCHEMA_INVALID,
            "default",
        ),
        (b'{"request_id": "req-5", "tenant": 3}', [], DeadLetterKind.MISSING_HEADERS, "default"),
        (b'{"request_id": "req-5"', None, None, None),
        (b"\xff\xfe not json", None, None, None),
        (b'["req-5"]', None, None, None),
        (b'{"request_id": "has space"}', None, None, None),
        (b'{"request_id": 5}', None, None, None),
        (b"", None, None, None),
    ],
)
async def test_dead_letters_are_answered_only_when_they_name_a_request(
    dispatcher: Dispatcher[Deps],
    deps: Deps,
    value: bytes,
    headers: list[tuple[str, bytes | None]] | None,
    kind: DeadLetterKind | None,
    tenant: str | None,
) -> None:
    assert await dispatcher.dispatch(raw(value, headers=headers)) is Outcome.DEADLETTERED
    types = [m.meta.type for m in published(deps)]
    if kind is None:
        assert types == [DeadLetterRecordedV1.event_type]
        return
    assert types == [DeadLetterRecordedV1.event_type, ResponseCompletedV1.event_type]
    response = published(deps)[-1].event
    assert isinstance(response, ResponseCompletedV1)
    assert (response.request_id, response.tenant, response.status) == (
        "req-5",
        tenant,
        ResponseStatus.REJECTED,
    )
    assert response.reason is not None
    assert response.reason.startswith(f"{kind.value}: ")


async def test_a_request_whose_handling_keeps_failing_ends_as_failed(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore, qa: PromptSpec
) -> None:
    store.fail_with = RuntimeError("bug")
    message = sent(request("qa", request_id="req-bug", tenant="acme", messages=QUESTION))
    assert await dispatcher.dispatch(as_record(message)) is Outcome.DEADLETTERED
    dead, response = published(deps)
    assert dead.meta.type == DeadLetterRecordedV1.event_type
    assert isinstance(response.event, ResponseCompletedV1)
    assert (response.event.request_id, response.event.tenant) == ("req-bug", "acme")
    assert response.event.status is ResponseStatus.FAILED
    assert response.event.reason == "handler_failed: handler failed after 3 attempts: RuntimeError('bug')"


async def test_dead_letters_of_other_topics_are_not_answered(deps: Deps) -> None:
    record = RawRecord("cairn.prompts", 0, 1, b'{"request_id": "req-1"}', None, [])
    assert router.dead_letter_hook is not None
    await router.dead_letter_hook(record, DeadLetterKind.NOT_JSON, "x", deps)
    assert published(deps) == []


def test_the_router_consumes_requests_and_declares_what_it_publishes() -> None:
    assert router.service == "prompt-store"
    assert router.consumes() == {
        ("cairn.requests", RequestSubmittedV1.event_type),
        ("cairn.experiments", ExperimentConcludedV1.event_type),  # experiment winners to promote
    }
    assert router.produces() == {
        ("cairn.prompts", PromptRenderedV1.event_type),
        ("cairn.responses", ResponseCompletedV1.event_type),
        ("cairn.deadletter", DeadLetterRecordedV1.event_type),
        ("cairn.admin", AdminActionRecordedV1.event_type),  # the management API's label moves, experiments
    }
    assert router.dead_letter_hook is not None
    assert CONTENT_TYPE_JSON == "application/json"


async def test_a_replayed_request_is_answered_on_the_shadow_topic_and_counted_apart(
    dispatcher: Dispatcher[Deps], deps: Deps
) -> None:
    from cairn_observability.metrics import REPLAY_REQUESTS, REQUESTS
    from cairn_observability.request_metrics import UNKNOWN_PROMPT

    live = REQUESTS.labels("rejected", "acme", UNKNOWN_PROMPT)  # an unknown prompt: no name resolved
    replayed = REPLAY_REQUESTS.labels("rejected", "acme", UNKNOWN_PROMPT)
    before = (live._value.get(), replayed._value.get())
    original = sent(request("nope", request_id="req-live", tenant="acme"))
    shadow = upstream.build(
        request("nope", request_id="req-live.r-1", tenant="acme"),
        cause=original.meta,
        replay_id="replay-1",
        replay_of=original.meta.id,
    )
    assert await dispatcher.dispatch(as_record(shadow)) is Outcome.HANDLED
    [out] = published(deps)
    assert out.topic == "cairn.responses.shadow"  # upstream's cairn.responses never sees it
    assert out.meta.replay_id == "replay-1"
    assert (live._value.get(), replayed._value.get()) == (before[0], before[1] + 1)
