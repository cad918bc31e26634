"""`cairn status`: a compact health table of the services run against the local stack.

Per service, and per further member of its consumer group (`cairn services up --replicas`): whether
its process runs and its /metrics answers, the partitions it holds and their consumer lag, events
handled, p50/p99 handler latency (from the histogram buckets, since the process started) and errors
(dead letters + batches rewound after a transient failure). All of that is read from each member's
own /metrics endpoint (`CAIRN_METRICS_PORT`, see `StackConfig.metrics_port`), so no Prometheus is
needed. The broker is asked (DescribeGroups, one group per request) which members each consumer group
has; Tansu, the local broker, answers with the members but not their assignments, so the partitions
shown are what each member reports of itself; a broker that reports assignments (Apache Kafka) has
them shown too.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import typer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from cairn_bus.kafka import client_options, start_client
from cairn_cli.services_cmd import manager, recorded_members
from cairn_localstack.config import StackConfig, split_member
from cairn_observability import catalog

console = Console()
Fetch = Callable[[str, float], str]


@dataclass(frozen=True)
class PartitionLag:
    """A partition a member holds, and its lag (records not yet taken) as the member last saw it."""

    topic: str
    partition: int
    lag: float


@dataclass(frozen=True)
class ServiceHealth:
    """What `cairn status` shows for one member of a service's consumer group (the service itself
    when it runs one); None where the metrics could not be read."""

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
    member: str = ""
    """The member's process name (`retriever#2`); the service's name for its first member."""
    group: str | None = None
    """Its consumer group, from its lag metric (else the default `cairn-<service>` when it is up)."""
    partitions: tuple[PartitionLag, ...] = ()

    def __post_init__(self) -> None:
        if not self.member:
            object.__setattr__(self, "member", self.service)

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


def summarize(
    service: str, text: str, *, running: bool = True, url: str = "", member: str = ""
) -> ServiceHealth:
    """Read one service's (or member's) health from its /metrics text exposition."""
    sums: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    partitions: list[PartitionLag] = []
    groups: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == catalog.CONSUMER_LAG.name:
                sums["lag"] += value
                partitions.append(PartitionLag(labels["topic"], int(labels["partition"]), value))
                groups.add(labels["group"])
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
        member=member,
        group=min(groups) if groups else f"cairn-{service}",
        partitions=tuple(sorted(partitions, key=lambda p: (p.topic, p.partition))),
    )


def fetch_metrics(url: str, timeout_s: float) -> str:
    """GET a /metrics page (raises OSError on any failure)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body: bytes = response.read()
    return body.decode()


def collect(config: StackConfig, timeout_s: float = 2.0, fetch: Fetch | None = None) -> list[ServiceHealth]:
    """The health of every known service and of each further member it has a record of, their
    endpoints read in parallel with `timeout_s` each."""
    get = fetch or fetch_metrics
    processes = manager(config)
    targets = [
        (service, name)
        for service in config.metrics_ports()
        for name in dict.fromkeys([service, *recorded_members(processes, service)])
    ]

    def one(target: tuple[str, str]) -> ServiceHealth:
        service, name = target
        url = f"http://{config.host}:{config.metrics_port(service, split_member(name)[1])}/metrics"
        running = processes.is_running(name)
        try:
            text = get(url, timeout_s)
        except (OSError, ValueError) as exc:
            reason = "not running" if not running else f"metrics unreachable: {exc}"
            return ServiceHealth(service, running, False, url, problem=reason, member=name)
        try:
            return summarize(service, text, running=running, url=url, member=name)
        except (ValueError, KeyError) as exc:
            problem = f"unreadable metrics: {exc}"
            return ServiceHealth(service, running, False, url, problem=problem, member=name)

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(one, targets))


@dataclass(frozen=True)
class BrokerMember:
    """A member of a consumer group as the broker describes it; `partitions` is empty where the broker
    does not report assignments (Tansu)."""

    member_id: str
    client_id: str
    host: str
    partitions: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class GroupView:
    """A consumer group as the broker describes it."""

    group: str
    state: str
    members: tuple[BrokerMember, ...] = field(default_factory=tuple)

    @property
    def assignments_known(self) -> bool:
        return any(m.partitions for m in self.members)


def _assignment(raw: bytes) -> tuple[tuple[str, int], ...]:
    if not raw:
        return ()
    try:
        decoded: Any = ConsumerProtocolMemberAssignment.decode(raw)
    except Exception:  # not the consumer protocol, or truncated: show no assignment
        return ()
    return tuple(sorted((tp.topic, tp.partition) for tp in decoded.partitions()))


def group_views(responses: Iterable[Any], asked: Iterable[str]) -> dict[str, GroupView]:
    """The groups in DescribeGroups responses, by id. A group the broker reports with an error, or not
    at all, is `unknown` with no members (Tansu answers an unknown group with a malformed entry)."""
    views = {group: GroupView(group, "unknown") for group in asked}
    for response in responses:
        for entry in response.groups:
            error_code, group, state, _protocol_type, _protocol, members = entry[:6]
            if error_code != 0 or group not in views:
                continue
            views[group] = GroupView(
                group,
                str(state),
                tuple(
                    BrokerMember(str(m[0]), str(m[1]), str(m[2]), _assignment(bytes(m[-1]))) for m in members
                ),
            )
    return views


