"""The prompt store's handlers: render each request's prompt, or end the request with a rejection;
promote or propose the significant winner of an experiment."""

from __future__ import annotations

from datetime import datetime

from cairn_bus import EventMeta
from cairn_bus.salvage import SalvagedRequest
from cairn_events import (
    DeadLetterKind,
    ExperimentConcludedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
)
from cairn_observability import get_logger, record_request_outcome, request_started
from cairn_prompt_store.bootstrap import Deps
from cairn_prompt_store.rendering import answer
from cairn_prompt_store.winners import POLICY_ACTOR, decide_on_winner, promotion_events, proposal_of

CONSUMER = "prompt-store.request-submitted"
"""The inbox consumer name of `on_request_submitted`."""
WINNERS = "prompt-store.experiment-concluded"
"""The inbox consumer name of `on_experiment_concluded`."""

log = get_logger("cairn.prompt_store")


async def on_request_submitted(event: RequestSubmittedV1, meta: EventMeta, deps: Deps) -> None:
    """Publish the rendered prompt, or a `rejected` response saying why; once per request event.

    The inbox claim and the publication share a transaction: a publish that fails undoes the claim
    and the redelivery tries again; a claim already held means the answer went out before. A storage
    outage raises (transient): the request is retried, never rejected for it.
    """
    async with deps.inbox.once(CONSUMER, meta.id) as claim:
        if not claim:
            log.info("request already answered", request_id=event.request_id)
            return
        outcome = await answer(deps.store, event, deps.clock())
        if isinstance(outcome, ResponseCompletedV1):
            log.info("request rejected", request_id=event.request_id, reason=outcome.reason)
        # the trace context of what is published says when the request was submitted, so the
        # service answering it last can observe its whole duration
        with request_started(event.submitted_at):
            await deps.publisher.publish(outcome, cause=meta)
    if isinstance(outcome, ResponseCompletedV1):
        _count(outcome, event.submitted_at, replay=meta.replay_id is not None)


async def on_experiment_concluded(event: ExperimentConcludedV1, meta: EventMeta, deps: Deps) -> None:
    """Apply the experiment's `on_winner` policy to a significant winner, once per conclusion.

    `promote`: the label move and the experiment's end are published on `cairn.admin` (ids fixed by
    this event) before they are made, so a failure in between is retried by the redelivery and the
    trail never misses a change that was made. `propose`: a proposal is kept for an operator. A
    conclusion about an experiment that no longer runs changes nothing.
    """
    async with deps.inbox.once(WINNERS, meta.id) as claim:
        if not claim:
            return
        decision = await decide_on_winner(deps.store, event)
        log.info(
            "experiment concluded",
            prompt=event.prompt_name,
            experiment=event.experiment,
            winner=event.winner,
            action=decision.action,
            reason=decision.reason,
        )
        if decision.action == "propose":
            await deps.store.propose_winner(proposal_of(decision, event), tenant=decision.tenant)
        if decision.action != "promote" or decision.experiment is None or decision.version is None:
            return
        for action in promotion_events(decision, event, deps.clock()):
            await deps.publisher.publish(action, cause=meta, discriminator=action.action)
        experiment = decision.experiment
        await deps.store.move_label(
            experiment.prompt, experiment.label, decision.version, POLICY_ACTOR, tenant=decision.tenant
        )
        await deps.store.clear_experiment(experiment.prompt, tenant=decision.tenant)


def _count(response: ResponseCompletedV1, submitted_at: datetime | None, *, replay: bool = False) -> None:
    """`cairn_requests_total` and `cairn_request_duration_seconds` for a request ended here (a replay or
    shadow request: `cairn_replay_requests_total` only)."""
    record_request_outcome(
        response.status.value,
        response.tenant,
        response.prompt_name,
        response.completed_at,
        started_at=submitted_at,
        replay=replay,
    )


def answer_dead_lettered_request(
    found: SalvagedRequest, kind: DeadLetterKind, reason: str, deps: Deps
) -> ResponseCompletedV1 | None:
    """The response that ends a request whose record was dead-lettered (see
    `EventRouter.answer_dead_lettered`): `failed` when its handling kept failing, else `rejected`
    (the record could not be read), with the dead-letter reason. None (no answer) unless the record's
    own payload names the request: an id read only from its headers or key is not answered."""
    if not found.named_in_payload:
        return None
    status = ResponseStatus.FAILED if kind is DeadLetterKind.HANDLER_FAILED else ResponseStatus.REJECTED
    response = ResponseCompletedV1(
        request_id=found.request_id,
        tenant=found.tenant,
        status=status,
        reason=f"{kind.value}: {reason}",
        completed_at=deps.clock(),
    )
    _count(response, None)  # unreadable: its submitted_at is not known
    return response
