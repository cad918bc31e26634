"""Operations: datasets and tuning jobs, alerts and dead letters, and quality and cost over time.

Feedback and the tuner have no HTTP API: every page here is a view over the events the audit
service stored (`GET /v1/events`), read with the operator's key, so its tenant scope applies
(events without a tenant, such as a dataset or a model registration, are for platform admins).
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from cairn_events import (
    AlertRaisedV1,
    DatasetPublishedV1,
    DeadLetterRecordedV1,
    FeedbackSubmittedV1,
    ModelRegisteredV1,
    ResponseCompletedV1,
    TuningProgressedV1,
    TuningRequestedV1,
)
from cairn_gateway.console.charts import Series, bar_chart, line_chart
from cairn_gateway.console.core import Caller, Console, ConsoleError
from cairn_observability.pricing import PriceTable

__all__ = ["Buckets", "ChartData", "add_routes", "chart_data", "latest_jobs", "read_events"]

PAGE = 1000
"""Events per audit call (the API's most)."""
CHART_EVENT_CAP = 20_000
"""The most events of one type a chart reads; past it the page says the chart is partial."""
PROGRESS_EVENT_CAP = 10_000
WINDOWS = {"24h": (timedelta(days=1), timedelta(hours=1)), "7d": (timedelta(days=7), timedelta(days=1)),
           "30d": (timedelta(days=30), timedelta(days=1))}  # fmt: skip
"""A chart window and its bucket."""
ALERT_WINDOWS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
SEVERITIES = ("critical", "warning", "info")
STATUSES = ("completed", "held", "blocked", "rejected", "failed")
STATUS_COLOURS = {"completed": "#1a7f37", "held": "#9a6700", "blocked": "#c62828", "rejected": "#7c3aed",
                  "failed": "#4b5563"}  # fmt: skip


async def read_events(
    console: Console,
    caller: Caller,
    event_type: str,
    *,
    since: datetime,
    tenant: str | None = None,
    cap: int,
) -> tuple[list[dict[str, Any]], bool]:
    """The stored events of `event_type` from `since`, oldest first, paged with the `after` cursor; at
    most about `cap` of them, and whether the cap stopped the reading (newer events were left out)."""
    found: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        page: list[dict[str, Any]] = await console.get(
            caller, "audit", "/v1/events", type=event_type, tenant=tenant, since=since.isoformat(),
            after=after, limit=PAGE, order="oldest",
        )  # fmt: skip
        found.extend(page)
        if len(page) < PAGE:
            return found, False
        if len(found) >= cap:
            return found, True
        after = page[-1]["seq"]


async def newest(
    console: Console, caller: Caller, event_type: str, *, limit: int, since: datetime | None = None,
    tenant: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The newest `limit` stored events of `event_type` (one audit call), newest first."""
    found: list[dict[str, Any]] = await console.get(
        caller, "audit", "/v1/events", type=event_type, tenant=tenant,
        since=since.isoformat() if since else None, limit=limit, order="newest",
    )  # fmt: skip
    return found


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- datasets and tuning jobs ------------------------------------------------------------------------


def latest_jobs(
    requested: list[dict[str, Any]], progressed: list[dict[str, Any]], registered: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each requested job (in the order given) with its latest progress (progress events are in
    storage order: the last one of a job wins), the losses it reported and the model version it
    produced, if one was registered."""
    latest: dict[str, dict[str, Any]] = {}
    losses: dict[str, list[float]] = {}
    for event in progressed:
        data = event["payload"]
        latest[data["job_id"]] = data
        if data.get("loss") is not None:
            losses.setdefault(data["job_id"], []).append(float(data["loss"]))
    models = {e["payload"]["job_id"]: e["payload"] for e in registered if e["payload"].get("job_id")}
    jobs = []
    for event in requested:
        job = event["payload"]
        progress = latest.get(job["job_id"])
        total = progress.get("total_steps") if progress else None
        jobs.append(
            {
                "job": job,
                "event_time": event["event_time"],
                "progress": progress,
                "state": progress["state"] if progress else "requested",
                "fraction": min(1.0, progress["step"] / total) if progress and total else None,
                "losses": losses.get(job["job_id"], []),
                "model": models.get(job["job_id"]),
            }
        )
    return jobs


# -- alerts and dead letters -------------------------------------------------------------------------


def preview(value_b64: str | None, limit: int = 300) -> str:
    """The start of a dead-lettered message's value as text (undecodable bytes replaced)."""
    if not value_b64:
        return ""
    try:
        raw = base64.b64decode(value_b64, validate=True)
    except (binascii.Error, ValueError):
        return "(not base64)"
    text = raw[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(raw) > limit else "")


# -- quality and cost ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Buckets:
    """Consecutive time buckets of one size, the last one holding `now`."""

    start: datetime
    step: timedelta
    count: int

    @classmethod
    def ending(cls, now: datetime, window: timedelta, step: timedelta) -> Buckets:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        last = epoch + ((now - epoch) // step) * step
        count = max(1, round(window / step))
        return cls(last - step * (count - 1), step, count)

    def index(self, when: datetime) -> int | None:
        i = int((when - self.start) // self.step)
        return i if 0 <= i < self.count else None

    def labels(self) -> list[str]:
        fmt = "%H:%M" if self.step < timedelta(days=1) else "%m-%d"
        return [(self.start + self.step * i).strftime(fmt) for i in range(self.count)]


@dataclass
class ChartData:
    """Per-bucket figures of a window's answers and feedback."""

    buckets: Buckets
    statuses: dict[str, list[int]] = field(default_factory=dict)
    tokens_in: list[int] = field(default_factory=list)
    tokens_out: list[int] = field(default_factory=list)
    cost: list[float] | None = None
    feedback: list[int] = field(default_factory=list)
    positive: list[int] = field(default_factory=list)
    rating_sum: list[int] = field(default_factory=list)
    rated: list[int] = field(default_factory=list)
    answers: int = 0
    """Answered requests in the window (each request once: its last answer)."""

    def shown_statuses(self) -> list[str]:
        """The statuses to chart: completed, held and blocked always, the others when they occur."""
        return [s for s in self.statuses if s in STATUSES[:3] or any(self.statuses[s])]

    def rows(self) -> list[dict[str, Any]]:
        """One row per bucket, for the figures table."""
        out = []
        for i, label in enumerate(self.buckets.labels()):
            finished = sum(self.statuses[s][i] for s in self.statuses if s != "held")
            out.append(
                {
                    "label": label,
                    "start": self.buckets.start + self.buckets.step * i,
                    "statuses": {s: counts[i] for s, counts in self.statuses.items()},
                    "requests": sum(counts[i] for counts in self.statuses.values()),
                    "completed_pct": self.statuses["completed"][i] / finished * 100 if finished else None,
                    "tokens_in": self.tokens_in[i],
                    "tokens_out": self.tokens_out[i],
                    "cost": self.cost[i] if self.cost is not None else None,
                    "feedback": self.feedback[i],
                    "positive_pct": self.positive[i] / self.feedback[i] * 100 if self.feedback[i] else None,
                    "mean_rating": self.rating_sum[i] / self.rated[i] if self.rated[i] else None,
                }
            )
        return out


def chart_data(
    buckets: Buckets,
    answers: list[dict[str, Any]],
    feedback: list[dict[str, Any]],
    prices: PriceTable | None,
) -> ChartData:
    """Requests by status, tokens and cost (priced with `prices`) per bucket, counting each request
    once (its last answer: a held answer that was later released counts as released) and skipping
    replayed events; feedback per bucket: how much, the share positive (thumbs up or a rating of 4
    or 5) and the mean rating."""
    n = buckets.count
    data = ChartData(
        buckets, statuses={s: [0] * n for s in STATUSES}, tokens_in=[0] * n, tokens_out=[0] * n,
        cost=[0.0] * n if prices is not None else None, feedback=[0] * n, positive=[0] * n,
        rating_sum=[0] * n, rated=[0] * n,
    )  # fmt: skip
    last: dict[str, dict[str, Any]] = {}
    for event in answers:
        if event.get("replay_of"):
            continue
        last[event["payload"].get("request_id") or event["event_id"]] = event
    for event in last.values():
        p = event["payload"]
        when = _time(event["event_time"])
        i = buckets.index(when) if when else None
        if i is None:
            continue
        data.answers += 1
        data.statuses.setdefault(str(p.get("status")), [0] * n)[i] += 1
        usage = p.get("usage") or {}
        tokens_in, tokens_out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        data.tokens_in[i] += tokens_in
        data.tokens_out[i] += tokens_out
        if data.cost is not None and prices is not None and (tokens_in or tokens_out):
            data.cost[i] += prices.cost(p.get("model"), tokens_in, tokens_out)
    for event in feedback:
        if event.get("replay_of"):
            continue
        when = _time(event["event_time"])
        i = buckets.index(when) if when else None
        p = event["payload"]
        rating, thumbs = p.get("rating"), p.get("thumbs")
        if i is None or (rating is None and thumbs is None):
            continue
        data.feedback[i] += 1
        data.positive[i] += thumbs == "up" or (thumbs is None and rating is not None and rating >= 4)
        if rating is not None:
            data.rating_sum[i] += int(rating)
            data.rated[i] += 1
    return data


def charts_of(data: ChartData) -> dict[str, Markup]:
    """The page's four charts, by element id."""
    labels = data.buckets.labels()
    rows = data.rows()
    statuses = data.shown_statuses()
    out = {
        "chart-requests": bar_chart(
            "chart-requests", "Requests by status", labels,
            [Series(s, data.statuses[s], STATUS_COLOURS.get(s)) for s in statuses], unit="requests",
        ),
        "chart-tokens": bar_chart(
            "chart-tokens", "Tokens in and out", labels,
            [Series("input", data.tokens_in), Series("output", data.tokens_out)], unit="tokens",
        ),
        "chart-quality": line_chart(
            "chart-quality", "Quality", labels,
            [Series("answers completed %", [r["completed_pct"] for r in rows], "#1a7f37"),
             Series("positive feedback %", [r["positive_pct"] for r in rows], "#2454c5")],
            unit="%", y_max=100,
        ),
    }  # fmt: skip
    if data.cost is not None:
        out["chart-cost"] = bar_chart("chart-cost", "Cost", labels, [Series("cost", data.cost)], unit="USD")
    return out


# -- routes --------------------------------------------------------------------------------------------


def add_routes(console: Console) -> None:
    """Add this module's pages to the console."""
    router = console.router

    @router.get("/datasets", response_class=HTMLResponse)
    async def datasets(
        request: Request, caller: Caller = Depends(console.caller), tenant: str = ""
    ) -> Response:
        scope = tenant or None
        published = await newest(console, caller, DatasetPublishedV1.event_type, limit=200, tenant=scope)
        requested = await newest(console, caller, TuningRequestedV1.event_type, limit=100, tenant=scope)
        jobs: list[dict[str, Any]] = []
        capped = False
        if requested:
            since = min(t for t in (_time(e["event_time"]) for e in requested) if t is not None)
            progressed, capped = await read_events(
                console,
                caller,
                TuningProgressedV1.event_type,
                since=since,
                tenant=scope,
                cap=PROGRESS_EVENT_CAP,
            )
            registered = await newest(
                console, caller, ModelRegisteredV1.event_type, limit=500, since=since, tenant=scope
            )
            jobs = latest_jobs(requested, progressed, registered)
        return console.page(
            "datasets.html", caller, request, datasets=published, jobs=jobs, progress_capped=capped, tenant=tenant,
        )  # fmt: skip

    @router.get("/alerts", response_class=HTMLResponse)
    async def alerts(
        request: Request,
        caller: Caller = Depends(console.caller),
        severity: str = "",
        name: str = "",
        window: str = "7d",
        tenant: str = "",
    ) -> Response:
        if severity and severity not in SEVERITIES:
            raise ConsoleError(400, "Invalid filter", f"severity must be one of {', '.join(SEVERITIES)}")
        if window not in ALERT_WINDOWS:
            raise ConsoleError(400, "Invalid filter", f"window must be one of {', '.join(ALERT_WINDOWS)}")
        since = datetime.now(UTC) - ALERT_WINDOWS[window]
        scope = tenant or None
        raised = await newest(
            console, caller, AlertRaisedV1.event_type, limit=1000, since=since, tenant=scope
        )
        dead = await newest(
            console, caller, DeadLetterRecordedV1.event_type, limit=200, since=since, tenant=scope
        )
        shown = [
            e for e in raised
            if (not severity or e["payload"].get("severity") == severity)
            and (not name or e["payload"].get("alert_name") == name)
        ]  # fmt: skip
        counts = Counter(e["payload"].get("severity") for e in raised)
        names = sorted({e["payload"].get("alert_name", "") for e in raised})
        letters = [(e, preview(e["payload"].get("original_value_b64"))) for e in dead]
        return console.page(
            "alerts.html", caller, request, alerts=shown, counts=counts, names=names, severities=SEVERITIES,
            windows=list(ALERT_WINDOWS), filters={"severity": severity, "name": name, "window": window, "tenant": tenant},
            alerts_capped=len(raised) >= 1000, dead_letters=letters, dead_capped=len(dead) >= 200,
        )  # fmt: skip

    @router.get("/charts", response_class=HTMLResponse)
    async def charts(
        request: Request, caller: Caller = Depends(console.caller), window: str = "24h", tenant: str = ""
    ) -> Response:
        if window not in WINDOWS:
            raise ConsoleError(400, "Invalid window", f"window must be one of {', '.join(WINDOWS)}")
        span, step = WINDOWS[window]
        buckets = Buckets.ending(datetime.now(UTC), span, step)
        scope = tenant or None
        answers, answers_capped = await read_events(
            console,
            caller,
            ResponseCompletedV1.event_type,
            since=buckets.start,
            tenant=scope,
            cap=CHART_EVENT_CAP,
        )
        feedback, feedback_capped = await read_events(
            console,
            caller,
            FeedbackSubmittedV1.event_type,
            since=buckets.start,
            tenant=scope,
            cap=CHART_EVENT_CAP,
        )
        data = chart_data(buckets, answers, feedback, console.prices)
        rows = data.rows()
        return console.page(
            "charts.html", caller, request, charts=charts_of(data), rows=rows, data=data, window=window,
            windows=list(WINDOWS), tenant=tenant, priced=console.prices is not None,
            statuses=data.shown_statuses(),
            answers_capped=answers_capped, feedback_capped=feedback_capped,
            answers_read=len(answers), feedback_read=len(feedback),
            read_until=answers[-1]["event_time"] if answers_capped and answers else None,
            totals={"tokens_in": sum(data.tokens_in), "tokens_out": sum(data.tokens_out),
                    "cost": sum(data.cost) if data.cost is not None else None,
                    "feedback": sum(data.feedback), "positive": sum(data.positive)},
        )  # fmt: skip
