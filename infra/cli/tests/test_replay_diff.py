"""`cairn replay --diff`: shadow requests planned and published, trails compared, the three outputs.

The platform is simulated by a publisher that, for every shadow request it is given, stores the
trail the services would write (with the replay id inherited through `cause`), so the whole run
(`run_replay_diff`) is exercised against the in-memory audit store.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cairn_audit.adapters.memory import InMemoryAuditStore
from cairn_audit.handlers import record_of
from cairn_bus import EventMeta, InMemoryPublisher
from cairn_bus.publisher import OutgoingMessage
from cairn_cli.diff_report import diff_json, render_html, render_table
from cairn_cli.replay_diff import (
    Overrides,
    ReplayDiff,
    is_answered,
    plan_shadow_requests,
    run_replay_diff,
    shadow_request_id,
)
from cairn_events import (
    ChatMessage,
    ContextAssembledV1,
    ContextChunk,
    FeedbackSubmittedV1,
    GenerationParams,
    InputScreenedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
    RetrievalOptions,
    TokenUsage,
    Verdict,
)
from cairn_events.base import ID_PATTERN
from cairn_observability.pricing import ModelPrice, PriceTable

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PRICES = PriceTable(default=ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0))


def chunk(n: int, text: str) -> ContextChunk:
    return ContextChunk(
        document_id=f"doc-{n}",
        chunk_id=f"doc-{n}#0",
        source_uri=f"file:///kb/{n}.md",
        content_hash=f"sha256:{n:064d}",
        score=0.9 - n / 100,
        text=text,
    )


CHUNKS = {
    1: chunk(1, "The assert statement raises AssertionError when its expression is false."),
    2: chunk(2, "The pass statement does nothing; it is a placeholder."),
    3: chunk(3, "Assertions are removed when Python runs with the -O option."),
}


def request(request_id: str, question: str, tenant: str = "acme") -> RequestSubmittedV1:
    return RequestSubmittedV1(
        request_id=request_id,
        tenant=tenant,
        prompt="qa",
        messages=[ChatMessage(role="user", content=question)],
        retrieval=RetrievalOptions(top_k=2),
        submitted_at=T0,
    )


async def store_trail(
    store: InMemoryAuditStore,
    publisher: InMemoryPublisher,
    req: RequestSubmittedV1,
    req_meta: EventMeta,
    *,
    prompt_version: int,
    chunks: list[ContextChunk],
    text: str,
    usage: tuple[int, int],
    seconds: float,
    verdict: Verdict = Verdict.ALLOW,
) -> list[OutgoingMessage]:
    """The events the services publish for `req` (each caused by the previous), stored as the audit does."""
    params = GenerationParams()
    messages = [ChatMessage(role="user", content=question_text(req))]
    context = ContextAssembledV1(
        request_id=req.request_id,
        tenant=req.tenant,
        prompt_name="qa",
        prompt_version=prompt_version,
        messages=messages,
        chunks=chunks,
        context_tokens=40,
        params=params,
        assembled_at=req.submitted_at,
    )
    screened = InputScreenedV1(
        request_id=req.request_id,
        tenant=req.tenant,
        verdict=Verdict.ALLOW,
        findings=[],
        policy="default",
        messages=messages,
        chunks=chunks,
        prompt_name="qa",
        prompt_version=prompt_version,
        params=params,
        screened_at=req.submitted_at,
    )
    response = ResponseCompletedV1(
        request_id=req.request_id,
        tenant=req.tenant,
        status=ResponseStatus.COMPLETED if verdict is Verdict.ALLOW else ResponseStatus.BLOCKED,
        text=text if verdict is Verdict.ALLOW else None,
        reason=None if verdict is Verdict.ALLOW else "output blocked",
        citations=chunks[:1],
        model="cairn-qa",
        usage=TokenUsage(input_tokens=usage[0], output_tokens=usage[1]),
        verdict=verdict,
        prompt_name="qa",
        prompt_version=prompt_version,
        completed_at=req.submitted_at + timedelta(seconds=seconds),
    )
    out = []
    meta = req_meta
    records = [record_of(req, req_meta)]
    for event in (context, screened, response):
        message = publisher.build(event, cause=meta)
        out.append(message)
        meta = message.meta
        assert message.event is not None
        records.append(record_of(message.event, meta))
    await store.append(records)
    return out


def question_text(req: RequestSubmittedV1) -> str:
    return str(req.messages[-1].content)


async def feedback(store: InMemoryAuditStore, request_id: str, corrected: str) -> None:
    event = FeedbackSubmittedV1(
        feedback_id=f"fb-{request_id}",
        request_id=request_id,
        tenant="acme",
        corrected_answer=corrected,
        submitted_at=T0 + timedelta(minutes=1),
    )
    await store.append([record_of(event, InMemoryPublisher().build(event).meta)])


class Platform(InMemoryPublisher):
    """Answers shadow requests the way the services would, with prompt v2: other chunks, other text."""

    def __init__(self, store: InMemoryAuditStore, answers: dict[str, str]) -> None:
        super().__init__("/cairn/cli")
        self.store = store
        self.answers = answers  # original request id -> new answer; others get none
        self.trails: dict[str, list[OutgoingMessage]] = {}

    async def send(self, message: OutgoingMessage) -> None:
        await super().send(message)
        event = message.event
        assert isinstance(event, RequestSubmittedV1)
        original = event.request_id.split(":rp-")[0]
        if original not in self.answers:
            return
        chunks = [CHUNKS[1], CHUNKS[3]] if original == "req-1" else [CHUNKS[2]]
        self.trails[original] = await store_trail(
            self.store,
            self,
            event,
            message.meta,
            prompt_version=2,
            chunks=chunks,
            text=self.answers[original],
            usage=(120, 30),
            seconds=3.0,
        )


@pytest.fixture
async def recorded() -> InMemoryAuditStore:
    """Three live requests answered with prompt v1; req-1 has a correction; a plain replay of req-2."""
    store = InMemoryAuditStore()
    live = InMemoryPublisher("/upstream")
    questions = {
        "req-1": "What does assert do?",
        "req-2": "What does <b>pass</b> do?",
        "req-3": "What is a lambda?",
    }
    for rid, question in questions.items():
        req = request(rid, question)
        meta = live.build(req).meta
        await store_trail(
            store,
            live,
            req,
            meta,
            prompt_version=1,
            chunks=[CHUNKS[1], CHUNKS[2]],
            text=f"Old answer to {question}",
            usage=(100, 20),
            seconds=2.0,
        )
    await feedback(store, "req-1", "The assert statement raises AssertionError when its expression is false.")
    # another tenant's request and a plain replay of req-2 (same request id) are not re-run
    other = request("req-other", "Hi?", tenant="beta")
    await store.append([record_of(other, live.build(other).meta)])
    replayed = request("req-2", questions["req-2"])
    replayed_meta = live.build(replayed, replay_id="old-replay", replay_of="x").meta
    await store.append([record_of(replayed, replayed_meta)])
    return store


def test_shadow_request_ids_are_stable_distinct_per_replay_and_valid() -> None:
    long_id = "r" * 128
    for original in ("req-1", long_id):
        first = shadow_request_id(original, "diff-a")
        assert first == shadow_request_id(original, "diff-a")
        assert first != shadow_request_id(original, "diff-b")
        assert re.fullmatch(ID_PATTERN, first)
        assert len(first) <= 128
    RequestSubmittedV1.model_validate(
        {**request("x", "q").model_dump(), "request_id": shadow_request_id(long_id, "r")}
    )


async def test_planning_applies_the_overrides_to_live_requests_of_the_tenant(
    recorded: InMemoryAuditStore,
) -> None:
    records = await recorded.in_range("cairn.requests", None, None)
    overrides = Overrides(prompt="qa:2", model="cairn-qa:2", retrieval_index="python-docs")
    planned = plan_shadow_requests(records, "diff-1", overrides, tenant="acme", now=T0 + timedelta(hours=1))
    assert [p.original.request_id for p in planned] == ["req-1", "req-2", "req-3"]
    shadow = planned[0].shadow
    assert (shadow.prompt, shadow.model) == ("qa:2", "cairn-qa:2")
    assert shadow.retrieval is not None
    assert (shadow.retrieval.collection, shadow.retrieval.top_k) == (
        "python-docs",
        2,
    )
    assert shadow.messages == planned[0].original.messages
    assert shadow.submitted_at == T0 + timedelta(hours=1)
    assert shadow.request_id == shadow_request_id("req-1", "diff-1")
    # the same replay id plans the same event ids (a re-run publishes nothing new)
    again = plan_shadow_requests(records, "diff-1", overrides, tenant="acme")
    assert [p.event_id for p in again] == [p.event_id for p in planned]
    with pytest.raises(ValueError, match="replay id"):
        plan_shadow_requests(records, "no spaces", overrides)


async def run(store: InMemoryAuditStore, platform: Platform, timeout_s: float = 5.0) -> ReplayDiff:
    progress: list[tuple[int, int]] = []
    diff = await run_replay_diff(
        store,
        platform,
        replay_id="diff-1",
        topic="cairn.requests",
        start=datetime.now(UTC) - timedelta(hours=1),  # the events were recorded just now
        end=datetime.now(UTC) + timedelta(hours=1),
        overrides=Overrides(prompt="qa:2"),
        tenant="acme",
        timeout_s=timeout_s,
        prices=PRICES,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert progress
    assert progress[-1][1] == 3
    return diff


async def test_the_diff_rows_match_the_trails(recorded: InMemoryAuditStore) -> None:
    platform = Platform(
        recorded, {"req-1": "The assert statement raises AssertionError.", "req-2": "Nothing."}
    )
    diff = await run(recorded, platform, timeout_s=0.6)

    # every shadow request is marked as a replay of its original, and its answer went to the shadow topic
    for message in platform.messages:
        if isinstance(message.event, RequestSubmittedV1):
            assert message.meta.replay_id == "diff-1"
            assert message.meta.replay_of is not None
    answers = [
        m for trail in platform.trails.values() for m in trail if isinstance(m.event, ResponseCompletedV1)
    ]
    assert {m.topic for m in answers} == {"cairn.responses.shadow"}

    assert diff.missing == ["req-3"]
    rows = {r.original_request_id: r for r in diff.rows}
    assert sorted(rows) == ["req-1", "req-2"]
    one = rows["req-1"]
    assert one.old.text == "Old answer to What does assert do?"
    assert one.new.text == "The assert statement raises AssertionError."
    assert (one.old.prompt, one.new.prompt) == ("qa:1", "qa:2")
    assert [c.chunk_id for c in one.chunks_added] == ["doc-3#0"]
    assert [c.chunk_id for c in one.chunks_removed] == ["doc-2#0"]
    assert (one.old.input_verdict, one.new.input_verdict) == ("allow", "allow")
    assert (one.old.output_verdict, one.new.output_verdict) == ("allow", "allow")
    assert (one.old.input_tokens, one.old.output_tokens, one.new.input_tokens, one.new.output_tokens) == (
        100,
        20,
        120,
        30,
    )
    assert one.old.cost_usd == pytest.approx(100e-6 + 40e-6)
    assert one.new.cost_usd == pytest.approx(120e-6 + 60e-6)
    assert one.old.latency_ms == 2000.0
    assert one.new.latency_ms is not None
    assert one.new.latency_ms >= 0
    # req-1 has a correction: token F1 of both answers against it; the new answer is closer
    assert one.score_kind == "f1"
    assert one.reference is not None
    assert one.old_score is not None
    assert one.new_score is not None
    assert one.new_score > one.old_score
    # req-2 has none: groundedness of each answer in its own chunks
    two = rows["req-2"]
    assert two.score_kind == "groundedness"
    assert two.reference is None
    assert two.changed
    assert two.question == "What does <b>pass</b> do?"
    # a plain replay of req-2 with the same request id is not part of its original trail
    assert two.old.prompt == "qa:1"

    agg = diff.aggregates()
    assert (agg["requests"], agg["answered"], agg["missing"], agg["changed_answers"]) == (3, 2, 1, 2)
    assert (agg["input_tokens_old"], agg["input_tokens_new"], agg["input_tokens_delta"]) == (
        200.0,
        240.0,
        40.0,
    )
    assert agg["f1_rows"] == 1
    assert agg["f1_new"] == one.new_score
    assert agg["groundedness_rows"] == 1


async def test_a_rerun_of_the_same_replay_stores_nothing_new(recorded: InMemoryAuditStore) -> None:
    answers = {"req-1": "A.", "req-2": "B.", "req-3": "C."}
    await run(recorded, Platform(recorded, answers))
    stored = await recorded.count()
    diff = await run(recorded, Platform(recorded, answers))
    assert await recorded.count() == stored
    assert diff.missing == []
    assert len(diff.rows) == 3


async def test_the_three_outputs(recorded: InMemoryAuditStore, tmp_path: Path) -> None:
    platform = Platform(recorded, {"req-1": "New <script>alert(1)</script> answer.", "req-2": "Nothing."})
    diff = await run(recorded, platform, timeout_s=0.6)

    data: dict[str, Any] = json.loads(json.dumps(diff_json(diff)))
    assert data["replay_id"] == "diff-1"
    assert data["overrides"] == {"prompt": "qa:2"}
    assert data["missing"] == ["req-3"]
    by_id = {r["original_request_id"]: r for r in data["rows"]}
    assert by_id["req-1"]["new"]["text"] == "New <script>alert(1)</script> answer."
    assert [c["chunk_id"] for c in by_id["req-1"]["chunks_added"]] == ["doc-3#0"]
    assert data["aggregates"]["answered"] == 2

    html = render_html(diff)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;pass&lt;/b&gt;" in html
    assert not re.search(r"""(src|href)\s*=|<link|@import|url\(""", html), "external assets"
    assert html.count("<tr") == 1 + len(diff.rows)

    console = Console(record=True, width=220)
    render_table(diff, console)
    text = console.export_text()
    assert "req-1" in text
    assert "doc-3#0" in text
    assert "req-3" in text
    assert "2/3 answered" in text


async def test_an_answer_counts_once_the_events_that_led_to_it_are_stored() -> None:
    store = InMemoryAuditStore()
    shadow = request("req-9:rp-000000000000", "Why?")
    publisher = InMemoryPublisher("/cairn/cli")
    req_meta = publisher.build(shadow, replay_id="diff-9", replay_of="orig-9").meta
    messages = await store_trail(
        InMemoryAuditStore(),
        publisher,
        shadow,
        req_meta,
        prompt_version=2,
        chunks=[CHUNKS[1]],
        text="Because.",
        usage=(1, 1),
        seconds=1.0,
    )
    records = [record_of(shadow, req_meta)] + [
        record_of(m.event, m.meta) for m in messages if m.event is not None
    ]
    answer_only = [records[0], records[-1]]  # the screening and context not stored yet
    assert not is_answered(answer_only, "diff-9")
    assert is_answered(records, "diff-9")
    assert not is_answered(records, "diff-other")
    await store.append(records)
    assert is_answered((await store.trails([shadow.request_id]))[shadow.request_id], "diff-9")
