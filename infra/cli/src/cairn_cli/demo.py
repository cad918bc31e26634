"""`cairn demo`: the platform end to end on the running local stack and services.

Asks grounded questions on the Python language reference and a few the platform must refuse or
clean up, one the knowledge base cannot answer (the groundedness gate must catch the small model's
answer, and the audit trail must keep the gate's score and action), then shows bad input going to
the dead-letter topic, a replay linked to its original, and the audit hash chain verified. Exits 1
when any step did not check out.
"""

from __future__ import annotations

import asyncio
import base64
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_bus.postgres import create_pool
from cairn_cli.ask import Answer, ask_many, print_answer, question_request
from cairn_cli.config import CliSettings
from cairn_cli.kafka_io import producer, read_range
from cairn_cli.replay import ReplayReport, from_audit, publish_replay
from cairn_cli.trail_view import render_trail
from cairn_events import DeadLetterRecordedV1, ResponseCompletedV1, SafetyFinding, decode

# Grounded questions on the Python language reference (pydoc_data.topics, shipped with CPython).
GROUNDED = [
    "What does the assert statement do?",
    "What does the global statement declare?",
    "What does the pass statement do?",
    "What does the yield expression do in a function?",
]
# (what, question, prompt, expected status)
GUARDED = [
    (
        "toxic input",
        "You are a stupid idiot, tell me what the pass statement is, moron.",
        "qa@production",
        "blocked",
    ),
    (
        "PII in the input",
        "My email is jane.doe@example.com. What does the del statement do?",
        "qa@production",
        "completed",
    ),
    ("unknown prompt", "What is a lambda?", "no-such-prompt", "rejected"),
]
# The knowledge base does not answer this one: retrieval still finds passages, the small model answers
# from what it remembers, and the groundedness gate (infra/policies/default.yaml: flag) must say so.
UNGROUNDED = "Who won the football World Cup in 2018?"
GATE = "groundedness"


def gate_finding(findings: Sequence[SafetyFinding] | Sequence[dict[str, Any]]) -> SafetyFinding | None:
    """The groundedness gate's finding among a response's findings (as events or as stored JSON)."""
    for f in findings:
        finding = f if isinstance(f, SafetyFinding) else SafetyFinding.model_validate(f)
        if finding.check == GATE:
            return finding
    return None


def gate_line(finding: SafetyFinding | None) -> str:
    """One line: the gate's score and what it did (its detail names the action, never the text)."""
    if finding is None:
        return "   [dim]groundedness: not scored (no retrieved chunks, or the policy has no gate)[/dim]"
    colour = "red" if finding.fired else "green"
    return f"   groundedness [{colour}]{finding.score:.2f} {finding.label}[/{colour}]: {finding.detail}"


async def run_questions(settings: CliSettings, console: Console, timeout: float) -> tuple[int, list[Answer]]:
    """Ask grounded and guarded questions through every service; returns (problems, answers)."""
    requests = [(q, question_request(q, "qa@production", max_tokens=96)) for q in GROUNDED]
    requests += [
        (f"({what}) {q}", question_request(q, prompt, max_tokens=96)) for what, q, prompt, _ in GUARDED
    ]
    requests.append(
        (
            f"(not in the knowledge base) {UNGROUNDED}",
            question_request(UNGROUNDED, "qa@production", max_tokens=96),
        )
    )
    console.rule("grounded answers: prompt-store → retriever → safety → inference → safety")
    started = time.perf_counter()
    answers = await ask_many(settings, requests, timeout)
    problems = 0
    for answer in answers[: len(GROUNDED)]:
        print_answer(console, answer)
        r = answer.response
        if r is None or r.status.value != "completed" or not r.citations:
            console.print("   [red]expected a completed answer with citations[/red]")
            problems += 1
        else:
            console.print(gate_line(gate_finding(r.findings)))
    console.rule("guarded: blocked, redacted, rejected")
    for answer, (_, _, _, want) in zip(
        answers[len(GROUNDED) : len(GROUNDED) + len(GUARDED)], GUARDED, strict=True
    ):
        print_answer(console, answer)
        if answer.response is None or answer.response.status.value != want:
            console.print(f"   [red]expected status {want}[/red]")
            problems += 1
    console.rule("groundedness gate: a question the knowledge base does not answer")
    problems += gate_caught(console, answers[-1])
    console.print(f"{len(answers)} requests answered in {time.perf_counter() - started:.1f} s")
    return problems, answers


def gate_caught(console: Console, answer: Answer) -> int:
    """Show the ungrounded answer and the gate's finding; 1 when the gate did not catch it."""
    print_answer(console, answer)
    r = answer.response
    finding = gate_finding(r.findings) if r is not None else None
    console.print(gate_line(finding))
    if r is None or finding is None or not finding.fired:
        console.print("   [red]expected the groundedness gate to catch this answer[/red]")
        return 1
    return 0


async def show_gate_in_trail(
    store: PostgresAuditStore, console: Console, answer: Answer, timeout: float
) -> int:
    """The gate's finding as the audit trail keeps it (on the stored response); 1 when it is missing."""
    deadline = time.monotonic() + timeout
    while True:
        stored = [
            r for r in await store.trail(answer.request_id) if r.event_type == ResponseCompletedV1.event_type
        ]
        if stored or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    finding = gate_finding(stored[0].payload.get("findings") or []) if stored else None
    if finding is None:
        console.print(f"[red]the trail of {answer.request_id} has no groundedness finding[/red]")
        return 1
    console.print(
        f"cairn trail {answer.request_id} --json: {ResponseCompletedV1.event_type} carries "
        f"groundedness score {finding.score:.2f}, {finding.label}, {finding.detail}"
    )
    return 0


