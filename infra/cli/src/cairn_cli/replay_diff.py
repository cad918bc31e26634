"""Replay through a new version, with a diff: `cairn replay --diff`.

The recorded `cairn.request.submitted.v1` events of a window (read from the audit store) are run
again with overrides (prompt reference, model, retrieval collection) as shadow requests: each gets
a request id derived from the original's and the replay id, `ce_replayof` = the original event id
and `ce_replayid` = the replay id. Every event of their trails inherits the replay id, so their
answers land on `cairn.responses.shadow`, never on upstream's `cairn.responses`. Once the answers
are in the audit store, each original trail is compared with its shadow trail (`diff_rows`).

Re-running one replay id publishes the same event ids (the services and the audit store recognise
them), so a replay that timed out can be resumed by running it again with `--replay-id`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import fmean
from typing import Any, Literal

from cairn_audit.domain.records import AuditRecord
from cairn_audit.ports import AuditStore
from cairn_bus import derive_event_id
from cairn_bus.publisher import Publisher
from cairn_events import RequestSubmittedV1, RetrievalOptions
from cairn_events.base import ID_PATTERN
from cairn_observability.pricing import PriceTable

REPLAY_DIFF_EVENT = "cairn.replay.diff"
"""Mixed into the derived event id of a shadow request (with the original id and the replay id)."""

REQUEST = "cairn.request.submitted.v1"
CONTEXT = "cairn.context.assembled.v1"
INPUT_SCREENED = "cairn.input.screened.v1"
COMPLETION = "cairn.completion.generated.v1"
RESPONSE = "cairn.response.completed.v1"
FEEDBACK = "cairn.feedback.submitted.v1"

ScoreKind = Literal["f1", "groundedness"]


def shadow_request_id(original: str, replay_id: str) -> str:
    """The request id of `original`'s shadow in replay `replay_id`: stable, distinct per replay,
    within the request id charset and 128 characters (`<original, cut to 111>:rp-<12 hex>`)."""
    digest = hashlib.sha256(f"{replay_id}\x00{original}".encode()).hexdigest()[:12]
    return f"{original[:111]}:rp-{digest}"


@dataclass(frozen=True)
class Overrides:
    """What the replay changes in each request; None keeps the recorded value."""

    prompt: str | None = None
    model: str | None = None
    retrieval_index: str | None = None

    def apply(
        self, request: RequestSubmittedV1, request_id: str, submitted_at: datetime
    ) -> RequestSubmittedV1:
        """`request` as its shadow: new id and submission time, the overrides applied (validated)."""
        data = request.model_dump(mode="python")
        data.update(request_id=request_id, submitted_at=submitted_at)
        if self.prompt is not None:
            data["prompt"] = self.prompt
        if self.model is not None:
            data["model"] = self.model
        if self.retrieval_index is not None:
            retrieval = request.retrieval or RetrievalOptions()
            data["retrieval"] = retrieval.model_copy(update={"collection": self.retrieval_index}).model_dump(
                mode="python"
            )
        return RequestSubmittedV1.model_validate(data)

    def describe(self) -> dict[str, str]:
        """The overrides that are set, by option name."""
        named = {"prompt": self.prompt, "model": self.model, "retrieval_index": self.retrieval_index}
        return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True)
class ShadowRequest:
    """One recorded request and the shadow request that re-runs it."""

    original_event_id: str
    original: RequestSubmittedV1
    shadow: RequestSubmittedV1
    event_id: str


def plan_shadow_requests(
    records: Iterable[AuditRecord],
    replay_id: str,
    overrides: Overrides,
    *,
    tenant: str | None = None,
    now: datetime | None = None,
) -> list[ShadowRequest]:
    """The shadow requests for the live requests among `records` (replays of replays are left out;
    one per request id, the first recorded), optionally of one tenant."""
    import re

    if not re.match(ID_PATTERN, replay_id) or len(replay_id) > 64:
        raise ValueError(f"replay id {replay_id!r}: use 1-64 letters, digits and ._:-")
    submitted_at = now or datetime.now(UTC)
    seen: set[str] = set()
    out: list[ShadowRequest] = []
    for record in records:
        if record.event_type != REQUEST or record.replay_id is not None:
            continue
        original = RequestSubmittedV1.model_validate(record.payload)
        if (tenant is not None and original.tenant != tenant) or original.request_id in seen:
            continue
        seen.add(original.request_id)
        shadow = overrides.apply(original, shadow_request_id(original.request_id, replay_id), submitted_at)
        event_id = derive_event_id(record.event_id, REPLAY_DIFF_EVENT, replay_id)
        out.append(ShadowRequest(record.event_id, original, shadow, event_id))
    return out


async def publish_shadow_requests(
    publisher: Publisher, planned: Sequence[ShadowRequest], replay_id: str
) -> None:
    """Publish every shadow request, marked as a replay of its original."""
    for item in planned:
        await publisher.publish(
            item.shadow, event_id=item.event_id, replay_id=replay_id, replay_of=item.original_event_id
        )


# --- the trails ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """A context chunk as the diff shows it."""

    chunk_id: str
    source_uri: str
    score: float
    text: str


@dataclass
class TrailSummary:
    """What one trail (the original's or the shadow's) says about its request."""

    request_id: str
    answered: bool = False
    status: str | None = None
    text: str | None = None
    reason: str | None = None
    prompt: str | None = None
    model: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    input_verdict: str | None = None
    output_verdict: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    corrected_answer: str | None = None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def summarise(
    request_id: str, records: Iterable[AuditRecord], replay_id: str | None, prices: PriceTable | None = None
) -> TrailSummary:
    """The summary of the trail of `request_id` made of the events of replay `replay_id` (None: the
    live events only; a plain `cairn replay` of the same request id is not part of it). The final
    answer is the last `response.completed` that is not `held`, else the held one."""
    summary = TrailSummary(request_id)
    submitted: datetime | None = None
    responses: list[Mapping[str, Any]] = []
    usage: Mapping[str, Any] | None = None
    for r in records:
        if r.replay_id != replay_id:
            continue
        p = r.payload
        if r.event_type == REQUEST:
            submitted = _time(p.get("submitted_at"))
        elif r.event_type == CONTEXT:
            summary.chunks = [
                Chunk(
                    str(c["chunk_id"]),
                    str(c.get("source_uri", "")),
                    float(c.get("score", 0.0)),
                    str(c["text"]),
                )
                for c in p.get("chunks", [])
            ]
            summary.prompt = f"{p['prompt_name']}:{p['prompt_version']}"
        elif r.event_type == INPUT_SCREENED:
            summary.input_verdict = p.get("verdict")
        elif r.event_type == COMPLETION:
            usage = p.get("usage")
            summary.model = p.get("model") or summary.model
        elif r.event_type == RESPONSE:
            responses.append(p)
        elif r.event_type == FEEDBACK and p.get("corrected_answer"):
            summary.corrected_answer = p["corrected_answer"]
    final = next((p for p in reversed(responses) if p.get("status") != "held"), None)
    final = final or (responses[-1] if responses else None)
    if final is None:
        return summary
    summary.answered = True
    summary.status = final.get("status")
    summary.text = final.get("text")
    summary.reason = final.get("reason")
    summary.output_verdict = final.get("verdict")
    summary.model = final.get("model") or summary.model
    if final.get("prompt_name") and final.get("prompt_version"):
        summary.prompt = f"{final['prompt_name']}:{final['prompt_version']}"
    usage = final.get("usage") or usage
    if usage:
        summary.input_tokens = int(usage["input_tokens"])
        summary.output_tokens = int(usage["output_tokens"])
        if prices is not None:
            summary.cost_usd = prices.cost(summary.model, summary.input_tokens, summary.output_tokens)
    completed = _time(final.get("completed_at"))
    if submitted is not None and completed is not None:
        summary.latency_ms = round(max((completed - submitted).total_seconds(), 0.0) * 1000, 1)
    return summary


# --- the diff ------------------------------------------------------------------------------------


def token_f1(prediction: str, reference: str) -> float:
    """Token F1 of `prediction` against `reference` (the evaluator's metric)."""
    from cairn_evaluator.domain.metrics import token_f1 as f1

    return round(f1(prediction, reference), 4)


def groundedness(answer: str | None, chunks: Sequence[Chunk]) -> float | None:
    """Lexical groundedness of `answer` in its own chunks (the shared scorer, no embedder); None when
    there is no answer or no chunk."""
    from cairn_embedding.groundedness import score_groundedness

    if not answer:
        return None
    scored = score_groundedness(answer, [c.text for c in chunks], None)
    return scored.score if scored is not None else None


@dataclass
class DiffRow:
    """One request: its original and shadow answers and what changed between them."""

    original_request_id: str
    shadow_request_id: str
    tenant: str
    question: str
    old: TrailSummary
    new: TrailSummary
    chunks_added: list[Chunk]
    chunks_removed: list[Chunk]
    reference: str | None
    score_kind: ScoreKind | None
    old_score: float | None
    new_score: float | None

    @property
    def changed(self) -> bool:
        """Whether the shadow answered differently (status or text)."""
        return (self.old.status, self.old.text) != (self.new.status, self.new.text)


def question_of(request: RequestSubmittedV1) -> str:
    """The request's `question` variable, else its last user message, else its variables (what a
    reader recognises it by)."""
    if isinstance(request.variables.get("question"), str):
        return str(request.variables["question"])
    for message in reversed(request.messages):
        if message.role == "user":
            return str(message.content)
    return ", ".join(f"{k}={v}" for k, v in request.variables.items())


def diff_row(item: ShadowRequest, old: TrailSummary, new: TrailSummary) -> DiffRow:
    """Compare one original trail with its shadow's; score both against the feedback correction of
    the original when there is one (token F1), else each against its own chunks (groundedness)."""
    old_ids = {c.chunk_id for c in old.chunks}
    new_ids = {c.chunk_id for c in new.chunks}
    reference = old.corrected_answer
    kind: ScoreKind | None
    if reference:
        kind = "f1"
        old_score = token_f1(old.text, reference) if old.text is not None else None
        new_score = token_f1(new.text, reference) if new.text is not None else None
    else:
        old_score, new_score = groundedness(old.text, old.chunks), groundedness(new.text, new.chunks)
        kind = "groundedness" if old_score is not None or new_score is not None else None
    return DiffRow(
        original_request_id=item.original.request_id,
        shadow_request_id=item.shadow.request_id,
        tenant=item.original.tenant,
        question=question_of(item.original),
        old=old,
        new=new,
        chunks_added=[c for c in new.chunks if c.chunk_id not in old_ids],
        chunks_removed=[c for c in old.chunks if c.chunk_id not in new_ids],
        reference=reference,
        score_kind=kind,
        old_score=old_score,
        new_score=new_score,
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(fmean(present), 4) if present else None


def _total(values: Iterable[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(float(sum(present)), 6) if present else None


@dataclass
class ReplayDiff:
    """A whole replay with its diff."""

    replay_id: str
    start: datetime
    end: datetime
    overrides: Overrides
    rows: list[DiffRow]
    missing: list[str]
    """Original request ids whose shadow answer did not arrive in time."""

    def aggregates(self) -> dict[str, Any]:
        """Means and totals over the rows whose shadow answered."""
        rows = [r for r in self.rows if r.new.answered]
        out: dict[str, Any] = {
            "requests": len(self.rows) + len(self.missing),
            "answered": len(rows),
            "missing": len(self.missing),
            "changed_answers": sum(r.changed for r in rows),
            "status_changes": sum(r.old.status != r.new.status for r in rows),
            "chunks_added": sum(len(r.chunks_added) for r in rows),
            "chunks_removed": sum(len(r.chunks_removed) for r in rows),
        }
        for kind in ("f1", "groundedness"):
            scored = [r for r in rows if r.score_kind == kind]
            out[f"{kind}_rows"] = len(scored)
            out[f"{kind}_old"] = _mean(r.old_score for r in scored)
            out[f"{kind}_new"] = _mean(r.new_score for r in scored)
        for name in ("input_tokens", "output_tokens", "cost_usd"):
            old = _total(getattr(r.old, name) for r in rows)
            new = _total(getattr(r.new, name) for r in rows)
            out[f"{name}_old"], out[f"{name}_new"] = old, new
            out[f"{name}_delta"] = round(new - old, 6) if old is not None and new is not None else None
        old_ms, new_ms = _mean(r.old.latency_ms for r in rows), _mean(r.new.latency_ms for r in rows)
        out["latency_ms_old"], out["latency_ms_new"] = old_ms, new_ms
        out["latency_ms_delta"] = (
            round(new_ms - old_ms, 1) if old_ms is not None and new_ms is not None else None
        )
        return out


def build_diff(
    replay_id: str,
    start: datetime,
    end: datetime,
    overrides: Overrides,
    planned: Sequence[ShadowRequest],
    original_trails: Mapping[str, Sequence[AuditRecord]],
    shadow_trails: Mapping[str, Sequence[AuditRecord]],
    prices: PriceTable | None = None,
) -> ReplayDiff:
    """The diff of every planned request whose shadow answered; the others are `missing`."""
    rows: list[DiffRow] = []
    missing: list[str] = []
    for item in planned:
        new = summarise(
            item.shadow.request_id, shadow_trails.get(item.shadow.request_id, ()), replay_id, prices
        )
        if not new.answered:
            missing.append(item.original.request_id)
            continue
        old = summarise(
            item.original.request_id, original_trails.get(item.original.request_id, ()), None, prices
        )
        rows.append(diff_row(item, old, new))
    return ReplayDiff(replay_id, start, end, overrides, rows, missing)


def is_answered(records: Iterable[AuditRecord], replay_id: str) -> bool:
    """Whether a shadow trail holds an answer of replay `replay_id` and every event that led to it.

    The audit service reads each topic at its own pace, so the answer may be stored before the
    events that caused it: the trail counts as answered once the chain of causes from an answer back
    to the request (`causation_id` links) is stored whole.
    """
    mine = [r for r in records if r.replay_id == replay_id]
    by_id = {r.event_id: r for r in mine}
    for answer in (r for r in mine if r.event_type == RESPONSE):
        current: AuditRecord | None = answer
        while current is not None and current.event_type != REQUEST:
            current = by_id.get(current.causation_id) if current.causation_id else None
        if current is not None:
            return True
    return False


async def wait_for_answers(
    store: AuditStore,
    shadow_ids: Sequence[str],
    replay_id: str,
    timeout_s: float,
    on_progress: Callable[[int, int], None] | None = None,
    poll_s: float = 0.5,
) -> dict[str, list[AuditRecord]]:
    """The shadow trails, once every shadow request is answered or `timeout_s` has passed;
    `on_progress(answered, total)` after every look at the audit store."""
    deadline = time.monotonic() + timeout_s
    while True:
        trails = await store.trails(shadow_ids)
        answered = sum(is_answered(records, replay_id) for records in trails.values())
        if on_progress is not None:
            on_progress(answered, len(shadow_ids))
        if answered == len(shadow_ids) or time.monotonic() >= deadline:
            return trails
        await asyncio.sleep(poll_s)


# --- the run -------------------------------------------------------------------------------------


async def run_replay_diff(
    store: AuditStore,
    publisher: Publisher,
    *,
    replay_id: str,
    topic: str,
    start: datetime,
    end: datetime,
    overrides: Overrides,
    tenant: str | None,
    timeout_s: float,
    prices: PriceTable | None,
    on_planned: Callable[[int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReplayDiff:
    """Plan the window's shadow requests, publish them, wait for their answers, diff the trails."""
    records = await store.in_range(topic, start, end)
    planned = plan_shadow_requests(records, replay_id, overrides, tenant=tenant)
    if on_planned is not None:
        on_planned(len(planned))
    await publish_shadow_requests(publisher, planned, replay_id)
    shadow_trails = await wait_for_answers(
        store, [p.shadow.request_id for p in planned], replay_id, timeout_s, on_progress
    )
    original_trails = await store.trails([p.original.request_id for p in planned])
    return build_diff(replay_id, start, end, overrides, planned, original_trails, shadow_trails, prices)
