"""`cairn report --since 24h`: a self-contained HTML report of the platform's recent traffic.

Everything comes from the audit store (every event of every request, `audit_events`): latency
percentiles over time (request.submitted → response.completed), tokens and cost over time
(completion.generated usage priced with the price table, `infra/prices.yaml`), the verdict mix
(final statuses, safety verdicts by stage), groundedness (the evaluator's online scores, read
through its exported `OnlineGroundedness` port, when it has any in the window; otherwise a lexical
proxy: the share of an answer's words found in its cited chunks), user feedback (ratings, thumbs),
prompt experiments concluded (experiment.concluded: each arm's positive-feedback rate with its 95 %
interval, the winner and the evidence) and drift (alert.raised events). Charts are inline SVG; the file needs no network and no JavaScript.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any, Protocol

import typer
from rich.console import Console

from cairn_cli.report_svg import bar_chart, line_chart
from cairn_cli.timeparse import parse_when
from cairn_observability.pricing import PriceTable, load_price_table

__all__ = ["AuditRange", "GroundednessRows", "ReportData", "collect", "render_html", "report"]

console = Console()

TOPICS = {
    "requests": "cairn.requests",
    "screenings": "cairn.screenings",
    "completions": "cairn.completions",
    "responses": "cairn.responses",
    "feedback": "cairn.feedback",
    "alerts": "cairn.alerts",
    "experiments": "cairn.experiments",
}
_BUCKETS_S = (60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_WORD = re.compile(r"[a-z0-9]{3,}")
STATUS_COLORS = {"completed": "#16a34a", "blocked": "#d97706", "rejected": "#6b7280", "failed": "#dc2626"}


class AuditRange(Protocol):
    """What the report reads: the stored events of one topic in a time range (the audit store)."""

    async def in_range(
        self, topic: str, start: datetime | None, end: datetime | None, limit: int | None = None
    ) -> Sequence[Any]:
        """Records with `event_type`, `event_time`, `subject`, `tenant` and `payload`, oldest first."""
        ...


class GroundednessRows(Protocol):
    """Groundedness scores the evaluator stored, when it stores any."""

    async def groundedness(self, start: datetime, end: datetime) -> list[tuple[datetime, str, float]]:
        """(completed_at, model, score 0..1) of the responses scored in the window."""
        ...


@dataclass
class ReportData:
    """What the report shows, gathered from the stored events of one window."""

    start: datetime
    end: datetime
    bucket_s: int
    latencies: list[tuple[datetime, str, float]] = field(default_factory=list)
    """(completed_at, status, seconds from request.submitted to response.completed)."""
    statuses: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(stage, verdict) counts: input from input.screened and input blocks, output from responses."""
    usage: list[tuple[datetime, str, str, int, int, float]] = field(default_factory=list)
    """(generated_at, tenant, model, input tokens, output tokens, cost USD) per completion."""
    groundedness: list[tuple[datetime, str, float]] = field(default_factory=list)
    groundedness_source: str = "none"
    ratings: list[tuple[datetime, int]] = field(default_factory=list)
    thumbs: Counter[str] = field(default_factory=Counter)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    """experiment.concluded payloads of the window (with `_time`), oldest first."""
    requests: int = 0

    @property
    def tokens(self) -> tuple[int, int]:
        return sum(u[3] for u in self.usage), sum(u[4] for u in self.usage)

    @property
    def cost(self) -> float:
        return sum(u[5] for u in self.usage)


def bucket_seconds(span: timedelta, target: int = 36) -> int:
    """A round bucket width giving about `target` buckets over `span`."""
    wanted = span.total_seconds() / target
    return next((b for b in _BUCKETS_S if b >= wanted), _BUCKETS_S[-1])


