"""`cairn eval compare`: several versions on the same suites, side by side (distillation: student,
teacher and base), through the evaluator's run machinery (`comparison.py`)."""

from __future__ import annotations

import contextlib
import json
import sys
import uuid

import typer
from rich.table import Table

from cairn_evaluator.cli_support import console, run_with
from cairn_evaluator.comparison import finished, resolve, start_comparison, wait_for
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.comparison import Comparison, compare_runs
from cairn_evaluator.domain.runs import Run, RunCase
from cairn_evaluator.reports.html import fmt

__all__ = ["compare"]


def _print(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _dataset_option(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    name, _, number = text.rpartition(":")
    if not name or not number.isdigit() or int(number) < 1:
        raise typer.BadParameter("--dataset is ID:VERSION, e.g. support-qa:3")
    return name, int(number)


def _comparison_table(comparison: Comparison) -> Table:
    """One column per version, one row per suite (its main metric), then the agreement with the teacher."""
    teacher = comparison.teacher
    heads = [v.ref + (" (teacher)" if v.ref == teacher else "") for v in comparison.versions]
    table = Table("suite", "metric", *heads)
    for suite, metric in comparison.suites:
        table.add_row(suite, metric, *(fmt(v.scores.get(suite, {}).get(metric)) for v in comparison.versions))
    if teacher:
        table.add_row(
            "agreement",
            "token_f1",
            *(
                "-" if v.ref == teacher else f"{fmt(v.agreement)} ({v.agreement_cases})"
                for v in comparison.versions
            ),
        )
    return table


def compare(
    refs: list[str] = typer.Argument(..., help="Registry versions, e.g. cairn-qa:1 cairn-qa:2 cairn-qa:3."),
    suite: list[str] = typer.Option([], "--suite", "-s", help="Only these suites (repeatable; default all)."),
    teacher: str | None = typer.Option(
        None, help="The teacher version: every other version's held-out answers are scored against its."
    ),
    dataset: str | None = typer.Option(
        None,
        help="ID:VERSION whose held-out rows make the held-out suite (default: the first version's with one).",
    ),
    timeout: float = typer.Option(600.0, min=0, help="Seconds to wait for the runs to end."),
    compare_id: str | None = typer.Option(
        None,
        "--compare-id",
        help="Name the comparison; the same id finds its runs again (nothing is resent).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Ask the same suites of several versions (one run each, through the topics, never promoting)
    and print their scores side by side; with --teacher, each student's agreement with the teacher
    (token F1 of its held-out answers against the teacher's). Exit 2 when a run did not end in time."""
    wanted = [*refs, *([teacher] if teacher and teacher not in refs else [])]
    chosen = _dataset_option(dataset)
    ident = compare_id or uuid.uuid4().hex[:12]

    async def action(deps: Deps) -> list[tuple[Run, list[RunCase]]]:
        versions = await resolve(deps, wanted)
        runs = await start_comparison(deps, versions, compare_id=ident, dataset=chosen, only=suite or None)
        return await wait_for(deps, [r.run_id for r in runs], timeout_s=timeout)

    if not as_json:
        _print(f"comparison {ident}: {', '.join(wanted)}; waiting for the runs (up to {timeout:g} s)")
    with contextlib.redirect_stdout(sys.stderr):  # the run machinery's log lines: stdout is the table or JSON
        runs = run_with(action, publish=True)
    comparison = compare_runs(runs, teacher)
    if as_json:
        typer.echo(json.dumps({"compare_id": ident, **comparison.as_json()}, indent=2))
    else:
        console.print(_comparison_table(comparison))
        if teacher:
            _print(f"agreement: token F1 of each version's held-out answers against {teacher}'s (cases)")
        for v in comparison.versions:
            state = {"passed": "every gate met", "failed": "gates missed"}.get(v.status, v.status)
            _print(f"{v.ref}: run {v.run_id} ({state}; nothing promoted)")
        for note in comparison.notes:
            _print(note)
    if not finished([r for r, _ in runs]):
        if not as_json:
            _print(f"not every run ended; see them again with --compare-id {ident}")
        raise typer.Exit(2)
