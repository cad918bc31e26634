"""The console's operations pages (datasets and tuning jobs, alerts and dead letters, quality and cost
charts) over a fake audit API that stores real events and answers `GET /v1/events` as the audit
service does: by type, tenant and time, paged with `after`, oldest or newest first."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cairn_events import (
    AlertRaisedV1,
    DatasetPublishedV1,
    DeadLetterRecordedV1,
    Event,
    FeedbackSubmittedV1,
    ModelRegisteredV1,
    ResponseCompletedV1,
    TuningProgressedV1,
    TuningRequestedV1,
)
from cairn_events.common import DeadLetterKind, LoraConfig, TokenUsage
from cairn_gateway.console import pages_operations
from cairn_gateway.console.pages_operations import Buckets, chart_data
from cairn_observability.pricing import ModelPrice, PriceTable

from .console_world import ConsoleWorld, FakeApis, console_world

NOW = datetime.now(UTC)
PRICES = PriceTable(
    default=ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0),
    models={"cairn-qa": ModelPrice(input_per_mtok=100.0, output_per_mtok=1000.0)},
)


class AuditEvents:
    """Stored events behind a fake `GET /v1/events`."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(
        self, event: Event, at: datetime, *, tenant: str | None = "acme", replay_of: str | None = None
    ) -> None:
        seq = len(self.records) + 1
        self.records.append(
            {"seq": seq, "event_id": f"ev-{seq}", "event_type": event.event_type, "source": "/cairn/test",
             "event_time": at.isoformat(), "topic": event.topic, "partition": 0, "offset": seq, "key": None,
             "subject": None, "correlation_id": None, "causation_id": None, "tenant": tenant,
             "replay_of": replay_of, "replay_id": None, "payload": event.model_dump(mode="json"),
             "recorded_at": at.isoformat(), "hash": None}
        )  # fmt: skip

    def events(self, request: httpx.Request) -> list[dict[str, Any]]:
        q = request.url.params
        since = datetime.fromisoformat(q["since"]) if "since" in q else None
        until = datetime.fromisoformat(q["until"]) if "until" in q else None
        after = int(q.get("after", 0))
        found = [
            r for r in self.records
            if r["event_type"] == q.get("type", r["event_type"]) and r["tenant"] == q.get("tenant", r["tenant"])
            and (since is None or datetime.fromisoformat(r["event_time"]) >= since)
            and (until is None or datetime.fromisoformat(r["event_time"]) < until) and r["seq"] > after
        ]  # fmt: skip
        if q.get("order") == "newest":
            found.reverse()
        return found[: int(q.get("limit", 100))]


def answer(
    request_id: str, status: str, *, usage: tuple[int, int] | None = None, model: str = "cairn-qa"
) -> Event:
    return ResponseCompletedV1(
        request_id=request_id, tenant="acme", status=status, text="ok" if status == "completed" else None,
        model=model if usage else None, usage=TokenUsage(input_tokens=usage[0], output_tokens=usage[1]) if usage else None,
        completed_at=NOW,
    )  # fmt: skip


def hour_label(at: datetime) -> str:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0).strftime("%H:%M")


def job(job_id: str, version: int) -> TuningRequestedV1:
    return TuningRequestedV1(
        job_id=job_id, base_model="HuggingFaceTB/SmolLM2-135M-Instruct", dataset_id="support-qa",
        dataset_version=version, requested_by="cairn-feedback", requested_at=NOW,
        config=LoraConfig(target_modules=["q_proj", "v_proj"], learning_rate=2e-4, epochs=2, batch_size=8, seed=7),
    )  # fmt: skip


def progress(
    job_id: str, state: str, step: int, total: int | None, loss: float | None = None, **more: Any
) -> Event:
    return TuningProgressedV1(
        job_id=job_id, state=state, step=step, total_steps=total, loss=loss, progressed_at=NOW, **more
    )


@pytest.fixture
def audit() -> AuditEvents:
    return AuditEvents()


@pytest.fixture
async def world(audit: AuditEvents) -> AsyncIterator[ConsoleWorld]:
    apis = FakeApis()
    apis.answer("audit", "GET", "/v1/events", audit.events)
    async with console_world(apis, prices=PRICES) as w:
        yield w


def event_calls(world: ConsoleWorld, event_type: str) -> list[dict[str, str]]:
    return [q for path, q, _, _ in world.apis.calls_to("audit") if q.get("type") == event_type]


# -- datasets and tuning -------------------------------------------------------------------------------