def bucket_of(when: datetime, start: datetime, width_s: int) -> datetime:
    """The start of the bucket `when` falls in (buckets aligned on `start`)."""
    index = int((when - start).total_seconds() // width_s)
    return start + timedelta(seconds=index * width_s)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def lexical_groundedness(text: str, chunks: Iterable[str]) -> float | None:
    """Share of the answer's words (3+ letters) that appear in its cited chunks; None without both."""
    words = _WORD.findall(text.lower())
    context = set(_WORD.findall(" ".join(chunks).lower()))
    if not words or not context:
        return None
    return sum(w in context for w in words) / len(words)


def _time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return fallback


def _request_id(record: Any) -> str | None:
    payload = record.payload if isinstance(record.payload, Mapping) else {}
    rid = payload.get("request_id") or record.subject
    return rid if isinstance(rid, str) else None


async def collect(
    store: AuditRange,
    start: datetime,
    end: datetime,
    prices: PriceTable | None,
    scores: GroundednessRows | None = None,
) -> ReportData:
    """Read the window's events and compute every section's figures."""
    fetched = await asyncio.gather(*(store.in_range(topic, start, end) for topic in TOPICS.values()))
    by_topic = dict(zip(TOPICS, fetched, strict=True))
    data = ReportData(start, end, bucket_seconds(end - start))

    # requests may have been submitted before the window: their answers still count, timed from
    # the submission when it is stored (looked up a little before the window)
    submitted: dict[str, datetime] = {}
    early = await store.in_range(TOPICS["requests"], start - timedelta(hours=1), start)
    for record in [*early, *by_topic["requests"]]:
        rid = _request_id(record)
        if rid and record.event_type.startswith("cairn.request.submitted"):
            submitted[rid] = _time(record.payload.get("submitted_at"), record.event_time)
    data.requests = sum(1 for r in by_topic["requests"] if r.event_type.startswith("cairn.request.submitted"))

    for record in by_topic["screenings"]:
        verdict = record.payload.get("verdict")
        if record.event_type.startswith("cairn.input.screened") and isinstance(verdict, str):
            data.verdicts[("input", verdict)] += 1

    for record in by_topic["completions"]:
        if not record.event_type.startswith("cairn.completion.generated"):
            continue
        p = record.payload
        usage = p.get("usage") or {}
        tokens_in, tokens_out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        model = str(p.get("model") or "unknown")
        cost = prices.cost(model, tokens_in, tokens_out) if prices else 0.0
        when = _time(p.get("generated_at"), record.event_time)
        data.usage.append(
            (when, str(p.get("tenant") or record.tenant or "default"), model, tokens_in, tokens_out, cost)
        )

    proxy: list[tuple[datetime, str, float]] = []
    seen: set[str] = set()
    for record in by_topic["responses"]:
        rid = _request_id(record)
        if not record.event_type.startswith("cairn.response.completed") or rid is None or rid in seen:
            continue
        seen.add(rid)  # a replayed response is not a second answer
        p = record.payload
        status = str(p.get("status") or "unknown")
        done = _time(p.get("completed_at"), record.event_time)
        data.statuses[status] += 1
        if rid in submitted:
            data.latencies.append((done, status, max(0.0, (done - submitted[rid]).total_seconds())))
        verdict = p.get("verdict")
        if isinstance(verdict, str):
            stage = "output" if p.get("model") or p.get("usage") else "input"
            data.verdicts[(stage, verdict)] += 1
        if status == "completed" and isinstance(p.get("text"), str):
            score = lexical_groundedness(
                p["text"], (str(c.get("text") or "") for c in p.get("citations") or [])
            )
            if score is not None:
                proxy.append((done, str(p.get("model") or "unknown"), score))

    evaluator = await scores.groundedness(start, end) if scores is not None else []
    if evaluator:
        data.groundedness, data.groundedness_source = evaluator, "evaluator"
    elif proxy:
        data.groundedness, data.groundedness_source = proxy, "lexical"

    for record in by_topic["feedback"]:
        p = record.payload
        when = _time(p.get("submitted_at"), record.event_time)
        if isinstance(p.get("rating"), int):
            data.ratings.append((when, p["rating"]))
        if p.get("thumbs") in ("up", "down"):
            data.thumbs[p["thumbs"]] += 1

    for record in by_topic["alerts"]:
        if record.event_type.startswith("cairn.alert.raised"):
            p = dict(record.payload)
            p["_time"] = _time(p.get("raised_at"), record.event_time)
            data.alerts.append(p)

    for record in by_topic["experiments"]:
        if record.event_type.startswith("cairn.experiment.concluded"):
            p = dict(record.payload)
            p["_time"] = _time(p.get("concluded_at"), record.event_time)
            data.experiments.append(p)
    return data


# --- rendering -----------------------------------------------------------------------------------


def _series_over_time(
    data: ReportData, rows: Iterable[tuple[datetime, float]], reduce: str
) -> list[tuple[datetime, float | None]]:
    groups: dict[datetime, list[float]] = defaultdict(list)
    for when, value in rows:
        groups[bucket_of(when, data.start, data.bucket_s)].append(value)
    out: list[tuple[datetime, float | None]] = []
    for when in sorted(groups):
        values = groups[when]
        out.append((when, sum(values) if reduce == "sum" else sum(values) / len(values)))
    return out


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _empty(message: str) -> str:
    return f'<p class="empty">{escape(message)}</p>'


def _latency_section(data: ReportData) -> str:
    if not data.latencies:
        return _empty("No request was answered in this window (or its request.submitted is not stored).")
    groups: dict[datetime, list[float]] = defaultdict(list)
    for when, _, seconds in data.latencies:
        groups[bucket_of(when, data.start, data.bucket_s)].append(seconds)
    series = {
        name: [(when, percentile(groups[when], q)) for when in sorted(groups)]
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    }
    chart = line_chart(series, title="Request latency percentiles", y_label="seconds")
    by_status: dict[str, list[float]] = defaultdict(list)
    for _, status, seconds in data.latencies:
        by_status[status].append(seconds)
    rows = [
        (
            s,
            len(v),
            f"{percentile(v, 0.5):.2f}",
            f"{percentile(v, 0.95):.2f}",
            f"{percentile(v, 0.99):.2f}",
            f"{max(v):.2f}",
        )
        for s, v in sorted(by_status.items())
    ]
    return chart + _table(("status", "requests", "p50 s", "p95 s", "p99 s", "max s"), rows)


def _usage_section(data: ReportData, priced: bool) -> str:
    if not data.usage:
        return _empty("No completion was generated in this window.")
    tokens = line_chart(
        {
            "input tokens": _series_over_time(data, ((u[0], float(u[3])) for u in data.usage), "sum"),
            "output tokens": _series_over_time(data, ((u[0], float(u[4])) for u in data.usage), "sum"),
        },
        title="Tokens per bucket",
        y_label="tokens",
    )
    cost = line_chart(
        {"cost (USD)": _series_over_time(data, ((u[0], u[5]) for u in data.usage), "sum")},
        title="Cost per bucket",
        y_label="USD",
    )
    per: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for _, tenant, model, tin, tout, usd in data.usage:
        row = per[(tenant, model)]
        row[0] += 1
        row[1] += tin
        row[2] += tout
        row[3] += usd
    rows = [(t, m, int(r[0]), int(r[1]), int(r[2]), f"{r[3]:.6f}") for (t, m), r in sorted(per.items())]
    note = "" if priced else _empty("No price table was found: cost shows as 0 (pass --prices).")
    return (
        tokens
        + cost
        + note
        + _table(("tenant", "model", "completions", "input tokens", "output tokens", "cost USD"), rows)
    )


def _verdict_section(data: ReportData) -> str:
    if not data.statuses and not data.verdicts:
        return _empty("No response and no screening in this window.")
    order = ["completed", "blocked", "rejected", "failed"]
    statuses = sorted(
        data.statuses.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 9, kv[0])
    )
    chart = bar_chart(statuses, title="Final status of requests", y_label="requests", colors=STATUS_COLORS)
    verdicts = bar_chart(
        [(f"{stage} {verdict}", float(n)) for (stage, verdict), n in sorted(data.verdicts.items())],
        title="Safety verdicts by stage",
        y_label="screenings",
    )
    total = sum(data.statuses.values()) or 1
    rows = [(s, n, f"{n / total:.1%}") for s, n in statuses]
    return chart + _table(("status", "requests", "share"), rows) + verdicts