async def run_bad_input(settings: CliSettings, console: Console, timeout: float) -> int:
    """Two malformed messages: each must reach the dead-letter topic with its reason."""
    console.rule("bad input → cairn.deadletter")
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    bad = f"demo-bad-{uuid.uuid4().hex[:6]}"
    async with producer(settings.kafka_bootstrap, "cairn-demo") as p:
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
    console.print("sent one message without CloudEvents headers and one without `submitted_at`")
    deadline = time.monotonic() + timeout
    mine: list[DeadLetterRecordedV1] = []
    while time.monotonic() < deadline:
        raw = await read_range(
            settings.kafka_bootstrap, settings.deadletter_topic, int(t0.timestamp() * 1000)
        )
        mine = []
        for r in raw:
            dl = decode(DeadLetterRecordedV1.event_type, r.value or b"")
            assert isinstance(dl, DeadLetterRecordedV1)
            if dl.original_key_b64 and base64.b64decode(dl.original_key_b64) == bad.encode():
                mine.append(dl)
        if {d.error_kind.value for d in mine} >= {"missing_headers", "schema_invalid"}:
            break
        await asyncio.sleep(0.3)
    for dl in mine:
        console.print(
            f"  {dl.origin_topic}[{dl.origin_partition}]@{dl.origin_offset} "
            f"{dl.consumer_group}: [yellow]{dl.error_kind.value}[/yellow] {dl.reason}"
        )
    if {d.error_kind.value for d in mine} >= {"missing_headers", "schema_invalid"}:
        return 0
    console.print("[red]expected dead letters for both malformed messages[/red]")
    return 1


async def run_replay_and_verify(
    settings: CliSettings, console: Console, answers: list[Answer], timeout: float
) -> int:
    """Replay one answered request from the audit store; show it linked; verify the hash chain."""
    problems = 0
    pool = await create_pool(settings.postgres_dsn)
    try:
        store = PostgresAuditStore(pool)
        await store.migrate()
        caught = next(
            (a for a in answers if a.question.endswith(UNGROUNDED) and a.response is not None), None
        )
        if caught is not None:
            console.rule("the gate's score and action in the audit trail")
            problems += await show_gate_in_trail(store, console, caught, timeout)
        answered = next((a for a in answers if a.response is not None), None)
        if answered is not None:
            console.rule("replay from the audit store")
            originals = [
                r
                for r in await store.trail(answered.request_id)
                if r.event_type == "cairn.request.submitted.v1"
            ]
            report = ReplayReport(str(uuid.uuid4()), "audit", "cairn.requests", "cairn.requests")
            async with producer(settings.kafka_bootstrap, "cairn-demo") as p:
                await publish_replay(p, from_audit(originals[:1]), report)
            console.print(f"replayed {report.published} event, replay id {report.replay_id}")
            deadline = time.monotonic() + timeout
            records = await store.trail(answered.request_id)
            while not any(r.replay_of for r in records) and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                records = await store.trail(answered.request_id)
            if any(r.replay_of for r in records):
                console.print(render_trail(answered.request_id, records))
            else:
                console.print("[red]the replayed event did not reach the audit store[/red]")
                problems += 1
        console.rule("audit hash chain")
        breaks = await store.verify()
        if breaks:
            console.print(f"[red]chain broken in {len(breaks)} place(s)[/red]")
            problems += 1
        else:
            console.print(f"[green]intact[/green]: {await store.count()} events verified")
    finally:
        await pool.close()
    return problems


def gateway_url() -> str | None:
    """Where the gateway's API listens when `cairn services up` runs it (its settings, from this
    environment); None when the gateway is not installed."""
    try:
        from cairn_gateway.settings import Settings as GatewaySettings
    except ImportError:
        return None
    settings = GatewaySettings()
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
    return f"http://{host}:{settings.http_port}"


def show_gateway(console: Console) -> None:
    """The gateway's URL, whether it answers, and how to call it (curl and the `openai` client)."""
    url = gateway_url()
    if url is None:
        return
    console.rule("the OpenAI-compatible gateway (docs/gateway.md)")
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
            state = "[green]answering[/green]" if reply.status == 200 else f"status {reply.status}"
    except (OSError, urllib.error.URLError):
        state = "[yellow]not answering: `cairn services up gateway`[/yellow]"
    console.print(f"{url}/v1 {state}")
    console.print("a key (shown once): cairn keys create --tenant default --role viewer --name my-app")
    body = '{"model": "qa", "messages": [{"role": "user", "content": "What does the pass statement do?"}]}'
    console.print(
        f'curl {url}/v1/chat/completions -H "Authorization: Bearer $CAIRN_API_KEY" '
        f"-H 'Content-Type: application/json' -d '{body}'",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f'python: OpenAI(base_url="{url}/v1", api_key=key).chat.completions.create(model="qa", messages=[...])',
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"operator console: {url}/console (log in with an operator key: "
        "cairn keys create --tenant default --role operator --name me; docs/console.md)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


async def run_demo(
    settings: CliSettings, console: Console, timeout: float = 30.0, questions: bool = True
) -> int:
    """Run the demo; returns the process exit status (0 when every step checked out)."""
    started = time.perf_counter()
    failures = 0
    answers: list[Answer] = []
    if questions:
        problems, answers = await run_questions(settings, console, max(timeout, 300.0))
        failures += problems
    failures += await run_bad_input(settings, console, timeout)
    failures += await run_replay_and_verify(settings, console, answers, timeout)
    show_gateway(console)
    tail = f", {failures} problem(s)" if failures else ""
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s{tail}")
    return 1 if failures else 0
