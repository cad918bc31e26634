"""`cairn quality`: live quality per prompt, model or variant; drift checks; the alerts raised; the
state of a prompt experiment's sequential test."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import typer
from rich.table import Table

from cairn_evaluator.cli_support import console, run_with
from cairn_evaluator.deps import Deps
from cairn_evaluator.experiments import check_experiment, experiment_verdict, verdict_json
from cairn_evaluator.online.conclusions import conclusion_id
from cairn_evaluator.online.experiments import METRIC, TEST, ExperimentVerdict
from cairn_evaluator.online.summary import GroupBy
from cairn_evaluator.online.windows import parse_duration
from cairn_evaluator.quality import DriftReport, check_drift, quality_summary, recent_alerts

__all__ = ["quality_app"]

quality_app = typer.Typer(
    help="Quality of live traffic: groundedness, hallucination rate, satisfaction, drift and alerts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
_GROUPS = ("prompt", "model", "variant")


def _print(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@quality_app.command()
def summary(
    since: str = typer.Option("24h", "--since", help="How far back: 90m, 24h, 7d."),
    by: str = typer.Option("prompt", "--by", help="Group by prompt (version), model (version) or variant."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Requests, mean groundedness, hallucination rate, feedback score, thumbs-up and refusal rate."""
    if by not in _GROUPS:
        raise typer.BadParameter(f"--by must be one of {', '.join(_GROUPS)}")
    span = _duration(since)
    group: GroupBy = "prompt" if by == "prompt" else "model" if by == "model" else "variant"
    rows = run_with(lambda deps: quality_summary(deps, span, group))
    if as_json:
        _print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    table = Table(
        by,
        "responses",
        "scored",
        "groundedness",
        "hallucination",
        "feedback",
        "score",
        "thumbs up",
        "refusals",
        title=f"live quality, last {since}",
    )
    for r in rows:
        table.add_row(
            r.group,
            str(r.responses),
            str(r.scored),
            _fmt(r.mean_groundedness),
            _fmt(r.hallucination_rate),
            str(r.feedback),
            _fmt(r.mean_score),
            _fmt(r.thumbs_up_rate),
            _fmt(r.refusal_rate),
        )
    console.print(table)


def _report_json(report: DriftReport) -> dict[str, Any]:
    return {
        "checked_at": report.checked_at.isoformat(),
        "recent": report.recent,
        "reference": report.reference,
        "scopes": [
            {
                "tenant": s.tenant,
                "prompt": s.prompt,
                "models": list(s.models),
                "signals": [{**asdict(sig), "drifted": sig.drifted} for sig in s.signals],
                "skipped": list(s.skipped),
            }
            for s in report.scopes
        ],
        "alerts": [a.model_dump(mode="json") for a in report.raised],
        "suppressed": report.suppressed,
    }


@quality_app.command()
def drift(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Raise no alert; show what would fire."),
) -> None:
    """Check drift now: every signal per tenant and prompt with its value, threshold and verdict;
    alerts are published on cairn.alerts (cooldown applies) unless --dry-run."""
    report = run_with(lambda deps: check_drift(deps, publish=not dry_run), publish=not dry_run)
    if as_json:
        _print(json.dumps(_report_json(report), indent=2))
        return
    _print(f"recent window: {report.recent}; reference window: {report.reference} before it")
    table = Table(
        "tenant", "prompt", "signal", "statistic", "value", "threshold", "reference", "recent", "drift"
    )
    for scope in report.scopes:
        for s in scope.signals:
            table.add_row(
                scope.tenant,
                scope.prompt,
                s.name,
                s.statistic,
                f"{s.value:.3f}",
                f"{s.threshold:g}",
                str(s.reference_size),
                str(s.recent_size),
                "[red]yes[/red]" if s.drifted else "no",
            )
    console.print(table)
    for scope in report.scopes:
        for skipped in scope.skipped:
            _print(f"skipped {scope.tenant}/{scope.prompt}: {skipped}")
    verb = "would raise" if dry_run else "raised"
    for alert in report.raised:
        _print(f"{verb} {alert.alert_name} [{alert.severity}]: {alert.summary}")
    for key in report.suppressed:
        _print(f"in cooldown: {key}")
    if not report.raised and not report.suppressed:
        _print("no alert")


@quality_app.command()
def alerts(
    since: str | None = typer.Option(None, "--since", help="How far back (e.g. 24h); all when omitted."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The alerts the online checks raised, newest first."""
    span = _duration(since) if since else None
    firings = run_with(lambda deps: recent_alerts(deps, span))
    if as_json:
        _print(json.dumps([f.model_dump(mode="json") for f in firings], indent=2))
        return
    table = Table("raised", "alert", "severity", "value", "summary", "published")
    for f in firings:
        table.add_row(
            f.raised_at.isoformat(),
            f.alert_name,
            f.severity,
            _fmt(f.value),
            f.summary,
            "yes" if f.published else "no",
        )
    console.print(table)


@quality_app.command()
def experiment(
    name: str = typer.Argument(..., help="The experiment's name."),
    prompt: str = typer.Option(..., "--prompt", help="The prompt the experiment runs on."),
    tenant: str = typer.Option("default", "--tenant", help="The prompt's tenant."),
    conclude: bool = typer.Option(
        False, "--conclude", help="Publish the conclusion on cairn.experiments if there is a winner."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per-variant statistics of a prompt experiment with 95 % intervals (n, positive-feedback rate,
    mean rating, refusal rate, groundedness) and the sequential test's evidence and decision."""

    async def look(deps: Deps) -> tuple[ExperimentVerdict, bool]:
        verdict = await experiment_verdict(deps, tenant, prompt, name)
        concluded = await deps.online.conclusion(conclusion_id(tenant, prompt, name))
        if conclude and concluded is None and verdict.winner is not None:
            await check_experiment(deps, tenant, prompt, name)
            concluded = await deps.online.conclusion(conclusion_id(tenant, prompt, name))
        return verdict, concluded is not None and concluded.published

    verdict, published = run_with(look, publish=conclude)
    if as_json:
        _print(json.dumps({**verdict_json(tenant, prompt, verdict), "published": published}, indent=2))
        return
    table = Table(
        "variant",
        "version",
        "requests",
        "n",
        "positive rate [95% CI]",
        "mean rating [95% CI]",
        "refusal rate [95% CI]",
        "groundedness [95% CI]",
        title=f"experiment {name} on {tenant}/{prompt}",
    )
    for a in verdict.arms:
        table.add_row(
            a.variant,
            str(a.prompt_version or "-"),
            str(a.requests),
            str(a.observations),
            a.positive_rate.show(),
            a.mean_rating.show(2),
            a.refusal_rate.show(),
            a.groundedness.show(),
        )
    console.print(table)
    p = verdict.parameters
    _print(
        f"test: {TEST} on {METRIC}, alpha {p.alpha:g}, tau^2 {p.mixing_variance:g}, "
        f"min {p.min_samples} observations per arm, threshold {verdict.threshold:g}"
    )
    for c in verdict.comparisons:
        _print(
            f"{verdict.leader} vs {c.other}: difference {c.difference:+.3f}, evidence {c.evidence:.3g}"
            f"{' (significant)' if c.significant else ''}"
        )
    _print(f"decision: {verdict.decision} - {verdict.reason}")
    if published:
        _print(f"conclusion published on cairn.experiments (winner {verdict.winner})")