def _groundedness_section(data: ReportData) -> str:
    if not data.groundedness:
        return _empty("No scored or cited answer in this window.")
    by_model: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for when, model, score in data.groundedness:
        by_model[model].append((when, score))
    chart = line_chart(
        {model: _series_over_time(data, rows, "mean") for model, rows in sorted(by_model.items())},
        title="Groundedness (mean per bucket)",
        y_label="score 0..1",
    )
    bins = Counter(min(9, int(score * 10)) for _, _, score in data.groundedness)
    histogram = bar_chart(
        [(f"{i / 10:.1f}-{(i + 1) / 10:.1f}", float(bins.get(i, 0))) for i in range(10)],
        title="Groundedness distribution",
        y_label="answers",
        color="#0891b2",
    )
    source = (
        "Scores from the evaluator (online_responses)."
        if data.groundedness_source == "evaluator"
        else "Lexical proxy (no evaluator scores in this window): the share of each answer's words that "
        "appear in the chunks it cites. It rewards copying, so read it as a trend, not a verdict."
    )
    scores = [s for _, _, s in data.groundedness]
    mean = sum(scores) / len(scores)
    return (
        f'<p class="note">{escape(source)} Mean {mean:.2f} over {len(scores)} answers.</p>'
        + chart
        + histogram
    )


