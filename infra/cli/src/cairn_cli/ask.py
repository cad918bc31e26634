"""Asking questions through the platform as an upstream system: submit, wait for the response, show it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_bus.postgres import create_pool
from cairn_cli.config import CliSettings
from cairn_cli.kafka_io import producer
from cairn_cli.responses import ResponseWatcher, trail_summary
from cairn_cli.tracing import publish_traced
from cairn_events import RequestSubmittedV1, ResponseCompletedV1, ResponseStatus


@dataclass
class Answer:
    """A question, its request id, the response (None on timeout) and the trail summary."""

    question: str
    request_id: str
    response: ResponseCompletedV1 | None
    trail: str = ""


def question_request(
    question: str, prompt: str, tenant: str = "default", max_tokens: int = 160, **extra: Any
) -> RequestSubmittedV1:
    """A request that asks `question` through the prompt `prompt` (its `question` variable)."""
    return RequestSubmittedV1.model_validate(
        {
            "request_id": f"ask-{uuid.uuid4().hex[:10]}",
            "tenant": tenant,
            "prompt": prompt,
            "variables": {"question": question, **extra.pop("variables", {})},
            "params": {"max_tokens": max_tokens, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
            **extra,
        }
    )


async def ask_many(
    settings: CliSettings, requests: list[tuple[str, RequestSubmittedV1]], timeout: float
) -> list[Answer]:
    """Submit every request, wait for all responses (up to `timeout` s), then read each trail.

    A request held for human review is returned `held` at once (a reviewer may take up to the
    review's deadline); its final answer follows on `cairn.responses` (`cairn trail` shows it)."""
    await ensure_topics(settings.kafka_bootstrap)
    async with ResponseWatcher(settings.kafka_bootstrap) as watcher, producer(settings.kafka_bootstrap) as p:
        publisher = KafkaPublisher(p, "/cairn/cli", service="cli")
        for _, request in requests:
            await publish_traced(publisher, request)
        got = await watcher.wait_for([r.request_id for _, r in requests], timeout)
    answers = [Answer(q, r.request_id, got.get(r.request_id)) for q, r in requests]
    pool = await create_pool(settings.postgres_dsn)
    try:
        store = PostgresAuditStore(pool)
        await store.migrate()
        for answer in answers:
            # the audit service may still be storing the last hop
            for _ in range(20):
                records = await store.trail(answer.request_id)
                if (
                    any(r.event_type == ResponseCompletedV1.event_type for r in records)
                    or answer.response is None
                ):
                    break
                await asyncio.sleep(0.25)
            answer.trail = trail_summary(records)
    finally:
        await pool.close()
    return answers


def print_answer(console: Console, answer: Answer) -> None:
    """The answer, its sources, status and trail summary."""
    console.print(f"[bold]Q:[/bold] {answer.question}")
    r = answer.response
    if r is None:
        console.print(
            f"   [red]no response for {answer.request_id} yet[/red] (cairn trail {answer.request_id})"
        )
        return
    if r.status is ResponseStatus.HELD:
        console.print(f"   [yellow]held for human review[/yellow]: {r.reason}")
        console.print(
            "   [dim]the final answer follows on cairn.responses once a reviewer decides "
            "(cairn safety reviews list; cairn safety reviews decide ID approve|edit|reject) "
            "or the review's deadline passes[/dim]"
        )
    elif r.status is ResponseStatus.COMPLETED:
        console.print(f"[bold]A:[/bold] {(r.text or '').strip()}")
        for i, c in enumerate(r.citations, 1):
            console.print(f"   [dim][{i}] {c.source_uri}  score {c.score:.2f}  chunk {c.chunk_id}[/dim]")
    else:
        console.print(f"   [yellow]{r.status.value}[/yellow]: {r.reason}")
    usage = f"{r.usage.input_tokens}+{r.usage.output_tokens} tokens" if r.usage else "no tokens"
    model = f"{r.model}{'+' + r.adapter if r.adapter else ''}" if r.model else "no model"
    console.print(f"   [dim]{r.status.value} · {model} · {usage} · {answer.request_id}[/dim]")
    console.print(f"   [dim]trail: {answer.trail}[/dim]")
