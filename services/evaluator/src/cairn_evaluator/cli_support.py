"""What the evaluator's CLI commands share: settings from the local stack, deps, errors → exit 1."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import typer
from rich.console import Console

from cairn_bus import InMemoryPublisher, TransientError
from cairn_bus.settings import settings_or_local_stack
from cairn_evaluator.bootstrap import build
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.errors import EvaluatorError
from cairn_evaluator.settings import Settings

T = TypeVar("T")
console = Console()


def actor() -> str:
    """Who runs the command (the OS user)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


@asynccontextmanager
async def open_deps(publish: bool) -> AsyncIterator[Deps]:
    """Deps on PostgreSQL and S3; with `publish`, a Kafka publisher (topics ensured) that may send
    exactly what the service declares. Set CAIRN_* variables win; the database, broker and S3 store
    come from the local stack where unset. Tests replace this function."""
    from cairn_evaluator.app import router

    settings = settings_or_local_stack(Settings)
    if not publish:
        async with build(settings, InMemoryPublisher()) as deps:
            yield deps
        return
    from cairn_bus.kafka import KafkaPublisher, ensure_topics, make_producer

    await ensure_topics(settings.kafka_bootstrap)
    producer = make_producer(settings)
    await producer.start()
    try:
        publisher = KafkaPublisher(
            producer, "/cairn/cli", allowed_types=router.published_types, service="cli"
        )
        async with build(settings, publisher) as deps:
            yield deps
    finally:
        await producer.stop()


def run_with(action: Callable[[Deps], Awaitable[T]], *, publish: bool = False) -> T:
    """Run `action` on fresh deps; refusals and outages become a message and exit status 1."""

    async def main() -> T:
        async with open_deps(publish) as deps:
            return await action(deps)

    try:
        return asyncio.run(main())
    except EvaluatorError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except (TransientError, OSError) as exc:
        console.print(f"[red]error:[/red] unavailable: {exc}", highlight=False)
        raise typer.Exit(1) from None
