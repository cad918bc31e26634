"""`cairn status`: health read from each service's /metrics text, quantiles as PromQL computes them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import typer
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from cairn_cli import status_cmd
from cairn_cli.services_cmd import manager
from cairn_cli.status_cmd import (
    BrokerMember,
    GroupView,
    PartitionLag,
    collect,
    group_lines,
    group_views,
    histogram_quantile,
    partition_text,
    summarize,
)
from cairn_localstack.config import StackConfig
from cairn_observability import catalog
from cairn_observability.metrics import instrument

INF = math.inf


def safety_metrics() -> str:
    """What a safety process would expose after some work (built with the real instruments)."""
    registry = CollectorRegistry()
    consumed = instrument(catalog.EVENTS_CONSUMED, registry)
    consumed.labels("safety", "cairn.contexts", "cairn.context.assembled.v1", "handled").inc(90)
    consumed.labels("safety", "cairn.completions", "cairn.completion.generated.v1", "handled").inc(10)
    consumed.labels("safety", "cairn.contexts", "cairn.prompt.rendered.v1", "skipped").inc(500)
    durations = instrument(catalog.HANDLER_DURATION, registry)
    for _ in range(90):
        durations.labels("safety", "cairn.context.assembled.v1").observe(0.004)  # (0.0025, 0.005]
    for _ in range(10):
        durations.labels("safety", "cairn.completion.generated.v1").observe(0.7)  # (0.5, 1]
    lag = instrument(catalog.CONSUMER_LAG, registry)
    lag.labels("safety", "cairn-safety", "cairn.contexts", "0").set(3)
    lag.labels("safety", "cairn-safety", "cairn.contexts", "1").set(4)
    instrument(catalog.DEADLETTERS, registry).labels("safety", "not_json").inc(2)
    instrument(catalog.BATCH_FAILURES, registry).labels("safety").inc(1)
    return generate_latest(registry).decode()


def test_quantiles_interpolate_within_the_bucket_like_promql() -> None:
    buckets = [(0.1, 50.0), (1.0, 100.0), (INF, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.55)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    assert histogram_quantile(0.99, [(1.0, 10.0), (INF, 20.0)]) == 1.0  # in +Inf: the highest bound
    assert histogram_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]) is None
    assert histogram_quantile(0.5, []) is None
    assert histogram_quantile(0.5, [(1.0, 5.0)]) is None  # no +Inf bucket: not a histogram


def test_a_service_is_summarised_from_its_metrics_text() -> None:
    health = summarize("safety", safety_metrics())
    assert health.up
    assert health.running
    assert (health.lag, health.handled, health.deadletters, health.failed_batches) == (7, 100, 2, 1)
    assert health.errors == 3
    assert health.p50_s is not None
    assert 0.0025 < health.p50_s <= 0.005
    assert health.p99_s is not None
    assert 0.5 < health.p99_s <= 1.0
    assert (health.member, health.group) == ("safety", "cairn-safety")
    assert health.partitions == (PartitionLag("cairn.contexts", 0, 3), PartitionLag("cairn.contexts", 1, 4))
    assert partition_text(health.partitions) == "contexts 0,1"


def test_partitions_are_listed_per_topic_or_counted_when_there_are_many_topics() -> None:
    held = [PartitionLag(f"cairn.t{i}", p, 0) for i in range(4) for p in (1, 3)]
    assert partition_text(held[:4]) == "t0 1,3; t1 1,3"
    assert partition_text(held) == "8 partitions of 4 topics"
    assert partition_text([]) == "-"


def test_an_idle_service_has_zeros_and_no_latency() -> None:
    health = summarize("audit", "")
    assert (health.lag, health.handled, health.errors, health.p50_s, health.p99_s) == (0, 0, 0, None, None)


def test_collect_reads_each_service_on_its_own_port_and_reports_the_silent_ones(tmp_path: Path) -> None:
    config = StackConfig(profile="test", root_dir=tmp_path)
    asked: list[tuple[str, float]] = []

    def fetch(url: str, timeout_s: float) -> str:
        asked.append((url, timeout_s))
        if url == f"http://127.0.0.1:{config.metrics_port('safety')}/metrics":
            return safety_metrics()
        raise ConnectionRefusedError("connection refused")

    rows = {row.service: row for row in collect(config, 0.5, fetch)}
    assert set(rows) == set(config.metrics_ports())
    assert sorted(asked) == sorted(
        (f"http://127.0.0.1:{p}/metrics", 0.5) for p in config.metrics_ports().values()
    )
    assert rows["safety"].up
    assert rows["safety"].lag == 7
    retriever = rows["retriever"]
    assert (retriever.up, retriever.running, retriever.problem) == (False, False, "not running")


def test_collect_reads_every_recorded_member_on_its_own_port(tmp_path: Path) -> None:
    config = StackConfig(profile="test", root_dir=tmp_path)
    pm = manager(config)
    pm.start("safety#2", ["sleep", "60"])
    try:
        member_url = f"http://127.0.0.1:{config.metrics_port('safety', 2)}/metrics"
        rows = collect(config, 0.5, lambda url, _: safety_metrics() if url == member_url else _refuse())
    finally:
        pm.stop("safety#2")
    by_member = {row.member: row for row in rows}
    assert set(by_member) == {*config.metrics_ports(), "safety#2"}
    member = by_member["safety#2"]
    assert (member.service, member.up, member.running, member.metrics_url) == (
        "safety",
        True,
        True,
        member_url,
    )
    assert by_member["safety"].problem == "not running"


def tansu_describe() -> list[object]:
    """A DescribeGroups answer as Tansu gives it: members without client, host or assignment; an
    unknown group as a malformed entry."""
    members = [(f"cairn-retriever-{i}", "", "", b"", b"") for i in range(2)]
    groups = [
        (0, "cairn-retriever", "Stable", "consumer", "", members),
        (-1, None, "", "cairn-x", "Empty", []),
    ]
    return [type("Response", (), {"groups": groups})()]


def test_groups_are_read_from_describe_groups_with_or_without_assignments() -> None:
    views = group_views(tansu_describe(), ["cairn-retriever", "cairn-x"])
    assert views["cairn-retriever"].state == "Stable"
    assert [m.member_id for m in views["cairn-retriever"].members] == [
        "cairn-retriever-0",
        "cairn-retriever-1",
    ]
    assert not views["cairn-retriever"].assignments_known
    assert views["cairn-x"] == GroupView("cairn-x", "unknown")

    assignment = ConsumerProtocolMemberAssignment(0, [("cairn.prompts", [4, 0, 2])], b"").encode()
    kafka = [
        (
            0,
            "cairn-retriever",
            "Stable",
            "consumer",
            "range",
            [("m-1", "cairn-retriever", "/10.0.0.7", b"", assignment)],
        )
    ]
    views = group_views([type("Response", (), {"groups": kafka})()], ["cairn-retriever"])
    member = views["cairn-retriever"].members[0]
    assert member == BrokerMember(
        "m-1",
        "cairn-retriever",
        "/10.0.0.7",
        (("cairn.prompts", 0), ("cairn.prompts", 2), ("cairn.prompts", 4)),
    )
    lines = group_lines([], views)
    assert lines == [
        "cairn-retriever: Stable, 1 member(s) at the broker, 0 running here\n"
        "  m-1 (cairn-retriever@/10.0.0.7): prompts 0,2,4"
    ]


def test_group_lines_say_what_the_broker_does_not_report() -> None:
    rows = [summarize("retriever", "", member=m) for m in ("retriever", "retriever#2")]
    lines = group_lines(rows, group_views(tansu_describe(), ["cairn-retriever"]))
    assert lines[0] == "cairn-retriever: Stable, 2 member(s) at the broker, 2 running here"
    assert "not their partitions" in lines[1]
    assert group_lines(rows, "broker unreachable (TimeoutError: )") == [
        "consumer groups: broker unreachable (TimeoutError: )"
    ]


def test_the_command_prints_json_and_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_STACK_ROOT_DIR", str(tmp_path))
    asked: list[list[str]] = []

    async def describe(bootstrap: str, groups: list[str], timeout_s: float) -> dict[str, GroupView]:
        asked.append(sorted(groups))
        return group_views(tansu_describe(), groups)

    monkeypatch.setattr(status_cmd, "describe_groups", describe)
    monkeypatch.setattr(
        status_cmd,
        "fetch_metrics",
        lambda url, timeout: safety_metrics() if url.endswith(":19562/metrics") else _refuse(),
    )
    app = typer.Typer()
    app.command()(status_cmd.status)
    runner = CliRunner()
    result = runner.invoke(app, ["--profile", "test", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["service"]: row for row in json.loads(result.output)}
    assert rows["safety"]["errors"] == 3
    assert rows["safety"]["up"] is True
    assert rows["safety"]["partitions"] == [
        {"topic": "cairn.contexts", "partition": 0, "lag": 3.0},
        {"topic": "cairn.contexts", "partition": 1, "lag": 4.0},
    ]
    assert (rows["safety"]["group_state"], rows["safety"]["group_members_at_broker"]) == ("unknown", 0)
    assert rows["tuner"]["up"] is False
    assert asked == [["cairn-safety"]]  # only the groups of members that answered

    table = runner.invoke(app, ["--profile", "test"])
    assert table.exit_code == 0, table.output
    safety_line = next(line for line in table.output.splitlines() if line.startswith("safety"))
    assert safety_line.split()[:4] == ["safety", "up", "7", "100"]
    assert safety_line.split()[-2:] == ["contexts", "0,1"]
    assert "cairn-safety: unknown, 0 member(s) at the broker, 0 running here" in table.output
    assert "stopped" in next(line for line in table.output.splitlines() if line.startswith("tuner"))


def _refuse() -> str:
    raise ConnectionRefusedError("refused")