async def test_datasets_and_tuning_jobs_with_their_latest_progress_and_model(
    world: ConsoleWorld, audit: AuditEvents
) -> None:
    audit.add(
        DatasetPublishedV1(
            dataset_id="support-qa", version=3, uri="s3://cairn/datasets/support-qa/v3/",
            manifest_uri="s3://cairn/datasets/support-qa/v3/manifest.json", row_count=120, train_rows=100,
            heldout_rows=20, files_sha256={"train.jsonl": "a" * 64, "heldout.jsonl": "b" * 64},
            rules=["min_rating:4", "dedupe:exact"], source_request_count=118, published_at=NOW,
        ), NOW - timedelta(hours=5), tenant=None,
    )  # fmt: skip
    audit.add(job("tune-a", 3), NOW - timedelta(hours=4), tenant=None)
    audit.add(job("tune-b", 3), NOW - timedelta(hours=3), tenant=None)
    audit.add(job("tune-c", 3), NOW - timedelta(hours=1), tenant=None)
    audit.add(progress("tune-a", "queued", 0, None), NOW - timedelta(hours=4), tenant=None)
    audit.add(progress("tune-a", "running", 10, 50, 2.5), NOW - timedelta(hours=3), tenant=None)
    audit.add(progress("tune-a", "succeeded", 50, 50, 0.75), NOW - timedelta(hours=2), tenant=None)
    audit.add(progress("tune-b", "running", 40, 100, 1.25), NOW - timedelta(hours=2), tenant=None)
    audit.add(
        ModelRegisteredV1(
            model_name="cairn-qa", version=7, base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
            adapter_uri="s3://cairn/adapters/tune-a/", dataset_id="support-qa", dataset_version=3, job_id="tune-a",
            config={"rank": 8}, metrics={"train_loss": 0.75}, code_version="abc123", registered_at=NOW,
        ), NOW - timedelta(minutes=90), tenant=None,
    )  # fmt: skip
    await world.login("root")
    page = await world.client.get("/console/datasets")
    assert page.status_code == 200, page.text
    text = page.text
    [dataset] = re.findall(r'<tr class="dataset".*?</tr>', text, re.S)
    assert 'data-version="3"' in dataset
    assert "120" in dataset
    assert "100 / 20" in dataset
    assert "<code>min_rating:4</code>" in dataset
    assert "manifest.json" in dataset

    rows = dict(re.findall(r'<tr class="job" id="job-([\w-]+)".*?>(.*?)</tr>', text, re.S))
    assert list(rows) == ["tune-c", "tune-b", "tune-a"]  # newest request first
    assert 'badge succeeded">succeeded' in rows["tune-a"]
    assert '<progress class="job-progress" max="50" value="50">' in rows["tune-a"]
    assert 'href="/console/models/cairn-qa" class="model-link">cairn-qa v7' in rows["tune-a"]
    assert "from 2.5000 over 2 reports" in rows["tune-a"]
    assert '<progress class="job-progress" max="100" value="40">' in rows["tune-b"]
    assert "step 40 / 100 (40%)" in rows["tune-b"]
    assert "1.2500" in rows["tune-b"]
    assert "model-link" not in rows["tune-b"]
    assert "badge requested" in rows["tune-c"]
    assert "not started" in rows["tune-c"]

    [progress_call] = event_calls(world, TuningProgressedV1.event_type)
    assert progress_call["order"] == "oldest"  # read forward, the last progress of a job wins
    assert datetime.fromisoformat(progress_call["since"]) == NOW - timedelta(hours=4)  # the oldest job listed


async def test_a_failed_job_shows_its_error(world: ConsoleWorld, audit: AuditEvents) -> None:
    audit.add(job("tune-x", 1), NOW - timedelta(hours=2), tenant=None)
    audit.add(
        progress("tune-x", "failed", 3, 50, message="CUDA out of memory"),
        NOW - timedelta(hours=1),
        tenant=None,
    )
    await world.login("root")
    text = (await world.client.get("/console/datasets")).text
    assert 'data-state="failed"' in text
    assert '<div class="error">CUDA out of memory</div>' in text


async def test_a_tenant_operator_is_told_platform_events_are_hidden(world: ConsoleWorld) -> None:
    await world.login("operator")
    page = await world.client.get("/console/datasets")
    assert page.status_code == 200
    assert 'id="platform-hint"' in page.text
    assert "No dataset has been published." in page.text
    assert not event_calls(world, TuningProgressedV1.event_type)  # no job: nothing more to read
    [(_, _, _, auth), *_] = world.apis.calls_to("audit")
    assert auth == f"Bearer {world.tokens['operator']}"


# -- alerts and dead letters ---------------------------------------------------------------------------


def alert(alert_id: str, name: str, severity: str, summary: str, value: float | None = None) -> AlertRaisedV1:
    return AlertRaisedV1(
        alert_id=alert_id, alert_name=name, severity=severity, summary=summary,
        labels={"tenant": "acme", "prompt": "qa"}, value=value, raised_at=NOW,
    )  # fmt: skip


