"""Prompt experiments on live traffic: the state of an experiment's sequential test, and its conclusion.

A feedback on a request the prompt store assigned to an experiment re-checks that experiment; when
one variant is significantly better (`online.experiments.decide`), the evaluator records the
conclusion (once: its id derives from tenant, prompt and experiment) and publishes
`cairn.experiment.concluded.v1` on `cairn.experiments`. The prompt store decides what follows
(promote the winner or propose it). A concluded experiment is not tested again under the same name.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cairn_evaluator.deps import Deps, log
from cairn_evaluator.online.conclusions import ExperimentConclusion, conclusion_id
from cairn_evaluator.online.experiments import (
    METRIC,
    TEST,
    ExperimentVerdict,
    TestParameters,
    arm_statistics,
    decide,
)
from cairn_events import ExperimentConcludedV1, VariantStatistics

__all__ = [
    "check_experiment",
    "check_experiment_of",
    "conclusion_event",
    "experiment_verdict",
    "parameters_of",
]


def parameters_of(deps: Deps) -> TestParameters:
    """The test's parameters the settings give."""
    s = deps.settings
    return TestParameters(
        alpha=s.experiment_alpha,
        mixing_variance=s.experiment_mixing_variance,
        min_samples=s.experiment_min_samples,
        positive_rating=s.experiment_positive_rating,
        refusal_margin=s.experiment_refusal_margin,
        groundedness_margin=s.experiment_groundedness_margin,
    )


async def experiment_verdict(deps: Deps, tenant: str, prompt_name: str, experiment: str) -> ExperimentVerdict:
    """The test's state on an experiment now: every arm's statistics and the decision."""
    attributions = await deps.online.experiment_attributions(
        tenant, prompt_name, experiment, deps.settings.experiment_fetch_limit
    )
    ids = [a.request_id for a in attributions]
    responses = await deps.online.responses_for(ids) if ids else []
    feedback = await deps.online.feedback_for(ids) if ids else []
    parameters = parameters_of(deps)
    arms = arm_statistics(attributions, responses, feedback, parameters.positive_rating)
    return decide(experiment, arms, parameters)


def conclusion_event(
    tenant: str, prompt_name: str, verdict: ExperimentVerdict, deps: Deps
) -> ExperimentConcludedV1:
    """The event announcing a verdict whose decision is `winner`."""
    assert verdict.winner is not None
    arms = [
        VariantStatistics(
            variant=a.variant,
            prompt_version=a.prompt_version,
            requests=a.requests,
            observations=a.observations,
            positive_rate=a.positive_rate.value,
            positive_rate_low=a.positive_rate.low,
            positive_rate_high=a.positive_rate.high,
            refusal_rate=a.refusal_rate.value,
            mean_groundedness=a.groundedness.value,
        )
        for a in verdict.arms
    ]
    [winner] = [a for a in verdict.arms if a.variant == verdict.winner]
    return ExperimentConcludedV1(
        conclusion_id=conclusion_id(tenant, prompt_name, verdict.experiment),
        tenant=tenant,
        prompt_name=prompt_name,
        experiment=verdict.experiment,
        winner=verdict.winner,
        winner_prompt_version=winner.prompt_version,
        metric=METRIC,
        test=TEST,
        evidence=round(min(verdict.evidence, 1e300), 4),
        threshold=verdict.threshold,
        alpha=verdict.parameters.alpha,
        min_samples=verdict.parameters.min_samples,
        arms=arms,
        concluded_at=deps.clock(),
    )


async def _publish(deps: Deps, conclusion: ExperimentConclusion) -> None:
    await deps.publisher.publish(conclusion.to_event(), event_id=conclusion.conclusion_id)
    await deps.online.mark_conclusion_published(conclusion.conclusion_id)
    log.info(
        "experiment concluded",
        tenant=conclusion.tenant,
        prompt=conclusion.prompt_name,
        experiment=conclusion.experiment,
        winner=conclusion.winner,
    )


async def check_experiment(
    deps: Deps, tenant: str, prompt_name: str, experiment: str
) -> ExperimentVerdict | None:
    """Test an experiment and announce a winner (recorded first, then published; a conclusion whose
    publication failed is published again on the next check, same id and payload). None when the
    experiment concluded before: it is not tested again."""
    cid = conclusion_id(tenant, prompt_name, experiment)
    known = await deps.online.conclusion(cid)
    if known is not None:
        if not known.published:
            await _publish(deps, known)
        return None
    verdict = await experiment_verdict(deps, tenant, prompt_name, experiment)
    if verdict.winner is None:
        return verdict
    conclusion = ExperimentConclusion.of(conclusion_event(tenant, prompt_name, verdict, deps))
    await deps.online.record_conclusion(conclusion)
    stored = await deps.online.conclusion(cid)  # the first recorded wins, also across replicas
    if stored is not None and not stored.published:
        await _publish(deps, stored)
    return verdict


async def check_experiment_of(deps: Deps, request_id: str) -> ExperimentVerdict | None:
    """Re-check the experiment a request was assigned to (None when it was in none, or it concluded)."""
    found = [a for a in await deps.online.attributions([request_id]) if a.experiment]
    if not found:
        return None
    a = found[-1]
    assert a.experiment is not None
    return await check_experiment(deps, a.tenant, a.prompt_name, a.experiment)


def verdict_json(tenant: str, prompt: str, verdict: ExperimentVerdict) -> dict[str, Any]:
    """The state of an experiment's test as JSON (the CLI's `--json`, the API)."""
    p = verdict.parameters
    return {
        "tenant": tenant,
        "prompt": prompt,
        "experiment": verdict.experiment,
        "metric": METRIC,
        "test": TEST,
        "decision": verdict.decision,
        "reason": verdict.reason,
        "leader": verdict.leader,
        "winner": verdict.winner,
        "evidence": verdict.evidence,
        "threshold": verdict.threshold,
        "parameters": asdict(p),
        "arms": [
            {
                "variant": a.variant,
                "prompt_version": a.prompt_version,
                "requests": a.requests,
                "observations": a.observations,
                "positive_rate": asdict(a.positive_rate),
                "mean_rating": asdict(a.mean_rating),
                "refusal_rate": asdict(a.refusal_rate),
                "groundedness": asdict(a.groundedness),
            }
            for a in verdict.arms
        ],
        "comparisons": [asdict(c) for c in verdict.comparisons],
    }