def _feedback_section(data: ReportData) -> str:
    if not data.ratings and not data.thumbs:
        return _empty("No feedback was given in this window.")
    parts = []
    if data.ratings:
        counts = Counter(r for _, r in data.ratings)
        parts.append(
            bar_chart(
                [(str(i), float(counts.get(i, 0))) for i in range(1, 6)],
                title="Ratings (1 bad .. 5 excellent)",
                color="#7c3aed",
                y_label="ratings",
            )
        )
        parts.append(
            line_chart(
                {"mean rating": _series_over_time(data, ((w, float(r)) for w, r in data.ratings), "mean")},
                title="Mean rating per bucket",
                y_label="rating",
                y_min=1.0,
            )
        )
    if data.thumbs:
        parts.append(
            bar_chart(
                [("up", float(data.thumbs["up"])), ("down", float(data.thumbs["down"]))],
                title="Thumbs",
                colors={"up": "#16a34a", "down": "#dc2626"},
            )
        )
    mean = sum(r for _, r in data.ratings) / len(data.ratings) if data.ratings else None
    summary = [
        ("ratings", len(data.ratings)),
        ("mean rating", f"{mean:.2f}" if mean else "-"),
        ("thumbs up", data.thumbs["up"]),
        ("thumbs down", data.thumbs["down"]),
    ]
    return "".join(parts) + _table(("feedback", "value"), summary)


def _drift_section(data: ReportData) -> str:
    if not data.alerts:
        return _empty("No alert was raised in this window: no drift or quality alert fired.")
    valued: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for alert in data.alerts:
        if isinstance(alert.get("value"), int | float):
            valued[str(alert.get("alert_name"))].append((alert["_time"], float(alert["value"])))
    chart = (
        line_chart(
            dict(sorted(valued.items())),
            title="Alert values",
            y_label="value",
            y_min=None,
        )
        if valued
        else ""
    )
    rows = [
        (
            f"{a['_time']:%Y-%m-%d %H:%M}",
            a.get("alert_name", ""),
            a.get("severity", ""),
            ", ".join(f"{k}={v}" for k, v in sorted((a.get("labels") or {}).items())),
            "" if a.get("value") is None else f"{a['value']:.3g}",
            a.get("summary", ""),
        )
        for a in sorted(data.alerts, key=lambda a: a["_time"])
    ]
    return chart + _table(("raised", "alert", "severity", "labels", "value", "summary"), rows)


