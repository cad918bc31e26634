"""`cairn eval shadow`: mirror a share of live requests to a candidate, and read the evidence."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from cairn_auth import Role, admin_action
from cairn_auth.domain import PLATFORM_TENANT
from cairn_bus.direct_access import record_direct_access
from cairn_evaluator.cli_support import actor, console, run_with
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.shadow import Estimate, Shadow
from cairn_evaluator.shadow import ShadowReport, report_json, shadow_report, start_shadow, stop_shadow

__all__ = ["shadow_app"]

shadow_app = typer.Typer(
    help="Shadow traffic: a share of live requests mirrored to a candidate model or prompt version, "
    "both answers scored; the evidence feeds the promotion gate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _print(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


async def _record(deps: Deps, action: str, shadow: Shadow, by: str) -> None:
    event = admin_action(
        by,
        action,
        f"shadow:{shadow.shadow_id}",
        tenant=shadow.tenant or PLATFORM_TENANT,
        details=shadow.admin_details(),
        actor_role=Role.ADMIN,
        at=shadow.updated_at,
    )
    await deps.publisher.publish(event)


def _describe(s: Shadow) -> str:
    return (
        f"shadow {s.shadow_id}: {'on' if s.enabled else 'off'}, {s.candidate}, share {s.share:g}, "
        f"tenant {s.tenant or '*'}, prompt {s.prompt_name or '*'}"
    )


@shadow_app.command()
def start(
    shadow_id: str = typer.Argument(..., help="Name of the shadow, e.g. qa-v3."),
    model: str | None = typer.Option(None, "--model", help="Candidate model, e.g. cairn-qa:2."),
    prompt: str | None = typer.Option(None, "--prompt", help="Candidate prompt, e.g. qa:3 or qa@beta."),
    share: float = typer.Option(0.1, "--share", min=0.0, max=1.0, help="Share of live requests mirrored."),
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's requests."),
    prompt_name: str | None = typer.Option(None, "--only-prompt", help="Only requests for this prompt name."),
    by: str | None = typer.Option(None, help="Who starts it (default: the OS user)."),
) -> None:
    """Start (or restart) a shadow; the evaluator service mirrors from its next read of the shadows."""
    who = f"cli:{by or actor()}"

    async def action(deps: Deps) -> Shadow:
        now = deps.clock()
        shadow = Shadow(
            shadow_id=shadow_id,
            model=model,
            prompt=prompt,
            share=share,
            tenant=tenant,
            prompt_name=prompt_name,
            created_by=who,
            created_at=now,
            updated_by=who,
            updated_at=now,
        )
        await record_direct_access(deps.publisher, "shadow.start", f"shadow:{shadow_id}", by=who)
        started = await start_shadow(deps, shadow)
        await _record(deps, "shadow.started", started, who)
        return started

    try:
        _print(_describe(run_with(action, publish=True)))
    except ValueError as exc:  # pydantic: an invalid id, share or candidate
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


@shadow_app.command()
def stop(
    shadow_id: str = typer.Argument(..., help="The shadow."),
    by: str | None = typer.Option(None, help="Who stops it (default: the OS user)."),
) -> None:
    """Stop mirroring (the pairs collected so far stay, and still count as evidence)."""
    who = f"cli:{by or actor()}"

    async def action(deps: Deps) -> Shadow:
        await record_direct_access(deps.publisher, "shadow.stop", f"shadow:{shadow_id}", by=who)
        stopped = await stop_shadow(deps, shadow_id, who)
        await _record(deps, "shadow.stopped", stopped, who)
        return stopped

    _print(_describe(run_with(action, publish=True)))


@shadow_app.command("list")
def list_shadows() -> None:
    """Every shadow: its candidate, share, filters and whether it is on."""
    table = Table("shadow", "state", "model", "prompt", "share", "tenant", "only prompt", "since", "by")
    for s in run_with(lambda deps: deps.shadows.shadows()):
        table.add_row(
            s.shadow_id,
            "on" if s.enabled else "off",
            s.model or "-",
            s.prompt or "-",
            f"{s.share:g}",
            s.tenant or "*",
            s.prompt_name or "*",
            s.updated_at.isoformat(),
            s.updated_by,
        )
    console.print(table)


def _est(e: Estimate, digits: int = 3) -> str:
    if e.mean is None:
        return "-"
    if e.low is None or e.high is None:
        return f"{e.mean:.{digits}f}"
    return f"{e.mean:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(report: ShadowReport) -> Table:
    s = report.summary
    table = Table(
        "measure", "live", "shadow", title=f"shadow {report.shadow.shadow_id}: {report.shadow.candidate}"
    )
    table.add_row("groundedness (95% CI)", _est(s.live_groundedness), _est(s.shadow_groundedness))
    table.add_row("refusal rate", _num(s.live_refusal_rate), _num(s.shadow_refusal_rate))
    table.add_row("input tokens", _est(s.live_input_tokens, 1), _est(s.shadow_input_tokens, 1))
    table.add_row("output tokens", _est(s.live_output_tokens, 1), _est(s.shadow_output_tokens, 1))
    table.add_row("latency ms", _est(s.live_latency_ms, 0), _est(s.shadow_latency_ms, 0))
    table.add_row("cost USD (pairs)", _num(s.live_cost_usd, 6), _num(s.shadow_cost_usd, 6))
    return table


@shadow_app.command()
def report(
    shadow_id: str = typer.Argument(..., help="The shadow."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What the shadow's pairs show: counts, groundedness of both sides with 95% confidence intervals,
    win/tie/loss, refusals, tokens, latency, cost, and the gate's verdict on the evidence."""
    found = run_with(lambda deps: shadow_report(deps, shadow_id))
    if as_json:
        _print(json.dumps(report_json(found), indent=2))
        return
    s = found.summary
    _print(_describe(found.shadow))
    _print(
        f"mirrored {s.mirrored}, answers live {s.live_answers} / shadow {s.shadow_answers}, "
        f"pairs {s.pairs}, scored pairs {s.scored_pairs}"
    )
    console.print(_table(found))
    _print(
        f"groundedness shadow - live: {_est(s.groundedness_delta)}; "
        f"wins {s.wins}, ties {s.ties}, losses {s.losses}"
    )
    _print(f"gate: {'pass' if found.gate_passed else 'fail'} ({found.gate_note})")
