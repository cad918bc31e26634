"""`cairn models` (the registry) and `cairn eval` (evaluation runs and reports, `cairn eval shadow`
for shadow traffic): two typer apps."""

from __future__ import annotations

import uuid
from pathlib import Path

import typer
from rich.table import Column, Table

from cairn_bus.direct_access import record_direct_access
from cairn_evaluator.cli_compare import compare
from cairn_evaluator.cli_shadow import shadow_app
from cairn_evaluator.cli_suites import suites_app
from cairn_evaluator.cli_support import actor, console, run_with
from cairn_evaluator.completion import verdict_of
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.errors import RunNotFoundError, VersionNotFoundError
from cairn_evaluator.domain.registry import ModelVersion, Promotion, PromotionOutcome, PromotionRequest
from cairn_evaluator.domain.runs import Run, RunCase
from cairn_evaluator.domain.scoring import RunScores, score_run
from cairn_evaluator.domain.shadow import REPLAY_PREFIX
from cairn_evaluator.evaluation import start_run
from cairn_evaluator.promotion import promote, rollback
from cairn_evaluator.reports.html import (
    delta,
    facet_cases,
    facet_status,
    fmt,
    gate_text,
    render_html,
)
from cairn_evaluator.shadow import shadow_evidence
from cairn_events import ModelStage, SuiteScore

__all__ = ["eval_app", "models_app"]

