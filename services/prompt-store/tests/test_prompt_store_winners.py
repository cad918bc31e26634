"""An experiment's significant winner (`cairn.experiment.concluded.v1`) through the real router:
promoted to the label by policy (recorded on `cairn.admin`), or proposed and accepted by an operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_bus import Dispatcher, InMemoryInbox, InMemoryPublisher, Outcome
from cairn_bus.publisher import OutgoingMessage
from cairn_events import AdminActionRecordedV1, ExperimentConcludedV1
from cairn_prompt_store import management
from cairn_prompt_store.adapters.memory import InMemoryPromptStore
from cairn_prompt_store.app import router
from cairn_prompt_store.bootstrap import Deps, build
from cairn_prompt_store.domain.errors import ExperimentNotFoundError
from cairn_prompt_store.domain.experiments import Experiment, Variant
from cairn_prompt_store.settings import Settings
from cairn_prompt_store.winners import POLICY_ACTOR, accept_proposal
from cairn_testing import schema_examples

from .conftest import NOW, as_record, spec

evaluator = InMemoryPublisher("/cairn/evaluator")


@pytest.fixture
def store() -> InMemoryPromptStore:
    return InMemoryPromptStore(clock=lambda: NOW)


@pytest.fixture
async def deps(store: InMemoryPromptStore) -> AsyncIterator[Deps]:
    publisher = InMemoryPublisher("/cairn/prompt-store", allowed_types=router.published_types)
    async with build(Settings(), publisher, store=store, inbox=InMemoryInbox(), clock=lambda: NOW) as built:
        yield built


@pytest.fixture
def dispatcher(deps: Deps) -> Dispatcher[Deps]:
    return Dispatcher(router, deps, deps.publisher, group_id="cairn-prompt-store", retry_backoff_s=0)


async def greet_experiment(
    store: InMemoryPromptStore, on_winner: str, *, tenant: str = "default"
) -> Experiment:
    """greet:1 (production) and greet:2 (staging); experiment `ab` splits production over both."""
    await management.push(store, spec(), ["production"], by="test", tenant=tenant)
    await management.push(store, spec(description="shorter"), ["staging"], by="test", tenant=tenant)
    experiment = Experiment.model_validate(
        {
            "name": "ab",
            "prompt": "greet",
            "variants": [Variant(name="control", version=1), Variant(name="short", label="staging")],
            "on_winner": on_winner,
        }
    )
    await management.set_experiment(store, experiment, "test", tenant=tenant)
    return experiment


def concluded(winner: str = "short", experiment: str = "ab", tenant: str = "default") -> OutgoingMessage:
    example = schema_examples(ExperimentConcludedV1.event_type)[0].event()
    assert isinstance(example, ExperimentConcludedV1)
    event = example.model_copy(
        update={"tenant": tenant, "prompt_name": "greet", "experiment": experiment, "winner": winner}
    )
    return evaluator.build(event)


def admin_events(deps: Deps) -> list[AdminActionRecordedV1]:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return [m.event for m in deps.publisher.messages if isinstance(m.event, AdminActionRecordedV1)]


async def test_the_promote_policy_moves_the_label_ends_the_experiment_and_records_both(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore
) -> None:
    await greet_experiment(store, "promote")
    message = concluded()
    assert await dispatcher.dispatch(as_record(message)) is Outcome.HANDLED
    assert (await store.labels("greet"))["production"] == 2  # the `short` arm renders staging = 2
    assert await store.experiment("greet") is None
    moved, ended = admin_events(deps)
    assert (moved.action, moved.target, moved.actor) == (
        "prompt.label.moved",
        "prompt:greet@production",
        POLICY_ACTOR,
    )
    assert moved.details["from_version"] == 1
    assert moved.details["to_version"] == 2
    assert moved.details["cause"] == ExperimentConcludedV1.event_type
    assert moved.details["conclusion_id"] == message.event.conclusion_id  # type: ignore[attr-defined]
    assert (ended.action, ended.target, ended.details["variant"]) == (
        "prompt.experiment.cleared",
        "prompt:greet",
        "short",
    )
    assert isinstance(deps.publisher, InMemoryPublisher)
    assert {m.meta.causation_id for m in deps.publisher.messages} == {message.meta.id}
    [history] = [m for m in await store.label_history("greet") if m.moved_by == POLICY_ACTOR]
    assert (history.previous, history.version) == (1, 2)

    # redelivered: nothing moves, nothing more is published
    assert await dispatcher.dispatch(as_record(message, offset=1)) is Outcome.HANDLED
    assert len(admin_events(deps)) == 2


async def test_the_propose_policy_keeps_a_proposal_an_operator_accepts(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore
) -> None:
    await greet_experiment(store, "propose")
    message = concluded()
    assert await dispatcher.dispatch(as_record(message)) is Outcome.HANDLED
    assert await dispatcher.dispatch(as_record(message, offset=1)) is Outcome.HANDLED
    assert admin_events(deps) == []
    assert (await store.labels("greet"))["production"] == 1
    assert await store.experiment("greet") is not None
    [proposal] = await store.proposals(status="open")
    assert (proposal.prompt, proposal.label, proposal.variant, proposal.version) == (
        "greet",
        "production",
        "short",
        2,
    )
    assert "concise: 0.8197 positive [0.7047, 0.8964] of 61" in proposal.summary  # the example's arms

    done = await accept_proposal(store, proposal.conclusion_id[:8], "ana")
    assert (done.move.previous, done.move.version, done.experiment_ended) == (1, 2, True)
    assert done.proposal.status == "accepted"
    assert done.proposal.closed_by == "ana"
    assert (await store.labels("greet"))["production"] == 2
    assert await store.experiment("greet") is None
    with pytest.raises(ExperimentNotFoundError):
        await accept_proposal(store, proposal.conclusion_id, "ana")  # no longer open


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"experiment": "other"}, "a conclusion about an experiment that was replaced"),
        ({"winner": "nobody"}, "a winner that is not an arm"),
        ({"tenant": "acme"}, "another tenant's conclusion on a prompt that tenant does not have"),
    ],
)
async def test_a_conclusion_that_does_not_match_the_running_experiment_changes_nothing(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore, changes: dict[str, Any], why: str
) -> None:
    await greet_experiment(store, "promote", tenant="globex")
    message = concluded(**{"tenant": "globex", **changes})
    assert await dispatcher.dispatch(as_record(message)) is Outcome.HANDLED, why
    assert admin_events(deps) == []
    assert (await store.labels("greet", tenant="globex"))["production"] == 1
    assert await store.experiment("greet", tenant="globex") is not None


async def test_a_tenants_conclusion_on_a_shared_prompt_applies_to_the_shared_experiment(
    dispatcher: Dispatcher[Deps], deps: Deps, store: InMemoryPromptStore
) -> None:
    await greet_experiment(store, "promote")  # shared (`default`) prompt, requests from acme
    assert await dispatcher.dispatch(as_record(concluded(tenant="acme"))) is Outcome.HANDLED
    assert (await store.labels("greet"))["production"] == 2
    assert {e.tenant for e in admin_events(deps)} == {"default"}


async def test_the_schema_example_without_a_running_experiment_is_ignored(
    dispatcher: Dispatcher[Deps], deps: Deps
) -> None:
    for offset, example in enumerate(schema_examples(ExperimentConcludedV1.event_type)):
        message = evaluator.build(example.event())
        assert await dispatcher.dispatch(as_record(message, offset)) is Outcome.HANDLED
    assert admin_events(deps) == []
