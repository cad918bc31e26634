"""`cairn demo`: the foundation end to end on the running local stack and services.

Submits requests as an upstream system would, sends malformed messages, shows each trail from the
audit store, the dead letters, a replay linked to its originals, and verifies the hash chain.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from datetime import UTC, datetime, timedelta

from rich.console import Console

from cairn_audit.adapters.postgres import PostgresAuditStore, create_pool
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_cli.config import CliSettings
from cairn_cli.kafka_io import producer, read_range
from cairn_cli.replay import ReplayReport, from_audit, publish_replay
from cairn_cli.trail_view import render_trail
from cairn_events import DeadLetterRecordedV1, RequestSubmittedV1, decode

QUESTIONS = [
    ("qa@production", {"topic": "generators"}, "What does the yield statement do?"),
    ("qa@production", {"topic": "scoping"}, "When does Python raise UnboundLocalError?"),
    ("qa:1", {"topic": "context managers"}, "What does a with statement guarantee?"),
]

# Grounded questions on the Python language reference (pydoc_data.topics, shipped with CPython).
GROUNDED = [
    "What does the assert statement do?",
    "What does the global statement declare?",
    "How does the with statement use a context manager?",
    "What does the yield expression do in a function?",
]
# Requests the platform must refuse or clean up.
GUARDED = [
    ("toxic input", "You are a stupid idiot, tell me what the pass statement is, moron."),
    (
        "PII in the input",
        "My email is jane.doe@example.com and my card is 4111 1111 1111 1111. What does the del statement do?",
    ),
]


async def run_questions(settings: CliSettings, console: Console, timeout: float) -> int:
    """Ask grounded and guarded questions through every service; returns how many went wrong."""
    from cairn_cli.ask import ask_many, print_answer, question_request

    requests = [(q, question_request(q, "qa@production")) for q in GROUNDED]
    requests += [(f"({label}) {q}", question_request(q, "qa@production")) for label, q in GUARDED]
    requests.append(
        ("(unknown prompt) What is a lambda?", question_request("What is a lambda?", "no-such-prompt"))
    )
    console.rule("grounded answers (retriever → safety → inference → safety)")
    started = time.perf_counter()
    answers = await ask_many(settings, requests, timeout)
    problems = 0
    for answer in answers[: len(GROUNDED)]:
        print_answer(console, answer)
        ok = (
            answer.response is not None
            and answer.response.status.value == "completed"
            and answer.response.citations
        )
        problems += 0 if ok else 1
    console.rule("guarded (blocked, redacted, rejected)")
    expected = ["blocked", "completed", "rejected"]
    for answer, want in zip(answers[len(GROUNDED) :], expected, strict=True):
        print_answer(console, answer)
        if answer.response is None or answer.response.status.value != want:
            console.print(f"   [red]expected status {want}[/red]")
            problems += 1
    console.print(f"{len(answers)} requests answered in {time.perf_counter() - started:.1f} s")
    return problems


async def _wait_stored(
    store: PostgresAuditStore, request_id: str, at_least: int, timeout: float
) -> list[object]:
    deadline = time.monotonic() + timeout
    while True:
        records = await store.trail(request_id)
        if len(records) >= at_least or time.monotonic() > deadline:
            return list(records)
        await asyncio.sleep(0.2)


async def run_demo(
    settings: CliSettings, console: Console, timeout: float = 30.0, questions: bool = True
) -> int:
    """Run the demo; returns the process exit status (0 when every step checked out)."""
    started = time.perf_counter()
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    created = await ensure_topics(settings.kafka_bootstrap)
    if created:
        console.print(f"created topics: {', '.join(created)}")
    pool = await create_pool(settings.postgres_dsn)
    store = PostgresAuditStore(pool)
    await store.migrate()
    failures = 0
    if questions:
        failures += await run_questions(settings, console, max(timeout, 300.0))
    try:
        request_ids = []
        async with producer(settings.kafka_bootstrap, "cairn-demo") as p:
            publisher = KafkaPublisher(p, "/cairn/demo", service="demo")
            for prompt, variables, question in QUESTIONS:
                rid = f"demo-{uuid.uuid4().hex[:8]}"
                event = RequestSubmittedV1.model_validate(
                    {
                        "request_id": rid,
                        "prompt": prompt,
                        "variables": variables,
                        "messages": [{"role": "user", "content": question}],
                        "submitted_at": datetime.now(UTC).isoformat(),
                    }
                )
                await publisher.publish(event)
                request_ids.append(rid)
            console.rule("bad input (dead letters)")
            bad = f"demo-bad-{uuid.uuid4().hex[:6]}"
            await p.send_and_wait("cairn.requests", b"{not json", key=bad.encode(), headers=[("ce_id", b"x")])
            await p.send_and_wait(
                "cairn.requests",
                b'{"request_id": "' + bad.encode() + b'", "prompt": "qa"}',
                key=bad.encode(),
                headers=[
                    ("ce_specversion", b"1.0"),
                    ("ce_id", uuid.uuid4().hex.encode()),
                    ("ce_source", b"/cairn/demo"),
                    ("ce_type", b"cairn.request.submitted.v1"),
                    ("ce_subject", bad.encode()),
                    ("content-type", b"application/json"),
                ],
            )
            console.print("sent one message without CloudEvents headers and one missing `submitted_at`")

        console.rule("trails (from the audit store)")
        for rid in request_ids:
            records = await _wait_stored(store, rid, 1, timeout)
            if not records:
                console.print(
                    f"[red]no trail for {rid}: is the audit service running? (cairn services status)[/red]"
                )
                failures += 1
                continue
            console.print(render_trail(rid, records))  # type: ignore[arg-type]

        console.rule("dead letters")
        deadline = time.monotonic() + timeout
        mine: list[DeadLetterRecordedV1] = []
        while time.monotonic() < deadline and len(mine) < 2:
            raw = await read_range(
                settings.kafka_bootstrap, settings.deadletter_topic, int(t0.timestamp() * 1000)
            )
            mine = []
            for r in raw:
                dl = decode(DeadLetterRecordedV1.event_type, r.value or b"")
                assert isinstance(dl, DeadLetterRecordedV1)
                if dl.original_key_b64 and base64.b64decode(dl.original_key_b64) == bad.encode():
                    mine.append(dl)
            await asyncio.sleep(0.3)
        for dl in mine:
            console.print(
                f"  {dl.origin_topic}[{dl.origin_partition}]@{dl.origin_offset} "
                f"{dl.consumer_group}: [yellow]{dl.error_kind.value}[/yellow] {dl.reason}"
            )
        if len(mine) < 2:
            console.print("[red]expected two dead letters for the malformed messages[/red]")
            failures += 1

        console.rule("replay")
        originals = await store.in_range("cairn.requests", t0, datetime.now(UTC))
        originals = [r for r in originals if r.subject in set(request_ids)]
        report = ReplayReport(str(uuid.uuid4()), "audit", "cairn.requests", "cairn.requests")
        async with producer(settings.kafka_bootstrap, "cairn-demo") as p:
            await publish_replay(p, from_audit(originals), report)
        console.print(f"replayed {report.published} request event(s), replay id {report.replay_id}")
        first = request_ids[0]
        records = await _wait_stored(store, first, 2, timeout)
        replayed = [r for r in records if getattr(r, "replay_of", None)]
        if replayed:
            console.print(render_trail(first, records))  # type: ignore[arg-type]
        else:
            console.print("[red]the replayed event did not reach the audit store[/red]")
            failures += 1

        console.rule("audit chain")
        breaks = await store.verify()
        count = await store.count()
        if breaks:
            console.print(f"[red]chain broken in {len(breaks)} place(s)[/red]")
            failures += 1
        else:
            console.print(f"[green]intact[/green]: {count} events verified")
    finally:
        await pool.close()
    console.print(
        f"demo finished in {time.perf_counter() - started:.1f} s"
        + (f", {failures} problem(s)" if failures else "")
    )
    return 1 if failures else 0
