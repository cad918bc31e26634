"""`cairn replay --diff`: the command around `cairn_cli.replay_diff` (settings, broker, store, output)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cairn_cli.replay_diff import Overrides, ReplayDiff, run_replay_diff

if TYPE_CHECKING:
    from cairn_observability.pricing import PriceTable

FORMATS = ("table", "json", "html")


def _prices() -> PriceTable | None:
    """The repository's price table (`infra/prices.yaml`), as `cairn report` uses it; None without one."""
    from cairn_localstack.config import find_repo_root
    from cairn_observability.pricing import load_price_table

    path = find_repo_root() / "infra" / "prices.yaml"
    return load_price_table(path) if path.is_file() else None


async def _run(
    *,
    topic: str,
    start_text: str,
    end_text: str,
    replay_id: str,
    tenant: str | None,
    overrides: Overrides,
    timeout: float,
    console: Console,
) -> ReplayDiff:
    from cairn_audit.adapters.postgres import PostgresAuditStore
    from cairn_bus.kafka import KafkaPublisher
    from cairn_bus.postgres import create_pool
    from cairn_cli.config import load_settings
    from cairn_cli.kafka_io import producer
    from cairn_cli.timeparse import parse_when

    try:
        start, end = parse_when(start_text), parse_when(end_text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    prices = _prices()
    settings = load_settings()
    pool = await create_pool(settings.postgres_dsn)
    try:
        store = PostgresAuditStore(pool)
        await store.migrate()
        async with producer(settings.kafka_bootstrap, "cairn-replay") as p:
            publisher = KafkaPublisher(p, "/cairn/cli", service="cli")
            with Progress(
                TextColumn("shadow answers"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("answers", total=None)
                return await run_replay_diff(
                    store,
                    publisher,
                    replay_id=replay_id,
                    topic=topic,
                    start=start,
                    end=end,
                    overrides=overrides,
                    tenant=tenant,
                    timeout_s=timeout,
                    prices=prices,
                    on_planned=lambda n: progress.update(task, total=n),
                    on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                )
    finally:
        await pool.close()


def replay_diff_command(
    *,
    topic: str,
    start: str,
    end: str,
    replay_id: str | None,
    tenant: str | None,
    prompt: str | None,
    model: str | None,
    retrieval_index: str | None,
    output_format: str,
    out: Path | None,
    timeout: float,
    console: Console,
) -> None:
    """Run the replay with a diff and write it as a table, JSON or HTML (to `out` or stdout)."""
    from cairn_cli.diff_report import dumps, render_html, render_table

    if output_format not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    if output_format == "html" and out is None:
        raise typer.BadParameter("--format html needs --out FILE")
    if topic != "cairn.requests":
        raise typer.BadParameter("--diff re-runs requests: --topic must be cairn.requests")
    overrides = Overrides(prompt=prompt, model=model, retrieval_index=retrieval_index)
    rid = replay_id or f"diff-{uuid.uuid4().hex[:12]}"
    err = Console(stderr=True)
    try:
        diff = asyncio.run(
            _run(
                topic=topic,
                start_text=start,
                end_text=end,
                replay_id=rid,
                tenant=tenant,
                overrides=overrides,
                timeout=timeout,
                console=err,
            )
        )
    except (LookupError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if output_format == "json":
        text = dumps(diff)
        if out is None:
            print(text)
        else:
            out.write_text(text, encoding="utf-8")
    elif output_format == "html":
        assert out is not None
        out.write_text(render_html(diff), encoding="utf-8")
    else:
        target = Console(file=out.open("w", encoding="utf-8"), width=200) if out is not None else console
        render_table(diff, target)
    agg = diff.aggregates()
    err.print(
        f"replay id {rid}: {agg['answered']}/{agg['requests']} shadow answer(s), "
        f"{agg['changed_answers']} changed" + (f"; written to {out}" if out is not None else "")
    )
    if diff.missing:
        err.print(
            f"[yellow]no shadow answer within {timeout:.0f}s for {len(diff.missing)} request(s):[/yellow]"
        )
        for request_id in diff.missing:
            err.print(f"  {request_id}")
        raise typer.Exit(2)
