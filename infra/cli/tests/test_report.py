"""`cairn report`: figures computed from a fabricated audit trail, rendered as self-contained HTML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cairn_cli.report import (
    ReportData,
    bucket_seconds,
    collect,
    lexical_groundedness,
    parse_since,
    percentile,
    render_html,
)
from cairn_cli.report_svg import bar_chart, line_chart, nice_ticks
from cairn_observability.pricing import ModelPrice, PriceTable

END = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=24)
PRICES = PriceTable(
    default=ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0),
    models={"smol": ModelPrice(input_per_mtok=10.0, output_per_mtok=20.0)},
)
SVG = "{http://www.w3.org/2000/svg}"


@dataclass
class Record:
    event_type: str
    topic: str
    event_time: datetime
    payload: dict[str, Any]
    subject: str | None = None
    tenant: str | None = "acme"


@dataclass
class FakeAudit:
    """The audit store's `in_range`, over records held in memory."""

    records: list[Record] = field(default_factory=list)

    async def in_range(
        self, topic: str, start: datetime | None, end: datetime | None, limit: int | None = None
    ) -> Sequence[Record]:
        return [
            r
            for r in self.records
            if r.topic == topic
            and (start is None or r.event_time >= start)
            and (end is None or r.event_time < end)
        ][:limit]


class FakeScores:
    def __init__(self, rows: list[tuple[datetime, str, float]]) -> None:
        self.rows = rows

    async def groundedness(self, start: datetime, end: datetime) -> list[tuple[datetime, str, float]]:
        return [r for r in self.rows if start <= r[0] < end]


def request_trail(
    audit: FakeAudit,
    rid: str,
    at: datetime,
    seconds: float,
    status: str = "completed",
    verdict: str = "allow",
) -> None:
    done = at + timedelta(seconds=seconds)
    audit.records.append(
        Record(
            "cairn.request.submitted.v1",
            "cairn.requests",
            at,
            {"request_id": rid, "submitted_at": at.isoformat()},
            rid,
        )
    )
    audit.records.append(
        Record(
            "cairn.input.screened.v1",
            "cairn.screenings",
            at + timedelta(seconds=0.1),
            {"request_id": rid, "verdict": "allow"},
            rid,
        )
    )
    if status == "completed":
        audit.records.append(
            Record(
                "cairn.completion.generated.v1",
                "cairn.completions",
                done,
                {
                    "request_id": rid,
                    "tenant": "acme",
                    "model": "smol",
                    "usage": {"input_tokens": 1000, "output_tokens": 100},
                    "generated_at": done.isoformat(),
                },
                rid,
            )
        )
    audit.records.append(
        Record(
            "cairn.response.completed.v1",
            "cairn.responses",
            done,
            {
                "request_id": rid,
                "status": status,
                "model": "smol" if status == "completed" else None,
                "usage": {"input_tokens": 1000, "output_tokens": 100} if status == "completed" else None,
                "verdict": verdict if status in ("completed", "blocked") else None,
                "text": "the assert statement checks a condition" if status == "completed" else None,
                "citations": [{"text": "The assert statement checks a condition while debugging."}],
                "completed_at": done.isoformat(),
            },
            rid,
        )
    )


@pytest.fixture
def audit() -> FakeAudit:
    audit = FakeAudit()
    for i in range(40):
        at = START + timedelta(minutes=30 * i + 1)
        request_trail(audit, f"r-{i}", at, seconds=1.0 + i / 10)
    request_trail(audit, "blocked-1", START + timedelta(hours=3), 0.5, status="blocked", verdict="block")
    request_trail(audit, "failed-1", START + timedelta(hours=4), 2.0, status="failed")
    for i, (rating, thumbs) in enumerate([(5, "up"), (4, None), (1, "down"), (None, "up")]):
        when = START + timedelta(hours=6 + i)
        payload: dict[str, Any] = {
            "request_id": f"r-{i}",
            "rating": rating,
            "thumbs": thumbs,
            "submitted_at": when.isoformat(),
        }
        audit.records.append(Record("cairn.feedback.submitted.v1", "cairn.feedback", when, payload, f"r-{i}"))
    for i, value in enumerate([0.31, 0.42]):
        when = START + timedelta(hours=10 + i)
        audit.records.append(
            Record(
                "cairn.alert.raised.v1",
                "cairn.alerts",
                when,
                {
                    "alert_name": "PromptDrift",
                    "severity": "warning",
                    "summary": "prompt embeddings drifted",
                    "labels": {"signal": "prompt_embedding"},
                    "value": value,
                    "raised_at": when.isoformat(),
                },
            )
        )
    # outside the window: never counted
    request_trail(audit, "old", START - timedelta(hours=5), 1.0)
    return audit


async def test_the_figures_come_from_the_window(audit: FakeAudit) -> None:
    data = await collect(audit, START, END, PRICES)
    assert data.requests == 42
    assert data.statuses == {"completed": 40, "blocked": 1, "failed": 1}
    assert len(data.latencies) == 42
    assert min(s for _, _, s in data.latencies) == pytest.approx(0.5)
    assert data.tokens == (40_000, 4_000)
    assert data.cost == pytest.approx(40 * (1000 * 10 + 100 * 20) / 1e6)
    assert data.verdicts[("input", "allow")] == 42
    assert data.verdicts[("output", "allow")] == 40
    assert data.verdicts[("input", "block")] == 1  # blocked before any model ran
    assert [r for _, r in data.ratings] == [5, 4, 1]
    assert data.thumbs == {"up": 2, "down": 1}
    assert [a["value"] for a in data.alerts] == [0.31, 0.42]
    assert data.groundedness_source == "lexical"
    assert all(s == 1.0 for _, _, s in data.groundedness)


