"""The `cairn` command: the local stack, services, requests, trails, replays and dead letters.

Importing this module loads Typer and nothing of the platform: each service's commands (and the
CLI's own heavier groups) are imported only when they run (`on_demand`), and the commands defined
here import what they use inside their bodies.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from cairn_cli.on_demand import OnDemand, on_demand_group

if TYPE_CHECKING:
    from cairn_audit.adapters.postgres import PostgresAuditStore

# name -> where it lives and the help it lists (the first paragraph of that command's own help)
ON_DEMAND = {
    "status": OnDemand(
        "cairn_cli.status_cmd:status",
        "Per service: up, consumer lag, events handled, p50/p99 handler latency, errors (from /metrics).",
        group=False,
    ),
    "report": OnDemand(
        "cairn_cli.report:report",
        "Write a self-contained HTML report (latency, tokens and cost, verdicts, groundedness, feedback,\n"
        "drift) of the window from the audit store.",
        group=False,
    ),
    "stack": OnDemand(
        "cairn_cli.stack_cmd:app", "The local stack: Kafka-protocol broker, PostgreSQL, S3 store."
    ),
    "prompts": OnDemand(
        "cairn_prompt_store.cli:app",
        "Prompts: immutable versions, movable labels, previews and sticky A/B experiments.",
    ),
    "safety": OnDemand(
        "cairn_safety.cli:app",
        "Safety: screen texts under a tenant's policy, validate policies, work the human review queue.",
    ),
    "inference": OnDemand(
        "cairn_inference.cli:app",
        "The inference service's local model: convert it once, generate with it directly.",
    ),
    "docs": OnDemand(
        "cairn_retriever.cli:app",
        "Documents for retrieval: ingest files, S3 prefixes or the Python docs; list, search, delete.",
    ),
    "datasets": OnDemand(
        "cairn_feedback.cli:app",
        "Datasets: curated, versioned training data from feedback, with the provenance of every row.",
    ),
    "models": OnDemand(
        "cairn_evaluator.cli:models_app",
        "The model registry: versions, stages (dev → staging → production, archived), aliases.",
    ),
    "eval": OnDemand(
        "cairn_evaluator.cli:eval_app",
        "Evaluation runs: candidate vs production on the suites, gates, reports; versions compared.",
    ),
    "quality": OnDemand(
        "cairn_evaluator.cli_quality:quality_app",
        "Quality of live traffic: groundedness, hallucination rate, satisfaction, drift and alerts.",
    ),
    "tune": OnDemand(
        "cairn_tuner.cli:app",
        "LoRA tuning jobs: start, follow, list and cancel them; register a base model version.",
    ),
    "keys": OnDemand(
        "cairn_auth.cli:app", "API keys: create (shown once), list (never shows secrets), revoke."
    ),
    "tenants": OnDemand(
        "cairn_cli.tenants_cmd:app", "Tenants: erase a tenant's stored content everywhere (crypto-shredding)."
    ),
    "services": OnDemand(
        "cairn_cli.services_cmd:app", "Start, stop and inspect the Cairn services as local processes."
    ),
}

app = typer.Typer(
    cls=on_demand_group(ON_DEMAND),
    help="Cairn: operate the local stack and services, submit requests, read trails, replay topics.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
dlq_app = typer.Typer(help="Dead letters: messages no consumer could handle.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit store.", no_args_is_help=True)
topics_app = typer.Typer(help="Topics of the schema registry.", no_args_is_help=True)
loop_app = typer.Typer(
    help="The closed loop: feedback → dataset → tuning → evaluation → promotion.", no_args_is_help=True
)


@app.callback()
def _sign_as_the_cli() -> None:
    """Beside a local stack, the command signs what it publishes with the stack's CLI key (and trusts
    the stack's keys), unless a signing key is configured: privileged events it publishes (promotions,
    admin actions) would otherwise be dead-lettered as unsigned (docs/security-signing.md)."""
    import os

    if any(os.environ.get(v) for v in ("CAIRN_SIGNING_KEY", "CAIRN_SIGNING_KEY_FILE", "CAIRN_VAULT_ADDR")):
        return
    from cairn_localstack.config import StackConfig
    from cairn_localstack.keys import signing_env

    stack_dir = StackConfig().stack_dir
    if stack_dir.is_dir():  # a local stack was set up here
        for name, value in signing_env(stack_dir).items():
            os.environ.setdefault(name, value)


app.add_typer(loop_app, name="loop")
app.add_typer(dlq_app, name="dlq")
app.add_typer(audit_app, name="audit")
app.add_typer(topics_app, name="topics")
console = Console()


def _run(coro: Any) -> Any:
    import asyncio

    try:
        return asyncio.run(coro)
    except (LookupError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _kv(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            parsed = json.loads(value)
            out[key] = parsed if isinstance(parsed, int | float | bool) else value
        except json.JSONDecodeError:
            out[key] = value
    return out


@app.command()
def submit(
    prompt: str = typer.Option(
        ..., "--prompt", "-p", help="Prompt reference: NAME, NAME@LABEL or NAME:VERSION."
    ),
    var: list[str] = typer.Option([], "--var", "-v", help="Template variable KEY=VALUE (repeatable)."),
    question: str | None = typer.Option(None, "--message", "-m", help="A user message added to the prompt."),
    tenant: str = typer.Option("default", help="Tenant id."),
    request_id: str | None = typer.Option(None, help="Request id (default: a new UUID)."),
    max_tokens: int = typer.Option(256, help="Most tokens to generate."),
) -> None:
    """Produce a `cairn.request.submitted.v1` on `cairn.requests`, as an upstream system would."""
    from cairn_bus.kafka import KafkaPublisher, ensure_topics
    from cairn_cli.config import load_settings
    from cairn_cli.kafka_io import producer
    from cairn_cli.tracing import publish_traced
    from cairn_events import RequestSubmittedV1

    settings = load_settings()
    payload: dict[str, Any] = {
        "request_id": request_id or str(uuid.uuid4()),
        "tenant": tenant,
        "prompt": prompt,
        "variables": _kv(var),
        "params": {"max_tokens": max_tokens},
        "submitted_at": datetime.now(UTC).isoformat(),
    }
    if question:
        payload["messages"] = [{"role": "user", "content": question}]
    try:
        event = RequestSubmittedV1.model_validate(payload)
    except ValueError as exc:
        console.print(f"[red]invalid request:[/red] {exc}")
        raise typer.Exit(2) from None

    async def go() -> str:
        await ensure_topics(settings.kafka_bootstrap)
        async with producer(settings.kafka_bootstrap) as p:
            meta = await publish_traced(KafkaPublisher(p, "/cairn/cli", service="cli"), event)
        return meta.id

    event_id = _run(go())
    console.print(f"request [bold]{event.request_id}[/bold] submitted (event {event_id})")
    console.print(f"follow it with: cairn trail {event.request_id}")


async def _store_call(dsn: str, fn: Any) -> Any:
    from cairn_audit.adapters.postgres import PostgresAuditStore
    from cairn_bus.postgres import create_pool

    pool = await create_pool(dsn)
    try:
        store = PostgresAuditStore(pool)
        await store.migrate()
        return await fn(store)
    finally:
        await pool.close()


@app.command()
def trail(
    request_id: str,
    as_json: bool = typer.Option(False, "--json", help="Print the trail as JSON lines, in causal order."),
    wait: float = typer.Option(10.0, help="Seconds to wait for the trail to appear and settle."),
) -> None:
    """The whole trail of a request from the audit store, as a tree in causal order with timings."""
    import asyncio

    from cairn_cli.config import load_settings
    from cairn_cli.trail_view import render_trail, trail_json

    settings = load_settings()

    async def fetch() -> list[Any]:
        deadline = time.monotonic() + wait
        records: list[Any] = []
        while True:
            latest = await _store_call(settings.postgres_dsn, lambda s: s.trail(request_id))
            settled = latest and len(latest) == len(records)
            records = latest
            if settled or time.monotonic() >= deadline:
                return records
            await asyncio.sleep(0.5)

    records = _run(fetch())
    if not records:
        console.print(
            f"[yellow]no events stored for request {request_id}[/yellow] (is the audit service running?)"
        )
        raise typer.Exit(1)
    if as_json:
        for row in trail_json(records):
            print(json.dumps(row, default=str))
    else:
        console.print(render_trail(request_id, records))


@app.command()
def replay(
    topic: str = typer.Option("cairn.requests", help="Topic to replay."),
    start: str = typer.Option(..., "--from", help="Start time (ISO 8601, 'now', or -15m/-2h/-1d)."),
    end: str = typer.Option("now", "--to", help="End time, exclusive."),
    to_topic: str | None = typer.Option(
        None, "--to-topic", help="Publish to this topic (default: the same)."
    ),
    source: str = typer.Option("audit", help="Read the range from the 'audit' store or the 'broker'."),
    replay_id: str | None = typer.Option(
        None, help="Replay run id; re-running one id publishes nothing new."
    ),
    dry_run: bool = typer.Option(False, help="List what would be replayed, publish nothing."),
    diff: bool = typer.Option(
        False, "--diff", help="Re-run the window's requests as shadow requests; compare old and new answers."
    ),
    tenant: str | None = typer.Option(None, help="--diff: only this tenant's requests."),
    prompt: str | None = typer.Option(None, help="--diff: run with this prompt reference (qa@label, qa:3)."),
    model: str | None = typer.Option(None, help="--diff: run with this model (e.g. cairn-qa:2)."),
    retrieval_index: str | None = typer.Option(None, help="--diff: retrieve from this collection."),
    output_format: str = typer.Option("table", "--format", help="--diff: table, json or html."),
    out: Path | None = typer.Option(None, "--out", help="--diff: write the report to this file."),
    timeout: float = typer.Option(300.0, help="--diff: seconds to wait for the shadow answers."),
) -> None:
    """Re-publish a time range of a topic, keeping each original event id in `ce_replayof`.

    With --diff: re-run the recorded requests of the window with the overrides as shadow requests
    (answers on cairn.responses.shadow, never upstream) and show old and new answers side by side."""
    if diff:
        from cairn_cli.replay_diff_cmd import replay_diff_command

        replay_diff_command(
            topic=topic,
            start=start,
            end=end,
            replay_id=replay_id,
            tenant=tenant,
            prompt=prompt,
            model=model,
            retrieval_index=retrieval_index,
            output_format=output_format,
            out=out,
            timeout=timeout,
            console=console,
        )
        return
    if any(v is not None for v in (tenant, prompt, model, retrieval_index, out)):
        raise typer.BadParameter("--tenant, --prompt, --model, --retrieval-index and --out need --diff")
    from cairn_cli.config import load_settings
    from cairn_cli.kafka_io import producer, read_range
    from cairn_cli.replay import ReplayReport, from_audit, from_broker, publish_replay
    from cairn_cli.timeparse import parse_when

    settings = load_settings()
    if source not in ("audit", "broker"):
        raise typer.BadParameter("--source must be 'audit' or 'broker'")
    try:
        t0, t1 = parse_when(start), parse_when(end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    report = ReplayReport(replay_id or str(uuid.uuid4()), source, topic, to_topic or topic)

    async def go() -> ReplayReport:
        if source == "audit":
            records = await _store_call(settings.postgres_dsn, lambda s: s.in_range(topic, t0, t1))
            messages = from_audit(records)
        else:
            raw = await read_range(
                settings.kafka_bootstrap, topic, int(t0.timestamp() * 1000), int(t1.timestamp() * 1000)
            )
            messages, report.skipped = from_broker(raw)
        if dry_run:
            report.ids = [(m.original_id, "") for m in messages]
            return report
        async with producer(settings.kafka_bootstrap) as p:
            return await publish_replay(p, messages, report)

    done = _run(go())
    verb = "would replay" if dry_run else "replayed"
    console.print(
        f"{verb} {len(done.ids)} event(s) from {done.from_topic} ({done.source}) to {done.to_topic}; "
        f"replay id {done.replay_id}" + (f"; skipped {done.skipped} without ce_id" if done.skipped else "")
    )
    for original, new in done.ids[:20]:
        console.print(f"  {original} -> {new or '(dry run)'}")
    if len(done.ids) > 20:
        console.print(f"  ... and {len(done.ids) - 20} more")


@dlq_app.command("list")
def dlq_list(
    since: str | None = typer.Option(None, "--since", help="Only dead letters after this time."),
    limit: int = typer.Option(50, help="Show at most this many (newest last)."),
    show_value: bool = typer.Option(False, "--value", help="Show the original message bytes."),
) -> None:
    """Dead letters on the dead-letter topic: when, from where, which consumer, why."""
    import base64

    from rich.table import Table

    from cairn_cli.config import load_settings
    from cairn_cli.kafka_io import read_range
    from cairn_cli.timeparse import parse_when
    from cairn_events import DeadLetterRecordedV1, decode

    settings = load_settings()
    start_ms = int(parse_when(since).timestamp() * 1000) if since else None
    raw = _run(read_range(settings.kafka_bootstrap, settings.deadletter_topic, start_ms))
    table = Table("time", "origin", "consumer", "kind", "reason")
    shown = raw[-limit:]
    for rec in shown:
        try:
            dl = decode(DeadLetterRecordedV1.event_type, rec.value or b"")
        except ValueError as exc:
            table.add_row("-", f"{rec.topic}[{rec.partition}]@{rec.offset}", "-", "unreadable", str(exc))
            continue
        assert isinstance(dl, DeadLetterRecordedV1)
        reason = dl.reason
        if show_value:
            reason += "\n" + base64.b64decode(dl.original_value_b64).decode("utf-8", "backslashreplace")[:500]
        table.add_row(
            dl.dead_lettered_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{dl.origin_topic}[{dl.origin_partition}]@{dl.origin_offset}",
            dl.consumer_group,
            dl.error_kind.value,
            reason,
        )
    console.print(table)
    console.print(f"{len(shown)} of {len(raw)} dead letter(s)")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 and list the breaks if anything was altered."""
    from cairn_cli.config import load_settings

    settings = load_settings()

    async def go() -> tuple[int, list[Any]]:
        async def both(store: PostgresAuditStore) -> tuple[int, list[Any]]:
            return await store.count(), await store.verify()

        result: tuple[int, list[Any]] = await _store_call(settings.postgres_dsn, both)
        return result

    count, breaks = _run(go())
    if breaks:
        for b in breaks:
            console.print(f"[red]break[/red] at seq {b.seq} (event {b.event_id}): {b.reason}")
        console.print(f"[red]audit chain broken in {len(breaks)} place(s) among {count} events[/red]")
        raise typer.Exit(1)
    console.print(f"[green]audit chain intact[/green]: {count} events verified")


