"""The Prometheus instruments of a Cairn service, built from `catalog` (prometheus_client).

prometheus_client is the exposition library: the OpenTelemetry Prometheus exporter is not a
pinned dependency, and the catalog already names everything the Prometheus way. The `bus`
instruments are recorded by cairn-bus for every service; the others by service code.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from cairn_observability import catalog
from cairn_observability.catalog import MetricKind, MetricSpec

Instrument = Counter | Gauge | Histogram


def instrument(spec: MetricSpec, registry: CollectorRegistry | None = REGISTRY) -> Instrument:
    """A prometheus_client instrument for `spec`, registered in `registry` (None: unregistered)."""
    if spec.kind is MetricKind.COUNTER:
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind is MetricKind.GAUGE:
        return Gauge(spec.name, spec.help, spec.labels, registry=registry)
    return Histogram(spec.name, spec.help, spec.labels, buckets=spec.buckets, registry=registry)


def _counter(spec: MetricSpec) -> Counter:
    made = instrument(spec)
    assert isinstance(made, Counter)
    return made


def _gauge(spec: MetricSpec) -> Gauge:
    made = instrument(spec)
    assert isinstance(made, Gauge)
    return made


def _histogram(spec: MetricSpec) -> Histogram:
    made = instrument(spec)
    assert isinstance(made, Histogram)
    return made


# recorded by cairn-bus
EVENTS_CONSUMED = _counter(catalog.EVENTS_CONSUMED)
EVENTS_PUBLISHED = _counter(catalog.EVENTS_PUBLISHED)
DEADLETTERS = _counter(catalog.DEADLETTERS)
HANDLER_SECONDS = _histogram(catalog.HANDLER_DURATION)
HANDLER_ERRORS = _counter(catalog.HANDLER_ERRORS)
BATCH_FAILURES = _counter(catalog.BATCH_FAILURES)
HOP_LATENCY = _histogram(catalog.HOP_LATENCY)
CONSUMER_LAG = _gauge(catalog.CONSUMER_LAG)

# recorded by the services
GEN_AI_TOKEN_USAGE = _histogram(catalog.GEN_AI_TOKEN_USAGE)
GEN_AI_OPERATION_DURATION = _histogram(catalog.GEN_AI_OPERATION_DURATION)
TIME_TO_FIRST_TOKEN = _histogram(catalog.TIME_TO_FIRST_TOKEN)
COST_USD = _counter(catalog.COST)
COST_BUDGET_USD = _gauge(catalog.COST_BUDGET)
CACHE_REQUESTS = _counter(catalog.CACHE_REQUESTS)
CACHE_TOKENS_SAVED = _counter(catalog.CACHE_TOKENS_SAVED)
CACHE_COST_SAVED_USD = _counter(catalog.CACHE_COST_SAVED)
REQUESTS = _counter(catalog.REQUESTS)
REQUEST_SECONDS = _histogram(catalog.REQUEST_DURATION)
REPLAY_REQUESTS = _counter(catalog.REPLAY_REQUESTS)
RETRIEVAL_HITS = _counter(catalog.RETRIEVAL_HITS)
RETRIEVAL_SOURCE_FEEDBACK = _counter(catalog.RETRIEVAL_SOURCE_FEEDBACK)
SAFETY_VERDICTS = _counter(catalog.SAFETY_VERDICTS)
SAFETY_CHECKS_FIRED = _counter(catalog.SAFETY_CHECKS_FIRED)
SAFETY_REVIEWS_RESOLVED = _counter(catalog.SAFETY_REVIEWS_RESOLVED)
SAFETY_GROUNDEDNESS_ACTIONS = _counter(catalog.SAFETY_GROUNDEDNESS_ACTIONS)
SAFETY_GROUNDEDNESS_SCORE = _histogram(catalog.SAFETY_GROUNDEDNESS_SCORE)
SAFETY_API_SCREENINGS = _counter(catalog.SAFETY_API_SCREENINGS)
GATEWAY_REQUESTS = _counter(catalog.GATEWAY_REQUESTS)
GATEWAY_REQUEST_SECONDS = _histogram(catalog.GATEWAY_REQUEST_DURATION)
GATEWAY_STREAMS = _counter(catalog.GATEWAY_STREAMS)
FEEDBACK_SCORE = _histogram(catalog.FEEDBACK_SCORE)
GROUNDEDNESS = _histogram(catalog.GROUNDEDNESS)
SHADOW_MIRRORED = _counter(catalog.SHADOW_MIRRORED)
SHADOW_ANSWERS = _counter(catalog.SHADOW_ANSWERS)
SHADOW_PAIRS = _counter(catalog.SHADOW_PAIRS)
SHADOW_GROUNDEDNESS = _histogram(catalog.SHADOW_GROUNDEDNESS)
DRIFT = _gauge(catalog.DRIFT)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics for Prometheus on host:port (a daemon thread)."""
    start_http_server(port, addr=host)
