"""The trail says what inference's response cache did for a completion and its response, and how the
routing policy chose the model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from cairn_audit.domain.records import AuditRecord
from cairn_cli.trail_view import cache_line, render_trail, route_line
from cairn_events import (
    CacheOutcome,
    CompletionGeneratedV1,
    Event,
    ResponseCompletedV1,
    RouteAttempt,
    RouteDecision,
)
from cairn_testing import schema_examples

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def example(cls: type[Event], cache: CacheOutcome | None) -> Event:
    found = schema_examples(cls.event_type)[0].event()
    return found.model_copy(update={"cache": cache})


def record(event: Event, n: int, cause: str | None = None) -> AuditRecord:
    return AuditRecord(
        event_id=f"e{n}",
        event_type=event.event_type,
        source="/cairn/test",
        event_time=T0 + timedelta(seconds=n),
        topic=event.topic,
        partition=0,
        offset=n,
        payload=event.model_dump(mode="json"),
        headers={},
        causation_id=cause,
    )


@pytest.mark.parametrize(
    ("cache", "shown"),
    [
        (
            CacheOutcome(result="hit", kind="exact", source_request_id="req-earlier"),
            "cache hit (exact) from req-earlier",
        ),
        (
            CacheOutcome(result="hit", kind="semantic", source_request_id="req-close", similarity=0.9876),
            "cache hit (semantic, similarity 0.988) from req-close",
        ),
        (CacheOutcome(result="miss", kind="exact"), "cache miss (stored)"),
        (CacheOutcome(result="miss", kind="semantic"), "cache miss (stored, with its question)"),
        (CacheOutcome(result="bypass", reason="not deterministic"), "cache bypass: not deterministic"),
    ],
    ids=["hit", "semantic-hit", "miss", "semantic-miss", "bypass"],
)
def test_the_trail_shows_what_the_cache_did(cache: CacheOutcome, shown: str) -> None:
    completion = example(CompletionGeneratedV1, cache)
    response = example(ResponseCompletedV1, cache)
    console = Console(record=True, width=400)
    console.print(render_trail("r1", [record(completion, 1), record(response, 2, cause="e1")]))
    lines = [line for line in console.export_text().splitlines() if "cairn." in line]
    assert len(lines) == 2
    assert all(shown in line for line in lines), lines


def test_without_a_cache_outcome_the_trail_says_nothing_of_the_cache() -> None:
    console = Console(record=True, width=400)
    console.print(render_trail("r1", [record(example(ResponseCompletedV1, None), 1)]))
    assert "cache" not in console.export_text()
    assert cache_line({"status": "completed"}) is None
    assert cache_line({"cache": None}) is None


def test_the_cache_line_is_markup_safe() -> None:
    line = cache_line({"cache": {"result": "bypass", "reason": "[bold]odd[/bold]"}})
    console = Console(record=True, width=200)
    console.print(line)
    assert "cache bypass: [bold]odd[/bold]" in console.export_text()


def test_the_trail_shows_how_the_routing_policy_chose_the_model() -> None:
    route = RouteDecision(
        policy="default",
        policy_version=3,
        rule="batch-work",
        chain=["cairn-qa-int8", "SmolLM2-135M-Instruct"],
        fallbacks=[RouteAttempt(model="cairn-qa-int8", reason="generation timed out after 2 s")],
    )
    completion = example(CompletionGeneratedV1, None).model_copy(update={"route": route})
    console = Console(record=True, width=400)
    console.print(render_trail("r1", [record(completion, 1)]))
    text = console.export_text()
    assert (
        "routed by default v3 rule batch-work; passed over cairn-qa-int8 (generation timed out after 2 s)"
        in text
    )
    assert route_line({"route": None}) is None