@topics_app.command("list")
def topics_list() -> None:
    """The topics of the registry: partitions, key, owner, event types."""
    from rich.table import Table

    from cairn_events import load_topics

    table = Table("topic", "partitions", "key", "owner", "event types")
    for spec in sorted(load_topics().values(), key=lambda s: s.name):
        table.add_row(spec.name, str(spec.partitions), spec.key, spec.owner, "\n".join(spec.event_types))
    console.print(table)


@topics_app.command("create")
def topics_create() -> None:
    """Create every registry topic that does not exist, with its partition count."""
    from cairn_bus.kafka import ensure_topics
    from cairn_cli.config import load_settings

    settings = load_settings()
    created = _run(ensure_topics(settings.kafka_bootstrap))
    console.print(f"created: {', '.join(created) or 'none (all exist)'}")


@app.command()
def demo(
    timeout: float = typer.Option(30.0, help="Seconds to wait for each step."),
    questions: bool = typer.Option(True, help="Ask grounded and guarded questions (needs every service)."),
) -> None:
    """Ask questions through every service, send malformed messages, show trails, dead letters, a replay."""
    from cairn_cli.config import load_settings
    from cairn_cli.demo import run_demo

    code = _run(run_demo(load_settings(), console, timeout, questions))
    raise typer.Exit(code)