async def describe_groups(
    bootstrap: str, groups: Iterable[str], timeout_s: float = 5.0
) -> dict[str, GroupView]:
    """Each group's state and members as the broker describes them (raises on a broker failure).

    One group per request: Tansu 0.6 answers a DescribeGroups of several groups with a response the
    client cannot decode (and the connection is dropped)."""
    wanted = sorted(set(groups))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **client_options()
    )
    await asyncio.wait_for(start_client(admin.start, bootstrap), timeout_s)
    try:
        responses = []
        for group in wanted:
            responses += await asyncio.wait_for(admin.describe_consumer_groups([group]), timeout_s)
    finally:
        await admin.close()
    return group_views(responses, wanted)


def broker_groups(
    config: StackConfig, rows: list[ServiceHealth], timeout_s: float
) -> dict[str, GroupView] | str:
    """The groups of the members that answered, as the broker describes them, or why it could not say."""
    groups = {row.group for row in rows if row.up and row.group}
    if not groups:
        return {}
    try:
        return asyncio.run(describe_groups(config.kafka_bootstrap, groups, timeout_s))
    except Exception as exc:
        return f"broker unreachable ({type(exc).__name__}: {exc})"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f}"


def partition_text(partitions: Iterable[PartitionLag], most_topics: int = 3) -> str:
    """The partitions a member holds, per topic (`prompts 0,2,4`); a count where there are many topics."""
    by_topic: dict[str, list[int]] = defaultdict(list)
    for p in partitions:
        by_topic[p.topic.removeprefix("cairn.")].append(p.partition)
    if not by_topic:
        return "-"
    if len(by_topic) > most_topics:
        count = sum(len(v) for v in by_topic.values())
        return f"{count} partitions of {len(by_topic)} topics"
    return "; ".join(f"{topic} {','.join(map(str, sorted(ps)))}" for topic, ps in sorted(by_topic.items()))


def render(rows: list[ServiceHealth]) -> Table:
    """The compact table: one line per member (a service's first member under its own name)."""
    table = Table(
        "service",
        "up",
        "lag",
        "handled",
        "p50 ms",
        "p99 ms",
        "errors",
        "partitions",
        box=None,
        pad_edge=False,
    )
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
        parts = partition_text(row.partitions) if row.up else "-"
        table.add_row(
            row.member, state, lag, _count(row.handled), _ms(row.p50_s), _ms(row.p99_s), errors, parts
        )
    return table


def group_lines(rows: list[ServiceHealth], groups: dict[str, GroupView] | str) -> list[str]:
    """One line per consumer group: its state and members at the broker against those running here."""
    if isinstance(groups, str):
        return [f"consumer groups: {groups}"]
    lines = []
    for group, view in sorted(groups.items()):
        here = sum(1 for row in rows if row.group == group and row.running)
        line = f"{group}: {view.state}, {len(view.members)} member(s) at the broker, {here} running here"
        for member in view.members if view.assignments_known else ():
            held = partition_text(PartitionLag(t, p, 0) for t, p in member.partitions)
            line += f"\n  {member.member_id} ({member.client_id}@{member.host}): {held}"
        lines.append(line)
    if any(view.members and not view.assignments_known for view in groups.values()):
        lines.append(
            "(the broker names the members but not their partitions, as Tansu does: the partitions "
            "above are what each member reports on its /metrics)"
        )
    return lines


def status(
    profile: str | None = typer.Option(
        None, "--profile", help="Stack profile (default: $CAIRN_STACK_PROFILE or 'local')."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    timeout: float = typer.Option(2.0, help="Seconds to wait for each /metrics endpoint."),
) -> None:
    """Per service: up, consumer lag, events handled, p50/p99 handler latency, errors (from /metrics).

    A service run as several members of its consumer group (`cairn services up --replicas`) has a line
    per member, each with the partitions it holds; then each group's members as the broker sees them.

    Exits 1 when a running service does not answer on its metrics port.
    """
    config = StackConfig(profile=profile) if profile else StackConfig()
    rows = collect(config, timeout)
    groups = broker_groups(config, rows, timeout)
    if as_json:
        out = []
        for row in rows:
            view = groups.get(row.group) if isinstance(groups, dict) and row.group else None
            out.append(
                {
                    **asdict(row),
                    "errors": row.errors,
                    "group_state": view.state if view else None,
                    "group_members_at_broker": len(view.members) if view else None,
                }
            )
        print(json.dumps(out, indent=2))
    else:
        console.print(render(rows))
        for line in group_lines(rows, groups):
            console.print(line, markup=False, highlight=False)
    if any(row.running and not row.up for row in rows):
        raise typer.Exit(1)