models_app = typer.Typer(
    help="The model registry: versions, stages (dev → staging → production, archived), aliases.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
eval_app = typer.Typer(
    help="Evaluation runs: candidate vs production on the suites, gates, reports; versions compared.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
eval_app.add_typer(shadow_app, name="shadow")
eval_app.add_typer(suites_app, name="suites")
eval_app.command()(compare)
_TARGETS = [ModelStage.STAGING.value, ModelStage.PRODUCTION.value, ModelStage.ARCHIVED.value]


def _print(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _print_moves(promotions: list[Promotion]) -> None:
    for p in promotions:
        _print(f"{p.name}:{p.version} {p.from_stage.value if p.from_stage else '-'} -> {p.to_stage.value}")


@models_app.command("list")
def list_models() -> None:
    """Every model version with its stage and aliases."""

    async def action(deps: Deps) -> list[tuple[ModelVersion, list[str]]]:
        out = []
        for name in await deps.registry.model_names():
            aliases = await deps.registry.aliases(name)
            for v in await deps.registry.versions(name):
                out.append((v, sorted(a for a, n in aliases.items() if n == v.version)))
        return out

    table = Table("model", "version", "stage", "aliases", "base model", "dataset", "job", "registered")
    for v, aliases in run_with(action):
        dataset = f"{v.dataset_id}@v{v.dataset_version}" if v.dataset_id else "-"
        table.add_row(
            v.name,
            str(v.version),
            v.stage.value,
            ", ".join(aliases),
            v.base_model,
            dataset,
            v.job_id or "-",
            v.registered_at.isoformat(),
        )
    console.print(table)


@models_app.command()
def show(
    name: str = typer.Argument(..., help="Model name, e.g. cairn-qa."),
    version: int | None = typer.Argument(None, min=1, help="A version; all versions when omitted."),
) -> None:
    """A model's versions, or one version's lineage, configuration and metrics."""

    async def action(deps: Deps) -> tuple[list[ModelVersion], dict[str, int]]:
        versions = await deps.registry.versions(name)
        if version is not None:
            versions = [v for v in versions if v.version == version]
        if not versions:
            raise VersionNotFoundError(f"model {name!r} has no version {version or ''}".rstrip())
        return versions, await deps.registry.aliases(name)

    versions, aliases = run_with(action)
    for v in versions:
        here = sorted(a for a, n in aliases.items() if n == v.version)
        _print(f"{v.ref}  stage: {v.stage.value}  aliases: {', '.join(here) or '-'}")
        _print(
            f"  base model: {v.base_model}  quantization: {v.quantization or 'none'}  "
            f"adapter: {v.adapter_uri or '-'}"
        )
        _print(
            f"  dataset: {v.dataset_id or '-'} v{v.dataset_version or '-'}  job: {v.job_id or '-'}  "
            f"code: {v.code_version}  registered: {v.registered_at.isoformat()}"
        )
        if version is not None:
            _print(f"  config: {v.config}")
            _print(f"  metrics: {v.metrics}")


@models_app.command("promote")
def promote_cmd(
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., min=1, help="The version to move."),
    to: str = typer.Option(..., "--to", help="Target stage: staging, production or archived."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the history)."),
    by: str | None = typer.Option(None, help="Who promotes (default: the OS user)."),
) -> None:
    """Move a version to a stage (production archives the one there) and publish model.promoted."""
    if to not in _TARGETS:
        console.print(f"[red]error:[/red] --to must be one of {', '.join(_TARGETS)}", highlight=False)
        raise typer.Exit(1)

    async def action(deps: Deps) -> PromotionOutcome:
        await record_direct_access(deps.publisher, "models.promote", f"model:{name}:{version}", by=by)
        request = PromotionRequest(
            name=name,
            version=version,
            to_stage=ModelStage(to),
            by=by or actor(),
            reason=reason or "promoted from the CLI",
            event_id=str(uuid.uuid4()),
            at=deps.clock(),
        )
        return await promote(deps, request)

    outcome = run_with(action, publish=True)
    if not outcome.promotions:
        _print(f"{name}:{version} is already {to}")
    _print_moves(outcome.promotions)


@models_app.command("rollback")
def rollback_cmd(
    name: str = typer.Argument(..., help="Model name."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the history)."),
    by: str | None = typer.Option(None, help="Who rolls back (default: the OS user)."),
) -> None:
    """Put the version that was in production before the current one back into production."""

    async def action(deps: Deps) -> PromotionOutcome:
        await record_direct_access(deps.publisher, "models.rollback", f"model:{name}", by=by)
        return await rollback(deps, name, by=by or actor(), reason=reason, event_id=str(uuid.uuid4()))

    outcome = run_with(action, publish=True)
    _print_moves(outcome.promotions)


@models_app.command()
def alias(
    name: str = typer.Argument(..., help="Model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="The alias, e.g. champion."),
    version: int = typer.Argument(..., min=1, help="The version it names."),
    by: str | None = typer.Option(None, help="Who sets it (default: the OS user)."),
) -> None:
    """Point an alias at a version."""

    async def action(deps: Deps) -> int | None:
        await record_direct_access(deps.publisher, "models.alias", f"model:{name}@{alias_name}", by=by)
        return await deps.registry.set_alias(name, alias_name, version, by or actor())

    previous = run_with(action, publish=True)
    _print(f"{name}@{alias_name} -> {version}" + ("" if previous is None else f" (was {previous})"))


@models_app.command()
def history(name: str = typer.Argument(..., help="Model name.")) -> None:
    """Every stage change of a model: when, version, from, to, who, why, evidence run."""
    moves = run_with(lambda deps: deps.registry.history(name))
    table = Table("when", "version", "from", "to", "by", "reason", "evidence run")
    for p in moves:
        table.add_row(
            p.at.isoformat(),
            str(p.version),
            p.from_stage.value if p.from_stage else "-",
            p.to_stage.value,
            p.by,
            p.reason,
            p.evidence_run_id or "-",
        )
    console.print(table)


@eval_app.command("run")
def run_cmd(
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., min=1, help="The candidate version."),
) -> None:
    """Start a run of a version against production: its requests are published now; the evaluator
    service scores the answers as they arrive."""

    async def action(deps: Deps) -> tuple[Run, int]:
        candidate = await deps.registry.get(name, version)
        if candidate is None:
            raise VersionNotFoundError(f"model {name!r} has no version {version}")
        run = await start_run(deps, candidate, cause_event_id=str(uuid.uuid4()), cause=None)
        return run, len(await deps.runs.cases(run.run_id))

    run, requests = run_with(action, publish=True)
    _print(
        f"run {run.run_id}: {run.candidate_ref} vs {run.baseline_ref or 'no baseline'}, {requests} requests sent"
    )
    _print(f"follow it with: cairn eval status {run.run_id}")


async def _run_and_cases(deps: Deps, run_id: str) -> tuple[Run, list[RunCase]]:
    run = await deps.runs.get(run_id)
    if run is None:
        raise RunNotFoundError(f"no evaluation run {run_id!r}")
    return run, await deps.runs.cases(run_id)


async def _run_cases_and_evidence(
    deps: Deps, run_id: str
) -> tuple[Run, list[RunCase], tuple[list[SuiteScore], dict[tuple[str, str], str]]]:
    """The run, its cases, and its shadow evidence: as the run recorded it once ended, else as now."""
    run, cases = await _run_and_cases(deps, run_id)
    if run.status == "running":
        return run, cases, await shadow_evidence(deps, run)
    kept = [s for s in run.scores if s.suite == "shadow" or s.suite.startswith(REPLAY_PREFIX)]
    return run, cases, (kept, {(s.suite, s.metric): "as recorded when the run ended" for s in kept})


@eval_app.command()
def status(run_id: str = typer.Argument(..., help="The run id.")) -> None:
    """A run's state and how many of its requests are answered."""
    run, cases = run_with(lambda deps: _run_and_cases(deps, run_id))
    answered = sum(1 for c in cases if c.answer is not None)
    _print(f"run {run.run_id}: {run.status}  {run.candidate_ref} vs {run.baseline_ref or 'no baseline'}")
    _print(
        f"  answered {answered}/{len(cases)}  started {run.started_at.isoformat()}  "
        f"deadline {run.deadline.isoformat()}"
    )
    if run.verdict:
        _print(f"  {run.verdict}")


def _print_facets(scores: RunScores) -> None:
    """Each suite's gated metric per facet slice, candidate vs baseline, and the facet rule's word."""
    table = Table(
        "suite", "metric", "facet", "slice", "cases", "candidate", "baseline", "delta", "gate", title="facets"
    )
    for f in scores.facets:
        status = {"pass": "[green]pass[/green]", "fail": "[red]fail[/red]"}.get(facet_status(f), "-")
        table.add_row(
            f.suite,
            f.metric,
            f.facet,
            f.value,
            facet_cases(f),
            fmt(f.candidate),
            fmt(f.baseline),
            delta(f.candidate, f.baseline),
            f"{status} {f.note}",
        )
    console.print(table)


@eval_app.command()
def report(
    run_id: str = typer.Argument(..., help="The run id."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report to this file."),
) -> None:
    """Scores per suite and metric with gates, and the verdict; optionally the HTML report."""
    run, cases, evidence = run_with(lambda deps: _run_cases_and_evidence(deps, run_id))
    scores = score_run(run, cases)
    scores.scores.extend(evidence[0])
    scores.notes.update(evidence[1])
    table = Table(
        "suite", "metric", "candidate", "baseline", "delta", "gate", "result", title=f"run {run_id}"
    )
    for s in scores.scores:
        result = "[green]pass[/green]" if s.passed else "[red]fail[/red]"
        table.add_row(
            s.suite,
            s.metric,
            fmt(s.candidate),
            fmt(s.baseline),
            delta(s.candidate, s.baseline),
            gate_text(run, s) or scores.notes.get((s.suite, s.metric), "every request answered"),
            result,
        )
    console.print(table)
    _print_facets(scores)
    verdict = run.verdict or f"{run.status.upper()} (so far): " + verdict_of(run, scores)
    _print(f"verdict: {verdict}")
    if html is not None:
        html.write_text(render_html(run, scores, verdict), encoding="utf-8")
        _print(f"HTML report written to {html}")


@eval_app.command("list")
def list_runs(limit: int = typer.Option(20, min=1, help="How many runs, newest first.")) -> None:
    """The latest evaluation runs."""
    runs = run_with(lambda deps: deps.runs.runs(limit))
    table = Table(
        Column("run", no_wrap=True, min_width=16), "candidate", "baseline", "status", "started", "report"
    )
    for r in runs:
        table.add_row(
            r.run_id,
            r.candidate_ref,
            r.baseline_ref or "-",
            r.status,
            r.started_at.isoformat(),
            r.report_uri or "-",
        )
    console.print(table)