@loop_app.command("demo")
def loop_demo(
    plan: Path = typer.Option(None, help="The demo plan (default: infra/loop/demo.yaml)."),
) -> None:
    """Requests → feedback → dataset → LoRA tuning → evaluation gate → promotion → served by the adapter.

    The command asks the questions and submits the corrections; the services' policies take every step
    after that (dataset build, tuning job, promotion to production), as `cairn services up` configures them."""
    from cairn_cli.config import load_settings
    from cairn_cli.loop_demo import DemoPlan, default_plan_path, run_loop_demo

    code = _run(run_loop_demo(load_settings(), console, DemoPlan.load(plan or default_plan_path())))
    raise typer.Exit(code)


@app.command()
def ask(
    question: str,
    prompt: str = typer.Option("qa@production", "--prompt", "-p", help="Prompt reference."),
    tenant: str = typer.Option("default", help="Tenant id."),
    max_tokens: int = typer.Option(160, help="Most tokens to generate."),
    timeout: float = typer.Option(180.0, help="Seconds to wait for the response."),
) -> None:
    """Ask a question through the whole request path and print the grounded answer with its sources."""
    from cairn_cli.ask import ask_many, print_answer, question_request
    from cairn_cli.config import load_settings

    request = question_request(question, prompt, tenant, max_tokens)
    [answer] = _run(ask_many(load_settings(), [(question, request)], timeout))
    print_answer(console, answer)
    if answer.response is None or answer.response.status.value != "completed":
        raise typer.Exit(1)
