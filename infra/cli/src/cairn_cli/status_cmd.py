"""`cairn status`: a compact health table of the services run against the local stack.

Per service: whether its process runs and its /metrics answers, consumer lag (summed over its
partitions), events handled, p50/p99 handler latency (from the histogram buckets, since the
process started) and errors (dead letters + batches rewound after a transient failure). Everything
is read from each service's own /metrics endpoint (`CAIRN_METRICS_PORT`, see
`StackConfig.metrics_port`), so no Prometheus is needed.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import typer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from cairn_cli.services_cmd import manager
from cairn_localstack.config import StackConfig
from cairn_observability import catalog

console = Console()
Fetch = Callable[[str, float], str]


@dataclass(frozen=True)
class ServiceHealth:
    """What `cairn status` shows for one service; None where the metrics could not be read."""

    service: str
    running: bool
    up: bool
    metrics_url: str
    lag: float | None = None
    handled: float | None = None
    p50_s: float | None = None
    p99_s: float | None = None
    deadletters: float | None = None
    failed_batches: float | None = None
    problem: str | None = None

    @property
    def errors(self) -> float | None:
        if self.deadletters is None or self.failed_batches is None:
            return None
        return self.deadletters + self.failed_batches


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative `(upper bound, count)` buckets, as PromQL's histogram_quantile
    computes it: linear within the bucket; the highest finite bound if it falls in +Inf."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def summarize(service: str, text: str, *, running: bool = True, url: str = "") -> ServiceHealth:
    """Read one service's health from its /metrics text exposition."""
    sums: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == catalog.CONSUMER_LAG.name:
                sums["lag"] += value
            elif name == catalog.EVENTS_CONSUMED.name and labels.get("outcome") == "handled":
                sums["handled"] += value
            elif name == catalog.DEADLETTERS.name:
                sums["deadletters"] += value
            elif name == catalog.BATCH_FAILURES.name:
                sums["failed_batches"] += value
            elif name == f"{catalog.HANDLER_DURATION.name}_bucket":
                buckets[float(labels["le"])] += value
    pairs = list(buckets.items())
    return ServiceHealth(
        service=service,
        running=running,
        up=True,
        metrics_url=url,
        lag=sums["lag"],
        handled=sums["handled"],
        p50_s=histogram_quantile(0.5, pairs),
        p99_s=histogram_quantile(0.99, pairs),
        deadletters=sums["deadletters"],
        failed_batches=sums["failed_batches"],
    )


def fetch_metrics(url: str, timeout_s: float) -> str:
    """GET a /metrics page (raises OSError on any failure)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body: bytes = response.read()
    return body.decode()


def collect(config: StackConfig, timeout_s: float = 2.0, fetch: Fetch | None = None) -> list[ServiceHealth]:
    """The health of every known service, their endpoints read in parallel with `timeout_s` each."""
    get = fetch or fetch_metrics
    processes = manager(config)
    ports = config.metrics_ports()

    def one(service: str) -> ServiceHealth:
        url = f"http://{config.host}:{ports[service]}/metrics"
        running = processes.is_running(service)
        try:
            text = get(url, timeout_s)
        except (OSError, ValueError) as exc:
            reason = "not running" if not running else f"metrics unreachable: {exc}"
            return ServiceHealth(service, running, False, url, problem=reason)
        try:
            return summarize(service, text, running=running, url=url)
        except (ValueError, KeyError) as exc:
            return ServiceHealth(service, running, False, url, problem=f"unreadable metrics: {exc}")

    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        return list(pool.map(one, ports))


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f}"


def render(rows: list[ServiceHealth]) -> Table:
    """The compact table: one line per service."""
    table = Table("service", "up", "lag", "handled", "p50 ms", "p99 ms", "errors", box=None, pad_edge=False)
    for row in rows:
        if row.up:
            state = "[green]up[/green]"
        elif row.running:
            state = "[red]no metrics[/red]"
        else:
            state = "[dim]stopped[/dim]"
        errors = _count(row.errors)
        if row.errors:
            errors = f"[red]{errors}[/red]"
        lag = _count(row.lag)
        table.add_row(row.service, state, lag, _count(row.handled), _ms(row.p50_s), _ms(row.p99_s), errors)
    return table


def status(
    profile: str | None = typer.Option(
        None, "--profile", help="Stack profile (default: $CAIRN_STACK_PROFILE or 'local')."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    timeout: float = typer.Option(2.0, help="Seconds to wait for each /metrics endpoint."),
) -> None:
    """Per service: up, consumer lag, events handled, p50/p99 handler latency, errors (from /metrics).

    Exits 1 when a running service does not answer on its metrics port.
    """
    config = StackConfig(profile=profile) if profile else StackConfig()
    rows = collect(config, timeout)
    if as_json:
        print(json.dumps([{**asdict(row), "errors": row.errors} for row in rows], indent=2))
    else:
        console.print(render(rows))
    if any(row.running and not row.up for row in rows):
        raise typer.Exit(1)