def _rate(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "-"


def _experiments_section(data: ReportData) -> str:
    if not data.experiments:
        return _empty("No prompt experiment reached a significant winner in this window.")
    parts = []
    for e in data.experiments:
        head = (
            f"<p><b>{escape(str(e.get('prompt_name')))}</b> / {escape(str(e.get('experiment')))} "
            f"(tenant {escape(str(e.get('tenant')))}): <b>{escape(str(e.get('winner')))}</b> won on "
            f"{escape(str(e.get('metric')))} at {e['_time']:%Y-%m-%d %H:%M} — evidence "
            f"{float(e.get('evidence') or 0):.3g} against a threshold of {float(e.get('threshold') or 0):.3g} "
            f"({escape(str(e.get('test')))}, alpha {e.get('alpha')}, at least {e.get('min_samples')} per arm)</p>"
        )
        rows = [
            (
                ("★ " if a.get("variant") == e.get("winner") else "") + str(a.get("variant")),
                "-" if a.get("prompt_version") is None else a["prompt_version"],
                a.get("requests", 0),
                a.get("observations", 0),
                f"{_rate(a.get('positive_rate'))} [{_rate(a.get('positive_rate_low'))}, "
                f"{_rate(a.get('positive_rate_high'))}]",
                _rate(a.get("refusal_rate")),
                "-" if a.get("mean_groundedness") is None else f"{a['mean_groundedness']:.2f}",
            )
            for a in e.get("arms") or []
        ]
        header = (
            "variant",
            "version",
            "requests",
            "with feedback",
            "positive (95 % CI)",
            "refusals",
            "groundedness",
        )
        parts.append(head + _table(header, rows))
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:880px;color:#111827;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
.window{color:#4b5563;margin-top:0} .totals{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.totals div{border:1px solid #e5e7eb;border-radius:6px;padding:.5rem .8rem;min-width:110px}
.totals b{display:block;font-size:1.25rem} .totals span{color:#4b5563;font-size:.8rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.85rem} th,td{border:1px solid #e5e7eb;padding:.25rem .6rem;text-align:left}
th{background:#f9fafb} .empty{color:#6b7280;font-style:italic} .note{color:#374151;font-size:.85rem}
svg{display:block;margin:.6rem 0;max-width:100%;height:auto}
"""


def render_html(data: ReportData, *, priced: bool = True, generated_at: datetime | None = None) -> str:
    """The report as one self-contained HTML document."""
    generated_at = generated_at or datetime.now(UTC)
    tin, tout = data.tokens
    answered = sum(data.statuses.values())
    completed = data.statuses.get("completed", 0)
    p95 = percentile([s for _, _, s in data.latencies], 0.95) if data.latencies else None
    totals = [
        ("requests submitted", f"{data.requests:,}"),
        ("answered", f"{answered:,}"),
        ("completed", f"{completed / answered:.0%}" if answered else "-"),
        ("p95 latency", f"{p95:.2f} s" if p95 is not None else "-"),
        ("tokens in / out", f"{tin:,} / {tout:,}"),
        ("cost", f"${data.cost:.4f}" if data.cost >= 0.01 or data.cost == 0 else f"${data.cost:.6f}"),
        ("feedback", f"{len(data.ratings) + sum(data.thumbs.values()):,}"),
        ("alerts", f"{len(data.alerts):,}"),
    ]
    tiles = "".join(f"<div><b>{escape(v)}</b><span>{escape(k)}</span></div>" for k, v in totals)
    window = (
        f"{data.start:%Y-%m-%d %H:%M} — {data.end:%Y-%m-%d %H:%M} UTC "
        f"({(data.end - data.start).total_seconds() / 3600:.1f} h, buckets of {data.bucket_s // 60} min)"
    )
    sections = [
        ("latency", "Latency", _latency_section(data)),
        ("usage", "Tokens and cost", _usage_section(data, priced)),
        ("verdicts", "Verdict mix", _verdict_section(data)),
        ("groundedness", "Groundedness", _groundedness_section(data)),
        ("feedback", "Feedback", _feedback_section(data)),
        ("experiments", "Prompt experiments", _experiments_section(data)),
        ("drift", "Drift and alerts", _drift_section(data)),
    ]
    body = "".join(
        f'<section id="{sid}"><h2>{escape(title)}</h2>{html}</section>' for sid, title, html in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Cairn report {data.start:%Y-%m-%d %H:%M} — {data.end:%Y-%m-%d %H:%M}</title>"
        f"<style>{_CSS}</style></head><body>"
        f'<h1>Cairn report</h1><p class="window">{escape(window)}</p>'
        f'<div class="totals">{tiles}</div>{body}'
        f'<p class="note">Generated {generated_at:%Y-%m-%d %H:%M:%S} UTC by <code>cairn report</code> '
        "from the audit store.</p></body></html>\n"
    )


# --- the command ---------------------------------------------------------------------------------


def _default_prices() -> Path | None:
    from cairn_localstack.config import find_repo_root

    path = find_repo_root() / "infra" / "prices.yaml"
    return path if path.is_file() else None


def parse_since(text: str, now: datetime) -> datetime:
    """`24h`, `-24h`, `90m`, `7d` or an ISO time: the start of the window."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?[smhd]", text):
        text = "-" + text
    return parse_when(text, now)


async def build_report(
    dsn: str, start: datetime, end: datetime, prices: PriceTable | None
) -> tuple[ReportData, str]:
    """Collect the window from the audit store at `dsn` and render it."""
    from cairn_audit.adapters.postgres import PostgresAuditStore
    from cairn_bus.postgres import create_pool
    from cairn_evaluator.exports import OnlineGroundedness

    pool = await create_pool(dsn)
    try:
        store = PostgresAuditStore(pool)
        await store.migrate()
        data = await collect(store, start, end, prices, OnlineGroundedness(pool))
    finally:
        await pool.close()
    return data, render_html(data, priced=prices is not None)


def report(
    since: str = typer.Option("24h", "--since", help="Window start: 24h, 90m, 7d (ago) or an ISO time."),
    until: str = typer.Option("now", "--until", help="Window end: 'now', -1h or an ISO time."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the HTML report."),
    prices: Path | None = typer.Option(
        None, "--prices", help="Price table YAML (default: infra/prices.yaml of the repository)."
    ),
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="Stack profile whose database to read (default: $CAIRN_STACK_PROFILE or 'local').",
    ),
) -> None:
    """Write a self-contained HTML report (latency, tokens and cost, verdicts, groundedness, feedback,
    drift) of the window from the audit store."""
    from cairn_cli.config import load_settings

    now = datetime.now(UTC)
    try:
        start, end = parse_since(since, now), parse_when(until, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if end <= start:
        raise typer.BadParameter(
            f"the window is empty: {start:%Y-%m-%d %H:%M} is not before {end:%Y-%m-%d %H:%M}"
        )
    table_path = prices or _default_prices()
    table = load_price_table(table_path) if table_path else None
    settings = load_settings(profile)
    data, html = asyncio.run(build_report(settings.postgres_dsn, start, end, table))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    console.print(
        f"report written to [bold]{out}[/bold]: {data.requests} requests, {sum(data.statuses.values())} answered, "
        f"{len(data.usage)} completions, ${data.cost:.4f}, {len(data.alerts)} alerts"
    )
