"""The Prometheus metrics every service exports."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import REGISTRY

from cairn_observability import DEADLETTERS, EVENTS_CONSUMED, EVENTS_PUBLISHED, HANDLER_SECONDS, serve_metrics


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_counters_count_by_their_labels() -> None:
    labels = {"service": "obs-test", "topic": "cairn.requests", "event_type": "cairn.request.submitted.v1"}
    consumed = {**labels, "outcome": "handled"}
    before = value("cairn_events_consumed_total", **consumed)
    skipped_before = value("cairn_events_consumed_total", **{**labels, "outcome": "skipped"})
    EVENTS_CONSUMED.labels("obs-test", "cairn.requests", "cairn.request.submitted.v1", "handled").inc()
    EVENTS_CONSUMED.labels(**consumed).inc(2)
    assert value("cairn_events_consumed_total", **consumed) == before + 3
    assert value("cairn_events_consumed_total", **{**labels, "outcome": "skipped"}) == skipped_before

    published_before = value("cairn_events_published_total", **labels)
    EVENTS_PUBLISHED.labels(**labels).inc()
    assert value("cairn_events_published_total", **labels) == published_before + 1

    dead_before = value("cairn_deadletters_total", service="obs-test", kind="not_json")
    DEADLETTERS.labels("obs-test", "not_json").inc()
    assert value("cairn_deadletters_total", service="obs-test", kind="not_json") == dead_before + 1


def test_handler_durations_fall_into_buckets() -> None:
    labels = {"service": "obs-test", "event_type": "cairn.prompt.rendered.v1"}
    le_5ms = value("cairn_handler_duration_seconds_bucket", **labels, le="0.005")
    le_2ms = value("cairn_handler_duration_seconds_bucket", **labels, le="0.0025")
    count = value("cairn_handler_duration_seconds_count", **labels)
    HANDLER_SECONDS.labels(**labels).observe(0.003)
    assert value("cairn_handler_duration_seconds_bucket", **labels, le="0.005") == le_5ms + 1
    assert value("cairn_handler_duration_seconds_bucket", **labels, le="0.0025") == le_2ms
    assert value("cairn_handler_duration_seconds_count", **labels) == count + 1
    assert value("cairn_handler_duration_seconds_bucket", **labels, le="30.0") >= 1


def test_serve_metrics_exposes_them_over_http() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    DEADLETTERS.labels("obs-http", "unknown_type").inc()
    serve_metrics(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert 'cairn_deadletters_total{kind="unknown_type",service="obs-http"} 1.0' in body
    assert "# TYPE cairn_handler_duration_seconds histogram" in body
