"""What the prompt store does with an experiment's significant winner (`cairn.experiment.concluded.v1`
from the evaluator): promote it or propose it, as the experiment's `on_winner` policy says.

`promote` points the experiment's label at the winner's version and ends the experiment; both are
published on `cairn.admin` as actions of the policy actor, with the conclusion as their cause.
`propose` keeps a proposal an operator accepts (`cairn prompts experiments accept`) or dismisses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cairn_auth import admin_action
from cairn_bus import derive_event_id
from cairn_events import AdminActionRecordedV1, ExperimentConcludedV1, JsonScalar
from cairn_prompt_store.domain.errors import ExperimentNotFoundError
from cairn_prompt_store.domain.experiments import Experiment
from cairn_prompt_store.domain.proposals import WinnerProposal
from cairn_prompt_store.domain.records import LabelMove
from cairn_prompt_store.domain.tenants import SHARED_TENANT
from cairn_prompt_store.management import EXPERIMENT_CLEARED, label_moved
from cairn_prompt_store.ports import PromptStore

__all__ = [
    "POLICY_ACTOR",
    "Accepted",
    "Decision",
    "accept_proposal",
    "decide_on_winner",
    "promotion_events",
    "proposal_of",
]

POLICY_ACTOR = "policy:experiment-winner"
"""The actor of label moves and experiment ends made by the `promote` policy."""


@dataclass(frozen=True)
class Decision:
    """What a conclusion leads to: `promote` or `propose` the winner's `version`, or `ignore` (why)."""

    action: str
    reason: str
    tenant: str = SHARED_TENANT
    experiment: Experiment | None = None
    version: int | None = None
    previous: int | None = None
    """Where the experiment's label pointed before."""


async def _winner_version(store: PromptStore, experiment: Experiment, winner: str, tenant: str) -> int | None:
    variant = next((v for v in experiment.variants if v.name == winner), None)
    if variant is None:
        return None
    if variant.version is not None:
        return variant.version
    return (await store.labels(experiment.prompt, tenant=tenant)).get(variant.label or "")


async def decide_on_winner(store: PromptStore, event: ExperimentConcludedV1) -> Decision:
    """The running experiment the conclusion is about (in the event's tenant, else the shared
    prompts, as requests resolve), and what its policy says to do. A conclusion about an experiment
    that no longer runs (stopped, replaced, already promoted) or a winner that is not one of its arms
    is ignored."""
    for tenant in dict.fromkeys((event.tenant, SHARED_TENANT)):
        experiment = await store.experiment(event.prompt_name, tenant=tenant)
        if experiment is None or experiment.name != event.experiment:
            continue
        version = await _winner_version(store, experiment, event.winner, tenant)
        if version is None:
            return Decision("ignore", f"winner {event.winner!r} is not an arm that resolves", tenant)
        previous = (await store.labels(experiment.prompt, tenant=tenant)).get(experiment.label)
        return Decision(experiment.on_winner, "policy", tenant, experiment, version, previous)
    return Decision("ignore", f"experiment {event.experiment!r} no longer runs on {event.prompt_name!r}")


def _cause(event: ExperimentConcludedV1) -> dict[str, JsonScalar]:
    return {
        "cause": ExperimentConcludedV1.event_type,
        "conclusion_id": event.conclusion_id,
        "experiment": event.experiment,
        "variant": event.winner,
        "metric": event.metric,
        "evidence": event.evidence,
        "threshold": event.threshold,
    }


def promotion_events(
    decision: Decision, event: ExperimentConcludedV1, at: datetime
) -> list[AdminActionRecordedV1]:
    """The admin actions of a `promote` decision: the label move (unless the label already points at
    the winner) and the experiment's end, by the policy actor, with ids fixed by the conclusion."""
    experiment, version = decision.experiment, decision.version
    assert experiment is not None
    assert version is not None
    events: list[AdminActionRecordedV1] = []
    move = LabelMove(experiment.prompt, experiment.label, version, decision.previous, POLICY_ACTOR, at)
    moved = label_moved(POLICY_ACTOR, move, tenant=decision.tenant)
    if moved is not None:
        events.append(moved.model_copy(update={"details": {**moved.details, **_cause(event)}}))
    events.append(
        admin_action(
            POLICY_ACTOR,
            EXPERIMENT_CLEARED,
            f"prompt:{experiment.prompt}",
            tenant=decision.tenant,
            details=_cause(event),
            at=at,
        )
    )
    return [
        e.model_copy(update={"action_id": "act-" + derive_event_id(event.conclusion_id, e.action)[:32]})
        for e in events
    ]


def proposal_of(decision: Decision, event: ExperimentConcludedV1) -> WinnerProposal:
    """The proposal a `propose` decision keeps."""
    experiment, version = decision.experiment, decision.version
    assert experiment is not None
    assert version is not None
    summary = "; ".join(
        f"{a.variant}: {a.positive_rate if a.positive_rate is not None else '-'} positive "
        f"[{a.positive_rate_low}, {a.positive_rate_high}] of {a.observations}"
        for a in event.arms
    )
    return WinnerProposal(
        conclusion_id=event.conclusion_id,
        prompt=experiment.prompt,
        experiment=experiment.name,
        label=experiment.label,
        variant=event.winner,
        version=version,
        evidence=event.evidence,
        summary=summary,
        proposed_at=event.concluded_at,
    )


@dataclass(frozen=True)
class Accepted:
    """An accepted proposal: the label move made and whether the experiment was ended."""

    proposal: WinnerProposal
    move: LabelMove
    experiment_ended: bool


async def accept_proposal(
    store: PromptStore, conclusion_id: str, by: str, *, tenant: str = SHARED_TENANT
) -> Accepted:
    """Accept an open proposal: point its label at the winner's version and end the experiment (when
    it still runs under the proposal's name). Raises ExperimentNotFoundError when no open proposal
    has that id (or a unique prefix of it)."""
    open_ = [
        p
        for p in await store.proposals(tenant=tenant, status="open")
        if p.conclusion_id.startswith(conclusion_id)
    ]
    if len(open_) != 1:
        raise ExperimentNotFoundError(f"no single open proposal {conclusion_id!r} in tenant {tenant!r}")
    proposal = open_[0]
    move = await store.move_label(proposal.prompt, proposal.label, proposal.version, by, tenant=tenant)
    running = await store.experiment(proposal.prompt, tenant=tenant)
    ended = running is not None and running.name == proposal.experiment
    if ended:
        await store.clear_experiment(proposal.prompt, tenant=tenant)
    closed = await store.close_proposal(proposal.conclusion_id, "accepted", by, tenant=tenant)
    return Accepted(closed or proposal, move, ended)
