"""`cairn datasets`: build curated dataset versions from feedback (or a teacher model's answers), list
them, show their provenance."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cairn_bus import Publisher, TransientError
from cairn_bus.direct_access import direct_access
from cairn_bus.settings import settings_or_local_stack
from cairn_feedback.datasets import Built, build_dataset, find_version, republish
from cairn_feedback.domain.curation import DEFAULT_HELDOUT
from cairn_feedback.domain.errors import FeedbackError
from cairn_feedback.domain.records import DatasetVersion
from cairn_feedback.domain.rules import parse_rules
from cairn_feedback.ports import Repository
from cairn_feedback.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    help="Datasets: curated, versioned training data from feedback, with the provenance of every row.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


def load_settings() -> Settings:
    """CAIRN_* variables; anything unset among broker, database and S3 comes from the local stack."""
    return settings_or_local_stack(Settings)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


def _run(action: Callable[[Settings, Repository], Awaitable[T]]) -> T:
    """Run `action` on the PostgreSQL repository; every error becomes a message and exit status 1."""
    from cairn_bus.postgres import create_pool
    from cairn_feedback.adapters.postgres import PostgresRepository

    async def main() -> T:
        settings = load_settings()
        pool = await create_pool(settings.postgres_dsn, 1, 2)
        try:
            repository = PostgresRepository(pool)
            await repository.migrate()
            return await action(settings, repository)
        finally:
            await pool.close()

    try:
        return asyncio.run(main())
    except FeedbackError as exc:
        raise _fail(str(exc)) from None
    except (TransientError, TimeoutError, OSError) as exc:
        raise _fail(f"a store or the broker is unavailable: {exc}") from None
    except Exception as exc:  # the database, S3 or Kafka said no: a message, never a traceback
        raise _fail(f"{type(exc).__name__}: {exc}") from None


@asynccontextmanager
async def kafka_publisher(settings: Settings) -> AsyncIterator[Publisher]:
    """A publisher on the broker under the feedback service's name (topics ensured first)."""
    from cairn_bus.kafka import KafkaPublisher, ensure_topics, make_producer
    from cairn_feedback.app import router

    await ensure_topics(settings.kafka_bootstrap)
    producer = make_producer(settings)
    await producer.start()
    try:
        yield KafkaPublisher(
            producer,
            f"/cairn/{settings.service_name}",
            allowed_types=router.published_types,
            service=settings.service_name,
        )
    finally:
        await producer.stop()


@app.command()
def build(
    dataset_id: str = typer.Argument(..., help="The dataset, e.g. support-qa."),
    rule: list[str] = typer.Option(
        ["corrected"],
        "--rule",
        "-r",
        help="corrected, min_rating:N, thumbs_up or teacher:MODEL (a version such as cairn-qa:2, or a "
        "base model; its answers become targets) (repeatable).",
    ),
    heldout: float = typer.Option(DEFAULT_HELDOUT, help="Fraction of rows held out for evaluation."),
    seed: int = typer.Option(0, help="Seed of the held-out split."),
    min_rows: int = typer.Option(1, help="Refuse to make a version with fewer rows than this."),
) -> None:
    """Curate feedback into the dataset's next version, write it to S3 and publish `dataset.published`."""
    from cairn_bus.objects import S3ObjectStore

    direct_access(load_settings(), "datasets.build", f"dataset:{dataset_id}")
    from cairn_feedback.adapters.code_version import code_version

    async def action(settings: Settings, repository: Repository) -> Built:
        from cairn_auth.object_keys import object_store_keyring

        rules = parse_rules(rule)
        objects = S3ObjectStore.from_settings(settings)
        async with kafka_publisher(settings) as publisher:
            return await build_dataset(
                repository,
                objects,
                publisher,
                dataset_id=dataset_id,
                rules=rules,
                bucket=settings.s3_bucket,
                code_version=code_version(),
                heldout=heldout,
                seed=seed,
                min_rows=min_rows,
                keyring=object_store_keyring(objects, settings.s3_bucket),
            )

    built = _run(action)
    m = built.version.manifest
    table = Table(title=f"{m.dataset_id} v{m.version}", show_header=False)
    table.add_row("rules", ", ".join(m.rules))
    table.add_row("rows", str(m.row_count))
    table.add_row("train / heldout", f"{m.train_rows} / {m.heldout_rows}")
    for reason, count in m.dropped.items():
        table.add_row(f"dropped: {reason}", str(count))
    table.add_row("requests", str(len(m.request_ids)))
    table.add_row("uri", built.version.uri)
    table.add_row("event", built.meta.id)
    console.print(table)


@app.command("list")
def list_datasets() -> None:
    """Every dataset with its latest version."""
    rows = _run(lambda _, repository: repository.datasets())
    table = Table("dataset", "versions", "latest", "rows", "created")
    for d in rows:
        table.add_row(
            d.dataset_id, str(d.versions), f"v{d.latest_version}", str(d.latest_rows), d.latest_created_at
        )
    console.print(table)


def _version(dataset_id: str, version: int | None) -> DatasetVersion:
    return _run(lambda _, repository: find_version(repository, dataset_id, version))


@app.command()
def show(
    dataset_id: str,
    version: int | None = typer.Option(None, "--version", "-v", help="The version (default: the latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """The manifest of a version: rules, splits, files with their hashes, drops, lineage."""
    made = _version(dataset_id, version)
    m = made.manifest
    if as_json:
        console.print_json(m.model_dump_json())
        return
    console.print(f"[bold]{m.dataset_id} v{m.version}[/bold]  {made.uri}", highlight=False)
    console.print(f"created {m.created_at}  code {m.code_version}", highlight=False)
    console.print(f"rules: {', '.join(m.rules)}", highlight=False)
    console.print(
        f"rows: {m.row_count} (train {m.train_rows}, heldout {m.heldout_rows}) from "
        f"{len(m.request_ids)} requests, {len(m.feedback_ids)} feedback",
        highlight=False,
    )
    if m.dropped:
        console.print("dropped: " + ", ".join(f"{k}={v}" for k, v in m.dropped.items()), highlight=False)
    table = Table("file", "rows", "bytes", "sha256")
    for f in m.files:
        table.add_row(f.name, str(f.rows), str(f.bytes), f.sha256)
    console.print(table)


@app.command()
def provenance(
    dataset_id: str,
    version: int | None = typer.Option(None, "--version", "-v", help="The version (default: the latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Where every row came from: request id, feedback id, prompt name:version, source and split."""
    made = _version(dataset_id, version)
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in made.rows], indent=2))
        return
    table = Table(
        "row", "split", "request", "feedback", "prompt", "source", title=f"{dataset_id} v{made.version}"
    )
    for r in made.rows:
        table.add_row(
            r.row_id,
            r.split,
            r.request_id,
            r.feedback_id or "-",
            f"{r.prompt_name}:{r.prompt_version}",
            r.source,
        )
    console.print(table)


@app.command("republish")
def republish_cmd(
    dataset_id: str,
    version: int | None = typer.Option(None, "--version", "-v", help="The version (default: the latest)."),
) -> None:
    """Send a recorded version's `dataset.published` again (same event id), e.g. after a broker outage."""

    async def action(settings: Settings, repository: Repository) -> str:
        async with kafka_publisher(settings) as publisher:
            return (await republish(repository, publisher, dataset_id, version)).id

    event_id = _run(action)
    console.print(f"{dataset_id}: dataset.published sent again (event {event_id})", highlight=False)
