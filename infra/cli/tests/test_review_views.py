"""Held requests in the CLI: waiting past `held` for the final answer, showing it, and the trail's
review lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from rich.console import Console

from cairn_audit.domain.records import AuditRecord
from cairn_bus import InMemoryPublisher
from cairn_cli.ask import Answer, print_answer
from cairn_cli.responses import ResponseWatcher, is_final
from cairn_cli.trail_view import render_trail, review_line
from cairn_events import ResponseCompletedV1, ResponseStatus, ReviewRequestedV1, ReviewResolvedV1
from cairn_testing import schema_examples

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def response(rid: str, status: ResponseStatus, text: str | None = None) -> ResponseCompletedV1:
    return ResponseCompletedV1(
        request_id=rid,
        tenant="default",
        status=status,
        text=text,
        reason="held for human review (review rev-1); the final answer follows"
        if status is ResponseStatus.HELD
        else None,
        completed_at=T0,
    )


class FakeConsumer:
    """`getmany` hands out prepared batches of records, then empty ones."""

    def __init__(self, *batches: list[ResponseCompletedV1]) -> None:
        publisher = InMemoryPublisher("/cairn/test")
        self.batches = [
            {0: [SimpleNamespace(headers=m.headers, value=m.value) for m in map(publisher.build, batch)]}
            for batch in batches
        ]
        self.calls = 0

    async def getmany(self, timeout_ms: int = 0) -> dict[int, list[Any]]:
        self.calls += 1
        return self.batches.pop(0) if self.batches else {}


def watcher(*batches: list[ResponseCompletedV1]) -> ResponseWatcher:
    found = ResponseWatcher("unused:9092")
    found._consumer = FakeConsumer(*batches)  # type: ignore[assignment]
    return found


async def test_a_held_request_is_returned_held_unless_the_final_answer_is_asked_for() -> None:
    held, done = response("r1", ResponseStatus.HELD), response("r1", ResponseStatus.COMPLETED, "42")
    quick = watcher([held], [done])
    assert (await quick.wait_for(["r1"], timeout=5))["r1"] == held
    patient = watcher([held], [done])
    assert (await patient.wait_for(["r1"], timeout=5, until_final=True))["r1"] == done
    assert is_final(done)
    assert not is_final(held)


async def test_a_final_answer_is_never_replaced_and_arrives_even_in_one_batch() -> None:
    held, done = response("r1", ResponseStatus.HELD), response("r1", ResponseStatus.BLOCKED)
    got = await watcher([held, done, held]).wait_for(["r1"], timeout=5)
    assert got["r1"] == done


async def test_waiting_for_the_final_answer_gives_up_at_the_timeout_with_the_hold() -> None:
    held = response("r1", ResponseStatus.HELD)
    got = await watcher([held]).wait_for(["r1"], timeout=0.5, until_final=True)
    assert got["r1"] == held


def test_a_held_answer_says_how_it_goes_on() -> None:
    console = Console(record=True, width=200)
    print_answer(console, Answer("q?", "r1", response("r1", ResponseStatus.HELD), "2 hops"))
    out = console.export_text()
    assert "held for human review: held for human review (review rev-1)" in out
    assert "cairn safety reviews decide ID approve|edit|reject" in out
    assert "A:" not in out


def record(event: Any, n: int, cause: str | None = None) -> AuditRecord:
    return AuditRecord(
        event_id=f"e{n}",
        event_type=event.event_type,
        source="/cairn/safety",
        event_time=T0 + timedelta(seconds=n),
        topic=event.topic,
        partition=0,
        offset=n,
        payload=event.model_dump(mode="json"),
        headers={},
        causation_id=cause,
    )


def test_the_trail_shows_the_hold_and_the_decision() -> None:
    [requested] = [e.event() for e in schema_examples(ReviewRequestedV1.event_type)]
    decisions = {e.payload["decision"]: e.event() for e in schema_examples(ReviewResolvedV1.event_type)}
    hold = review_line(requested.event_type, requested.model_dump(mode="json"))
    assert hold == f"[yellow]held for review {requested.review_id} ({requested.stage})[/yellow]"
    edit = decisions["edit"]
    line = review_line(edit.event_type, edit.model_dump(mode="json"))
    assert line is not None
    assert line.startswith(f"[bold]edit[/bold] by {edit.decided_by}: removed the internal escalation address")
    assert "(edited: You can reset your password from Settings" in line
    late = review_line(ReviewResolvedV1.event_type, decisions["reject"].model_dump(mode="json"))
    assert late is not None
    assert late.startswith("[bold]reject[/bold] by deadline (deadline): no decision within 3600 s")
    assert review_line(ResponseCompletedV1.event_type, {"status": "held"}) is None

    console = Console(record=True, width=300)
    console.print(render_trail("r1", [record(requested, 1), record(decisions["reject"], 2, cause="e1")]))
    out = console.export_text()
    assert f"held for review {requested.review_id}" in out
    assert "reject by deadline (deadline)" in out


def test_the_trail_shows_the_groundedness_gates_finding() -> None:
    from cairn_cli.trail_view import grounding_line

    flagged = {
        "status": "completed",
        "findings": [
            {"check": "toxicity", "label": "toxic", "score": 0.01, "fired": False},
            {
                "check": "groundedness",
                "label": "unsupported",
                "score": 0.25,
                "fired": True,
                "detail": "flagged; 2 of 2 sentence(s) unsupported by 2 chunk(s); lexical",
            },
        ],
    }
    assert grounding_line(flagged) == "[red]groundedness 0.25 unsupported[/red] (flagged)"
    assert grounding_line({"status": "completed", "findings": []}) is None
