"""Prometheus metrics every Cairn service exports."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

EVENTS_CONSUMED = Counter(
    "cairn_events_consumed_total",
    "Events taken from the bus, by outcome (handled, skipped, duplicate, deadlettered).",
    ["service", "topic", "event_type", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "cairn_events_published_total", "Events published to the bus.", ["service", "topic", "event_type"]
)
DEADLETTERS = Counter(
    "cairn_deadletters_total", "Messages sent to the dead-letter topic, by kind.", ["service", "kind"]
)
HANDLER_SECONDS = Histogram(
    "cairn_handler_duration_seconds",
    "Time spent in one event handler.",
    ["service", "event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics for Prometheus on host:port (a daemon thread)."""
    start_http_server(port, addr=host)
