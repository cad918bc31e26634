"""Starting an evaluation run: the suites' cases become requests to the candidate and the baseline."""

from __future__ import annotations

from datetime import timedelta

from cairn_bus import EventMeta, derive_event_id
from cairn_evaluator.adapters.heldout import read_heldout
from cairn_evaluator.completion import finish_if_complete
from cairn_evaluator.deps import Deps, log
from cairn_evaluator.domain.registry import ModelVersion, version_at
from cairn_evaluator.domain.runs import (
    Run,
    RunCase,
    RunPurpose,
    Side,
    SuiteSpec,
    request_id_for,
    run_id_for,
)
from cairn_evaluator.domain.suites import EvalCase, Suite, heldout_suite
from cairn_events import (
    ChatMessage,
    GenerationParams,
    ModelStage,
    RequestSubmittedV1,
    RetrievalOptions,
)

EVALUATOR_USER = "cairn-evaluator"


async def suites_for(deps: Deps, candidate: ModelVersion) -> list[Suite]:
    """The configured suites, plus the held-out suite of the candidate's dataset version, if tuned."""
    return await suites_with_heldout(deps, candidate.dataset_id, candidate.dataset_version)


async def suites_with_heldout(deps: Deps, dataset_id: str | None, dataset_version: int | None) -> list[Suite]:
    """The configured suites, plus the held-out suite of that dataset version, when one is named."""
    suites = deps.suites.load()
    s = deps.settings
    if dataset_id and dataset_version:
        rows = await read_heldout(
            deps.objects, s.s3_bucket, dataset_id, dataset_version, deps.dataset_keyring
        )
        suites.append(
            heldout_suite(
                rows[: s.heldout_max_cases],
                max_tokens=s.heldout_max_tokens,
                min_f1=s.heldout_min_f1,
                min_improvement=s.heldout_min_improvement,
                max_facet_regression=s.heldout_max_facet_regression,
                min_facet_cases=s.heldout_min_facet_cases,
            )
        )
    return suites


def request_for(run: Run, case: RunCase, suite: SuiteSpec, version: int, tenant: str) -> RequestSubmittedV1:
    """The request asking `case` of model version `version` (greedy, the suite's max_tokens)."""
    c: EvalCase = case.case
    return RequestSubmittedV1(
        request_id=case.request_id,
        tenant=tenant,
        prompt=c.prompt,
        variables=dict(c.variables),
        messages=[ChatMessage(role=m.role, content=m.content) for m in c.messages],
        retrieval=RetrievalOptions.model_validate(c.retrieval) if c.retrieval is not None else None,
        params=GenerationParams(temperature=0.0, max_tokens=suite.max_tokens),
        model=f"{run.model_name}:{version}",
        user_id=EVALUATOR_USER,
        metadata={
            "eval_run": run.run_id,
            "eval_suite": suite.name,
            "eval_case": c.id,
            "eval_side": case.side,
        },
        submitted_at=run.started_at,
    )


def plan_cases(
    run_id: str, suites: list[Suite], with_baseline: bool, *, tenant: str | None = None
) -> list[RunCase]:
    """One request per case and side, numbered over all suites in order; a case that names no
    tenant is attributed to `tenant` (the tenant the evaluator asks as) for the `tenant` facet."""
    sides: list[Side] = ["c", "b"] if with_baseline else ["c"]
    out = []
    index = 0
    for suite in suites:
        for case in suite.cases:
            if case.tenant is None and tenant is not None:
                case = case.model_copy(update={"tenant": tenant})
            out += [
                RunCase(
                    run_id=run_id,
                    request_id=request_id_for(run_id, index, side),
                    index=index,
                    side=side,
                    suite=suite.name,
                    case=case,
                )
                for side in sides
            ]
            index += 1
    return out


async def start_run(
    deps: Deps,
    candidate: ModelVersion,
    *,
    cause_event_id: str,
    cause: EventMeta | None,
    suites: list[Suite] | None = None,
    purpose: RunPurpose = "gate",
) -> Run:
    """Create the run `cause_event_id` asks for (once) and publish its requests (once).

    A `gate` run asks `suites` (default: `suites_for` the candidate) of the candidate and of the
    production version; a `compare` run asks them of the candidate alone and never promotes it.
    A redelivered cause finds the run and sends nothing again, unless the first delivery stopped
    before every request was out (then the same requests, with the same ids, go out again).
    """
    run_id = run_id_for(cause_event_id)
    run = await deps.runs.get(run_id)
    if run is None:
        if suites is None:
            suites = await suites_for(deps, candidate)
        production = version_at(await deps.registry.versions(candidate.name), ModelStage.PRODUCTION)
        baseline = production.version if production and production.version != candidate.version else None
        if purpose == "compare":
            baseline = None
        now = deps.clock()
        run = Run(
            run_id=run_id,
            model_name=candidate.name,
            candidate_version=candidate.version,
            baseline_version=baseline,
            started_at=now,
            deadline=now + timedelta(seconds=deps.settings.run_timeout_s),
            cause_event_id=cause_event_id,
            purpose=purpose,
            suites=[
                SuiteSpec(
                    name=s.name, kind=s.kind, description=s.description, max_tokens=s.max_tokens, gate=s.gate
                )
                for s in suites
            ],
        )
        cases = plan_cases(run_id, suites, baseline is not None, tenant=deps.settings.eval_tenant)
        if await deps.runs.create(run, cases):
            log.info(
                "evaluation run started",
                run_id=run_id,
                candidate=run.candidate_ref,
                baseline=run.baseline_ref,
                requests=len(cases),
            )
        run = await deps.runs.get(run_id)
        assert run is not None
    if run.sent:
        return run
    by_name = {s.name: s for s in run.suites}
    for case in await deps.runs.cases(run_id):
        suite = by_name[case.suite]
        version = run.candidate_version if case.side == "c" else run.baseline_version
        assert version is not None
        event = request_for(run, case, suite, version, deps.settings.eval_tenant)
        await deps.publisher.publish(
            event,
            cause=cause,
            event_id=derive_event_id(cause_event_id, event.event_type, case.request_id),
            correlation_id=case.request_id,
        )
    await deps.runs.mark_sent(run_id)
    await finish_if_complete(deps, run_id, cause)  # a run without cases ends at once
    return run