async def test_a_response_replayed_counts_once(audit: FakeAudit) -> None:
    replayed = next(r for r in audit.records if r.subject == "r-0" and r.topic == "cairn.responses")
    audit.records.append(
        Record(
            replayed.event_type,
            replayed.topic,
            replayed.event_time + timedelta(minutes=1),
            replayed.payload,
            "r-0",
        )
    )
    data = await collect(audit, START, END, PRICES)
    assert data.statuses["completed"] == 40


async def test_evaluator_scores_win_over_the_lexical_proxy(audit: FakeAudit) -> None:
    scores = FakeScores(
        [(START + timedelta(hours=1), "smol", 0.25), (START + timedelta(hours=2), "smol", 0.75)]
    )
    data = await collect(audit, START, END, PRICES, scores)
    assert data.groundedness_source == "evaluator"
    assert [s for _, _, s in data.groundedness] == [0.25, 0.75]


async def test_every_section_has_a_chart_that_parses(audit: FakeAudit) -> None:
    data = await collect(audit, START, END, PRICES)
    html = render_html(data, generated_at=END)
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    for section in ("latency", "usage", "verdicts", "groundedness", "feedback", "drift"):
        match = re.search(rf'<section id="{section}">(.*?)</section>', html, re.S)
        assert match, section
        body = match.group(1)
        svgs = re.findall(r"<svg.*?</svg>", body, re.S)
        assert svgs, f"{section} has no chart"
        for svg in svgs:
            root = ET.fromstring(svg)
            drawn = [e for e in root.iter() if e.tag in (f"{SVG}polyline", f"{SVG}rect", f"{SVG}circle")]
            assert len(drawn) > 1, f"{section}: an empty chart"
        assert 'class="empty"' not in body, section
    assert "2026-04-30 12:00" in html
    assert "$0.4800" in html  # the cost total
    assert "PromptDrift" in html


def test_an_empty_window_says_so_in_every_section() -> None:
    html = render_html(ReportData(START, END, 3600), generated_at=END)
    assert html.count('class="empty"') == 7
    assert "<svg" not in html


async def test_a_concluded_experiment_shows_each_arm_with_its_interval_and_the_winner(
    audit: FakeAudit,
) -> None:
    when = START + timedelta(hours=12)
    arm = {"requests": 40, "observations": 31, "refusal_rate": 0.0, "mean_groundedness": 0.71}
    payload = {
        "conclusion_id": "ec-1",
        "tenant": "acme",
        "prompt_name": "qa",
        "experiment": "tone",
        "winner": "short",
        "winner_prompt_version": 2,
        "metric": "positive_feedback_rate",
        "test": "msprt-normal-mixture",
        "evidence": 41.5,
        "threshold": 20.0,
        "alpha": 0.05,
        "min_samples": 30,
        "arms": [
            {
                **arm,
                "variant": "control",
                "prompt_version": 1,
                "positive_rate": 0.42,
                "positive_rate_low": 0.26,
                "positive_rate_high": 0.59,
            },
            {
                **arm,
                "variant": "short",
                "prompt_version": 2,
                "positive_rate": 0.81,
                "positive_rate_low": 0.64,
                "positive_rate_high": 0.91,
            },
        ],
        "concluded_at": when.isoformat(),
    }
    audit.records.append(Record("cairn.experiment.concluded.v1", "cairn.experiments", when, payload, None))
    audit.records.append(  # before the window: not shown
        Record(
            "cairn.experiment.concluded.v1",
            "cairn.experiments",
            START - timedelta(hours=1),
            {**payload, "experiment": "older"},
            None,
        )
    )
    data = await collect(audit, START, END, PRICES)
    assert [e["experiment"] for e in data.experiments] == ["tone"]
    html = render_html(data, generated_at=END)
    section = re.search(r'<section id="experiments">(.*?)</section>', html, re.S)
    assert section
    body = section.group(1)
    assert "<b>short</b> won on positive_feedback_rate" in body
    assert "evidence 41.5 against a threshold of 20" in body
    assert "<td>★ short</td><td>2</td><td>40</td><td>31</td><td>81% [64%, 91%]</td>" in body
    assert "<td>control</td><td>1</td><td>40</td><td>31</td><td>42% [26%, 59%]</td>" in body
    assert "older" not in body


def test_html_in_the_data_is_escaped() -> None:
    data = ReportData(START, END, 3600)
    data.alerts.append({"alert_name": "<script>x</script>", "_time": START, "value": 1.0, "labels": {}})
    html = render_html(data, generated_at=END)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_percentiles_buckets_and_window_parsing() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([5], 0.99) == 5
    assert bucket_seconds(timedelta(hours=24)) == 3600
    assert bucket_seconds(timedelta(hours=1)) == 300
    assert parse_since("24h", END) == START
    assert parse_since("-90m", END) == END - timedelta(minutes=90)
    with pytest.raises(ValueError):
        parse_since("yesterday", END)
    assert lexical_groundedness("alpha beta", ["alpha gamma"]) == 0.5
    assert lexical_groundedness("", ["alpha"]) is None


def test_charts_are_valid_svg_with_ticks_covering_the_data() -> None:
    assert nice_ticks(0, 9.3)[-1] >= 9.3
    line = line_chart({"a": [(START, 1.0), (END, None), (END + timedelta(hours=1), 3.0)]}, title="t & u")
    root = ET.fromstring(line)
    assert root.find(f"{SVG}title") is not None
    bars = ET.fromstring(bar_chart([("x", 2.0), ("y", 0.0)], title="b"))
    assert len(list(bars.iter(f"{SVG}rect"))) == 3  # background + two bars
    assert "no data" in line_chart({}, title="empty")
