"""`cairn status`: health read from each service's /metrics text, quantiles as PromQL computes them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import typer
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from cairn_cli import status_cmd
from cairn_cli.status_cmd import collect, histogram_quantile, summarize
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


def test_the_command_prints_json_and_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_STACK_ROOT_DIR", str(tmp_path))
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
    assert rows["tuner"]["up"] is False

    table = runner.invoke(app, ["--profile", "test"])
    assert table.exit_code == 0, table.output
    safety_line = next(line for line in table.output.splitlines() if line.startswith("safety"))
    assert safety_line.split()[:4] == ["safety", "up", "7", "100"]
    assert "stopped" in next(line for line in table.output.splitlines() if line.startswith("tuner"))


def _refuse() -> str:
    raise ConnectionRefusedError("refused")
