"""`cairn tune`: request LoRA tuning jobs, follow and cancel them, register a base model version."""

from __future__ import annotations

import asyncio
import getpass
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cairn_bus import Publisher, TransientError
from cairn_bus.direct_access import direct_access
from cairn_bus.settings import settings_or_local_stack
from cairn_events import LoraConfig, Quantization, TuningRequestedV1
from cairn_tuner.domain.jobs import Job, JobState
from cairn_tuner.ports import JobRepository
from cairn_tuner.registration import register_base as register_base_version
from cairn_tuner.settings import DEFAULT_BASE_MODEL, Settings

T = TypeVar("T")

app = typer.Typer(
    help="LoRA tuning jobs: start, follow, list and cancel them; register a base model version.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


class CliError(Exception):
    """A problem to report in one line (exit status 1)."""


def load_settings() -> Settings:
    """CAIRN_* variables; the broker, database and S3 of the local stack for what they leave unset."""
    return settings_or_local_stack(Settings)


@asynccontextmanager
async def open_repo(settings: Settings) -> AsyncIterator[JobRepository]:
    """The PostgreSQL job repository (tables migrated), closed after the block."""
    from cairn_bus.postgres import create_pool
    from cairn_tuner.adapters.postgres import PostgresJobRepository

    pool = await create_pool(settings.postgres_dsn, 1, 2)
    try:
        repo = PostgresJobRepository(pool)
        await repo.migrate()
        yield repo
    finally:
        await pool.close()


@asynccontextmanager
async def open_publisher(settings: Settings, source: str) -> AsyncIterator[Publisher]:
    """A Kafka publisher with `source` as ce_source (`cli`: requests; `tuner`: registrations)."""
    from cairn_bus.kafka import KafkaPublisher, ensure_topics, make_producer
    from cairn_tuner.app import router

    await ensure_topics(settings.kafka_bootstrap)
    producer = make_producer(settings)
    await producer.start()
    try:
        allowed = router.published_types if source == "tuner" else None
        yield KafkaPublisher(producer, f"/cairn/{source}", allowed_types=allowed, service=source)
    finally:
        await producer.stop()


def _run(action: Coroutine[Any, Any, T]) -> T:
    """Run `action`; errors become a message and exit status 1."""
    try:
        return asyncio.run(action)
    except CliError as exc:
        _error(str(exc))
    except (TransientError, OSError) as exc:
        _error(f"cannot reach the database or broker: {exc}")
    except (LookupError, ValueError) as exc:
        _error(str(exc))
    except Exception as exc:  # e.g. the broker's client errors: still one line, no traceback
        _error(f"{type(exc).__name__}: {exc}")


def _error(text: str) -> NoReturn:
    console.print(f"[red]error:[/red] {text}", highlight=False)
    raise typer.Exit(1)


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _describe(job: Job) -> str:
    total = f"/{job.total_steps}" if job.total_steps is not None else ""
    loss = f" loss {job.loss:.4f}" if job.loss is not None else ""
    cancel = " (cancel requested)" if job.cancel_requested and not job.state.terminal else ""
    text = f"{job.job_id}: {job.state.value}{cancel} step {job.step}{total}{loss} attempt {job.attempt}"
    if job.model_version is not None:
        text += f" -> {job.model_name}:{job.model_version}"
    if job.message:
        text += f"\n  {job.message}"
    return text


@app.command()
def start(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset id.")],
    version: Annotated[int, typer.Option("--version", min=1, help="Dataset version.")],
    base_model: Annotated[str, typer.Option(help="Base model folder name.")] = DEFAULT_BASE_MODEL,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 16,
    dropout: Annotated[float, typer.Option(help="LoRA dropout.")] = 0.05,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 2e-4,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 4,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    target_modules: Annotated[str, typer.Option(help="Adapted modules, comma separated.")] = "q_proj,v_proj",
    job_id: Annotated[str | None, typer.Option(help="Job id (default: a new one).")] = None,
    start_from: Annotated[
        str,
        typer.Option(
            "--from",
            help="`base`: a fresh adapter; `production`: continue the production adapter (the base when none).",
        ),
    ] = "base",
    replay_fraction: Annotated[
        float | None,
        typer.Option(
            help="Share of the production adapter's training rows mixed in again (default 0.3 from production)."
        ),
    ] = None,
) -> None:
    """Request a tuning job on a dataset version (publishes `tuning.requested`); prints the job id."""
    if start_from not in ("base", "production"):
        _error(f"--from is `base` or `production`, not {start_from!r}")
    try:
        event = TuningRequestedV1(
            job_id=job_id or f"tune-{uuid.uuid4().hex[:12]}",
            base_model=base_model,
            dataset_id=dataset,
            dataset_version=version,
            config=LoraConfig(
                rank=rank,
                alpha=alpha,
                dropout=dropout,
                target_modules=[m.strip() for m in target_modules.split(",") if m.strip()],
                learning_rate=lr,
                epochs=epochs,
                batch_size=batch_size,
                max_steps=max_steps,
                seed=seed,
                start_from="production" if start_from == "production" else "base",
                replay_fraction=replay_fraction,
            ),
            requested_by=_actor(),
            requested_at=datetime.now(UTC),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _error(f"invalid tuning request: {problems}")

    async def go() -> None:
        async with open_publisher(load_settings(), "cli") as publisher:
            await publisher.publish(event)

    _run(go())
    console.print(f"job [bold]{event.job_id}[/bold] requested", highlight=False)
    console.print(f"follow it with: cairn tune status {event.job_id} --follow", highlight=False)


def _with_repo(action: Callable[[JobRepository], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_repo(load_settings()) as repo:
            return await action(repo)

    return _run(go())


async def _get(repo: JobRepository, job_id: str) -> Job:
    job = await repo.get(job_id)
    if job is None:
        raise CliError(f"no job {job_id}")
    return job


@app.command()
def status(
    job_id: Annotated[str, typer.Argument(help="The job id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Poll until the job ends.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --follow.")] = 1.0,
) -> None:
    """A job's state, step and loss; with --follow, a progress bar until it ends (exit 1 unless it succeeded)."""
    if not follow:
        console.print(_describe(_with_repo(lambda repo: _get(repo, job_id))), highlight=False)
        return
    job = _with_repo(lambda repo: _follow(repo, job_id, interval))
    console.print(_describe(job), highlight=False)
    if job.state is not JobState.SUCCEEDED:
        raise typer.Exit(1)


async def _follow(repo: JobRepository, job_id: str, interval: float) -> Job:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(job_id, total=None)
        while True:
            job = await _get(repo, job_id)
            loss = f" loss {job.loss:.4f}" if job.loss is not None else ""
            bar.update(
                task, total=job.total_steps, completed=job.step, description=f"{job_id} {job.state}{loss}"
            )
            if job.state.terminal:
                return job
            await asyncio.sleep(interval)


@app.command("list")
def list_jobs(limit: Annotated[int, typer.Option(help="Most jobs shown.")] = 20) -> None:
    """The most recent jobs, newest first."""
    jobs = _with_repo(lambda repo: repo.list(limit))
    table = Table("job", "state", "step", "loss", "dataset", "base model", "model", "requested")
    for job in jobs:
        table.add_row(
            job.job_id,
            job.state.value
            + (" (cancel requested)" if job.cancel_requested and not job.state.terminal else ""),
            f"{job.step}/{job.total_steps}" if job.total_steps is not None else str(job.step),
            f"{job.loss:.4f}" if job.loss is not None else "",
            f"{job.dataset_id} v{job.dataset_version}",
            job.base_model,
            f"{job.model_name}:{job.model_version}" if job.model_version is not None else "",
            job.requested_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@app.command()
def cancel(job_id: Annotated[str, typer.Argument(help="The job id.")]) -> None:
    """Ask a queued or running job to stop; the tuner cancels it at its next step."""
    settings = load_settings()
    direct_access(
        settings, "tune.cancel", f"job:{job_id}", open_publisher=lambda: open_publisher(settings, "cli")
    )

    async def action(repo: JobRepository) -> Job:
        job = await repo.request_cancel(job_id, datetime.now(UTC))
        if job is None:
            raise CliError(f"no job {job_id}")
        return job

    job = _with_repo(action)
    if job.state.terminal:
        console.print(f"{job_id} already ended: {job.state.value}; nothing to cancel", highlight=False)
    else:
        console.print(f"{job_id}: cancel requested ({job.state.value})", highlight=False)


@app.command("register-base")
def register_base(
    model: Annotated[str, typer.Argument(help="Registry model name, e.g. cairn-qa.")],
    base_model: Annotated[str, typer.Option(help="The base model it serves.")] = DEFAULT_BASE_MODEL,
    quantization: Annotated[
        Quantization | None,
        typer.Option(help="Serve it quantized (inference must load that backend: CAIRN_QUANTIZED_BACKENDS)."),
    ] = None,
) -> None:
    """Register the base model, without adapter, as the next version of MODEL (once per base model and
    quantization)."""
    from cairn_tuner.adapters.code_version import detect_code_version

    settings = load_settings()
    try:
        Settings(model_name=model)
    except ValidationError:
        _error(f"invalid model name {model!r}: lower-case letters, digits and . _ - only")
    direct_access(
        settings,
        "tune.register_base",
        f"model:{model}",
        details={"base_model": base_model, "quantization": quantization.value if quantization else "none"},
        open_publisher=lambda: open_publisher(settings, "cli"),
    )

    async def go() -> tuple[Any, bool]:
        async with open_repo(settings) as repo, open_publisher(settings, "tuner") as publisher:
            code_version = settings.code_version or detect_code_version()
            return await register_base_version(
                repo,
                publisher,
                model,
                base_model,
                code_version,
                datetime.now(UTC),
                quantization.value if quantization else None,
            )

    registration, announced = _run(go())
    ref = f"{registration.model_name}:{registration.version}"
    served = f"{base_model} ({quantization.value})" if quantization else base_model
    if announced:
        console.print(f"registered {ref}: {served} without adapter", highlight=False)
    else:
        console.print(f"{ref} is already the registration of {served}; nothing done", highlight=False)