@pytest.fixture
def alerting(audit: AuditEvents) -> AuditEvents:
    audit.add(
        alert("a1", "FeedbackScoreDropped", "warning", "Feedback fell to 3.1", 3.1), NOW - timedelta(hours=5)
    )
    audit.add(
        alert("a2", "TenantOverBudget", "critical", "acme spent <b>$6</b> of $5", 6.0),
        NOW - timedelta(hours=2),
    )
    audit.add(alert("a3", "FeedbackScoreDropped", "info", "Feedback recovered"), NOW - timedelta(hours=1))
    audit.add(alert("a0", "TenantOverBudget", "critical", "too old"), NOW - timedelta(days=9))
    audit.add(
        DeadLetterRecordedV1.from_message(
            kind=DeadLetterKind.SCHEMA_INVALID, reason="status: Input should be 'completed'", topic="cairn.responses",
            partition=2, offset=41, consumer_group="cairn-audit", key=b"req-9", value=b'{"status": "weird"}',
            headers=[("ce_type", b"cairn.response.completed.v1")], at=NOW,
        ), NOW - timedelta(hours=3), tenant=None,
    )  # fmt: skip
    return audit


async def test_alerts_newest_first_with_counts_and_dead_letters(
    world: ConsoleWorld, alerting: AuditEvents
) -> None:
    await world.login("root")
    page = await world.client.get("/console/alerts")
    assert page.status_code == 200
    text = page.text
    rows = re.findall(r'<tr class="alert" data-severity="(\w+)" data-alert="(\w+)"', text)
    assert rows == [("info", "FeedbackScoreDropped"), ("critical", "TenantOverBudget"),
                    ("warning", "FeedbackScoreDropped")]  # fmt: skip
    assert "too old" not in text  # outside the 7 days
    assert 'id="count-critical">1<' in text
    assert 'id="count-warning">1<' in text
    assert "acme spent &lt;b&gt;$6&lt;/b&gt; of $5" in text  # escaped
    assert "<code>prompt=qa</code> <code>tenant=acme</code>" in text
    [dead] = re.findall(r'<tr class="dead-letter".*?</tr>', text, re.S)
    assert 'data-kind="schema_invalid"' in dead
    assert "<code>cairn.responses</code> [2] @ 41" in dead
    assert "cairn-audit" in dead
    assert "{&#34;status&#34;: &#34;weird&#34;}" in dead  # the original value, decoded and escaped
    [alert_call] = event_calls(world, AlertRaisedV1.event_type)
    assert alert_call["order"] == "newest"


async def test_alerts_filter_by_severity_and_name(world: ConsoleWorld, alerting: AuditEvents) -> None:
    await world.login("root")
    text = (await world.client.get("/console/alerts", params={"severity": "critical"})).text
    assert re.findall(r'data-alert="(\w+)"', text) == ["TenantOverBudget"]
    text = (await world.client.get("/console/alerts", params={"name": "FeedbackScoreDropped"})).text
    assert re.findall(r'data-severity="(\w+)" data-alert', text) == ["info", "warning"]
    assert '<option value="FeedbackScoreDropped" selected>' in text
    text = (await world.client.get("/console/alerts", params={"window": "30d"})).text
    assert "too old" in text
    refused = await world.client.get("/console/alerts", params={"severity": "panic"})
    assert refused.status_code == 400


# -- quality and cost ----------------------------------------------------------------------------------


def values_of(svg: str, series: str) -> dict[str, float]:
    return {label: float(v) for label, v in re.findall(
        rf'data-series="{re.escape(series)}" data-label="([^"]+)" data-value="([^"]+)"', svg)}  # fmt: skip


def chart(text: str, chart_id: str) -> str:
    found = re.search(rf'<svg [^>]*id="{chart_id}".*?</svg>', text, re.S)
    assert found is not None, chart_id
    return found.group(0)


async def test_charts_count_requests_tokens_cost_and_quality_per_hour(
    world: ConsoleWorld, audit: AuditEvents
) -> None:
    early, late = NOW - timedelta(hours=20), NOW - timedelta(hours=2)
    audit.add(answer("req-1", "completed", usage=(1000, 100)), early)
    audit.add(answer("req-2", "blocked"), early)
    audit.add(answer("req-3", "held", usage=(500, 50)), early)
    audit.add(answer("req-3", "completed", usage=(500, 50)), late)  # released: counted once, as completed
    audit.add(answer("req-4", "completed", usage=(2000, 200), model="other"), late)
    audit.add(
        answer("req-1", "completed", usage=(1000, 100)), late, replay_of="ev-1"
    )  # a replay: not counted
    audit.add(FeedbackSubmittedV1(feedback_id="f1", request_id="req-1", rating=5, submitted_at=NOW), late)
    audit.add(
        FeedbackSubmittedV1(feedback_id="f2", request_id="req-4", thumbs="down", submitted_at=NOW), late
    )
    audit.add(answer("req-0", "completed", usage=(1, 1)), NOW - timedelta(days=2))  # before the window
    await world.login("operator")
    page = await world.client.get("/console/charts")
    assert page.status_code == 200, page.text
    text = page.text

    requests = chart(text, "chart-requests")
    assert values_of(requests, "completed") == {hour_label(early): 1, hour_label(late): 2}
    assert values_of(requests, "blocked") == {hour_label(early): 1}
    assert values_of(requests, "held") == {}
    assert 'id="total-requests">4<' in text

    tokens = chart(text, "chart-tokens")
    assert values_of(tokens, "input") == {hour_label(early): 1000, hour_label(late): 2500}
    assert values_of(tokens, "output") == {hour_label(early): 100, hour_label(late): 250}

    cost = values_of(chart(text, "chart-cost"), "cost")  # cairn-qa at 100/1000 per Mtok, others at 1/2
    assert cost[hour_label(early)] == pytest.approx(0.2)
    assert cost[hour_label(late)] == pytest.approx(0.1 + 0.0024)
    assert 'id="total-cost">$0.3024<' in text

    quality = chart(text, "chart-quality")
    assert values_of(quality, "answers completed %") == {hour_label(early): 50, hour_label(late): 100}
    assert values_of(quality, "positive feedback %") == {hour_label(late): 50}

    calls = event_calls(world, ResponseCompletedV1.event_type)
    assert [c["order"] for c in calls] == ["oldest"]
    assert calls[0]["limit"] == "1000"
    assert 'id="answers-capped"' not in text


async def test_charts_page_through_the_audit_api_and_say_when_the_cap_is_hit(
    world: ConsoleWorld, audit: AuditEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = NOW - timedelta(hours=1)
    for i in range(1500):
        audit.add(answer(f"req-{i}", "completed", usage=(10, 1)), at)
    await world.login("operator")
    text = (await world.client.get("/console/charts")).text
    assert values_of(chart(text, "chart-requests"), "completed") == {hour_label(at): 1500}
    calls = event_calls(world, ResponseCompletedV1.event_type)
    assert [c.get("after") for c in calls] == [
        None,
        "1000",
    ]  # the second page starts after the first's last seq

    monkeypatch.setattr(pages_operations, "CHART_EVENT_CAP", 1000)
    text = (await world.client.get("/console/charts")).text
    assert 'id="answers-capped"' in text
    assert "Only the first 1000 answers" in text
    assert values_of(chart(text, "chart-requests"), "completed") == {hour_label(at): 1000}


async def test_charts_by_day_and_a_refused_window(world: ConsoleWorld, audit: AuditEvents) -> None:
    at = NOW - timedelta(days=3)
    audit.add(answer("req-1", "failed"), at)
    await world.login("viewer")
    text = (await world.client.get("/console/charts", params={"window": "7d"})).text
    assert values_of(chart(text, "chart-requests"), "failed") == {at.strftime("%m-%d"): 1}
    assert len(re.findall(r"<tr><td>", text)) == 7  # a figures row per day
    refused = await world.client.get("/console/charts", params={"window": "1y"})
    assert refused.status_code == 400


async def test_without_a_price_table_the_cost_chart_says_so() -> None:
    apis = FakeApis()
    apis.answer("audit", "GET", "/v1/events", [])
    async with console_world(apis) as world:
        await world.login("operator")
        text = (await world.client.get("/console/charts")).text
    assert '<p class="hint" id="chart-cost">No price table' in text
    assert 'id="total-cost">not priced<' in text
    for chart_id in ("chart-requests", "chart-tokens", "chart-quality"):
        assert "no data" in chart(text, chart_id)


def test_chart_data_buckets_and_skips_events_outside_the_window() -> None:
    start = datetime(2026, 12, 7, 0, tzinfo=UTC)
    buckets = Buckets(start, timedelta(hours=1), 3)
    assert buckets.labels() == ["00:00", "01:00", "02:00"]
    assert (
        Buckets.ending(datetime(2026, 12, 7, 2, 30, tzinfo=UTC), timedelta(hours=3), timedelta(hours=1))
        == buckets
    )
    store = AuditEvents()
    store.add(answer("r1", "completed", usage=(10, 5)), start + timedelta(minutes=59))
    store.add(answer("r2", "completed", usage=(1, 1)), start + timedelta(hours=3))  # after the last bucket
    store.add(answer("r3", "rejected"), start - timedelta(seconds=1))  # before the first
    data = chart_data(buckets, store.records, [], None)
    assert data.answers == 1
    assert data.statuses["completed"] == [1, 0, 0]
    assert data.tokens_in == [10, 0, 0]
    assert data.cost is None
    assert [r["completed_pct"] for r in data.rows()] == [100.0, None, None]
