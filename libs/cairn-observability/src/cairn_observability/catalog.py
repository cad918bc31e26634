"""Every metric a Cairn service exports, in one place: name, type, labels, help and buckets.

The names are the ones Prometheus shows (counters end in `_total`, seconds in `_seconds`), so alert
rules, dashboards and `cairn status` are checked against this module; `cairn_observability.metrics`
builds the prometheus_client instruments from it. The GenAI metrics follow the OpenTelemetry
semantic conventions (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`) as an
OpenTelemetry Prometheus exporter would name them: dots become underscores, the unit `s` becomes
`_seconds`, attributes become labels of the same (underscored) name.

`recorded_by` says who observes a metric: `bus` metrics are recorded for every service by
cairn-bus; `service` metrics by the service code that knows the value (inference, safety, ...).
A series scraped by Prometheus also carries the target's `service` label (see
infra/prometheus/prometheus.yml), so service-recorded metrics do not repeat it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class MetricKind(StrEnum):
    """The Prometheus metric type."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: what Prometheus calls it, its type, labels, help text and buckets."""

    name: str
    kind: MetricKind
    labels: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()
    recorded_by: Literal["bus", "service"] = "service"

    def __post_init__(self) -> None:
        if (self.kind is MetricKind.COUNTER) != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counter names, and only they, end in _total")
        if (self.kind is MetricKind.HISTOGRAM) != bool(self.buckets):
            raise ValueError(f"{self.name}: histograms, and only they, have buckets")
        if list(self.buckets) != sorted(set(self.buckets)):
            raise ValueError(f"{self.name}: buckets must increase")

    @property
    def family(self) -> str:
        """The family name in the text exposition (`# TYPE` line): counters without `_total`."""
        return self.name.removesuffix("_total") if self.kind is MetricKind.COUNTER else self.name

    @property
    def series_names(self) -> frozenset[str]:
        """Every sample name this family exposes (`_bucket`, `_sum`, `_count`, `_created`)."""
        if self.kind is MetricKind.COUNTER:
            return frozenset({self.name, f"{self.family}_created"})
        if self.kind is MetricKind.HISTOGRAM:
            return frozenset(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created"))
        return frozenset({self.name})


_SECONDS_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SECONDS_HOP = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_SECONDS_REQUEST = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
_SCORE_0_1 = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: OpenTelemetry GenAI semantic conventions, advised explicit bucket boundaries.
_GEN_AI_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_GEN_AI_SECONDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_GEN_AI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")

# -- recorded by cairn-bus for every service ---------------------------------------------------

EVENTS_CONSUMED = MetricSpec(
    "cairn_events_consumed_total",
    MetricKind.COUNTER,
    ("service", "topic", "event_type", "outcome"),
    "Events taken from the bus, by outcome (handled, skipped, deadlettered).",
    recorded_by="bus",
)
EVENTS_PUBLISHED = MetricSpec(
    "cairn_events_published_total",
    MetricKind.COUNTER,
    ("service", "topic", "event_type"),
    "Events published to the bus.",
    recorded_by="bus",
)
DEADLETTERS = MetricSpec(
    "cairn_deadletters_total",
    MetricKind.COUNTER,
    ("service", "kind"),
    "Messages sent to the dead-letter topic, by kind.",
    recorded_by="bus",
)
HANDLER_DURATION = MetricSpec(
    "cairn_handler_duration_seconds",
    MetricKind.HISTOGRAM,
    ("service", "event_type"),
    "Time spent in one successful event handler call.",
    _SECONDS_FAST,
    recorded_by="bus",
)
HANDLER_ERRORS = MetricSpec(
    "cairn_handler_errors_total",
    MetricKind.COUNTER,
    ("service", "event_type", "retryable"),
    "Handler attempts that raised; retryable=true for transient failures (the batch is redelivered).",
    recorded_by="bus",
)
BATCH_FAILURES = MetricSpec(
    "cairn_batch_failures_total",
    MetricKind.COUNTER,
    ("service",),
    "Consumed batches that failed transiently and were rewound for redelivery.",
    recorded_by="bus",
)
HOP_LATENCY = MetricSpec(
    "cairn_hop_latency_seconds",
    MetricKind.HISTOGRAM,
    ("service", "hop"),
    "From a record's broker timestamp to the end of its handling, by hop (the consumed topic).",
    _SECONDS_HOP,
    recorded_by="bus",
)
CONSUMER_LAG = MetricSpec(
    "cairn_consumer_lag",
    MetricKind.GAUGE,
    ("service", "group", "topic", "partition"),
    "Records in a partition not yet consumed by the group (highwater - position), after each batch.",
    recorded_by="bus",
)

# -- recorded by the services ------------------------------------------------------------------

GEN_AI_TOKEN_USAGE = MetricSpec(
    "gen_ai_client_token_usage",
    MetricKind.HISTOGRAM,
    (*_GEN_AI_LABELS, "gen_ai_token_type"),
    "Tokens used per GenAI operation (gen_ai.client.token.usage), by token type (input, output).",
    _GEN_AI_TOKENS,
)
GEN_AI_OPERATION_DURATION = MetricSpec(
    "gen_ai_client_operation_duration_seconds",
    MetricKind.HISTOGRAM,
    (*_GEN_AI_LABELS, "error_type"),
    "Duration of one GenAI operation (gen_ai.client.operation.duration); error_type empty on success.",
    _GEN_AI_SECONDS,
)
TIME_TO_FIRST_TOKEN = MetricSpec(
    "cairn_time_to_first_token_seconds",
    MetricKind.HISTOGRAM,
    ("gen_ai_request_model",),
    "From the start of generation to the first output token.",
    _GEN_AI_SECONDS,
)
COST = MetricSpec(
    "cairn_cost_usd_total",
    MetricKind.COUNTER,
    ("tenant", "model"),
    "Cost of model usage in US dollars, from the price table in config.",
)
COST_BUDGET = MetricSpec(
    "cairn_cost_budget_usd",
    MetricKind.GAUGE,
    ("tenant",),
    "Daily cost budget of a tenant in US dollars, from config (the cost alert compares against it).",
)
CACHE_REQUESTS = MetricSpec(
    "cairn_cache_requests_total",
    MetricKind.COUNTER,
    ("tenant", "kind", "result"),
    "Requests inference's response cache saw, by kind (exact, semantic; empty for a bypass) and result "
    "(hit, miss, bypass).",
)
CACHE_TOKENS_SAVED = MetricSpec(
    "cairn_cache_tokens_saved_total",
    MetricKind.COUNTER,
    ("tenant",),
    "Tokens (input and output) of the answers the response cache reused instead of generating.",
)
CACHE_COST_SAVED = MetricSpec(
    "cairn_cache_cost_saved_usd_total",
    MetricKind.COUNTER,
    ("tenant",),
    "What the answers the response cache reused would have cost, in US dollars (the price table).",
)
REQUESTS = MetricSpec(
    "cairn_requests_total",
    MetricKind.COUNTER,
    ("status", "tenant", "prompt"),
    "Requests answered, by final status (completed, blocked, rejected, failed).",
)
REQUEST_DURATION = MetricSpec(
    "cairn_request_duration_seconds",
    MetricKind.HISTOGRAM,
    ("status", "tenant"),
    "From request.submitted to response.completed, by final status.",
    _SECONDS_REQUEST,
)
REPLAY_REQUESTS = MetricSpec(
    "cairn_replay_requests_total",
    MetricKind.COUNTER,
    ("status", "tenant", "prompt"),
    "Replayed and shadow requests (ce_replayid set) answered, by final status; never in cairn_requests_total.",
)
RETRIEVAL_HITS = MetricSpec(
    "cairn_retrieval_hits_total",
    MetricKind.COUNTER,
    ("tenant", "outcome"),
    "Retrievals by outcome: hit (at least one chunk above min_score) or miss.",
)
RETRIEVAL_SOURCE_FEEDBACK = MetricSpec(
    "cairn_retrieval_source_feedback_total",
    MetricKind.COUNTER,
    ("tenant", "outcome"),
    "Feedback naming the right source (tag `source:<uri>`), by whether the request retrieved it: "
    "retrieved, missed, or unknown (the request's context not seen yet).",
)
SAFETY_VERDICTS = MetricSpec(
    "cairn_safety_verdicts_total",
    MetricKind.COUNTER,
    ("stage", "verdict", "policy"),
    "Screenings by stage (input, output), verdict and policy.",
)
SAFETY_CHECKS_FIRED = MetricSpec(
    "cairn_safety_checks_fired_total",
    MetricKind.COUNTER,
    ("stage", "check"),
    "Checks whose threshold was crossed, by stage and check (e.g. toxicity, pii.email).",
)
SAFETY_REVIEWS_RESOLVED = MetricSpec(
    "cairn_safety_reviews_resolved_total",
    MetricKind.COUNTER,
    ("stage", "decision", "by"),
    "Review decisions by stage (input, output), decision (approve, edit, reject) and who made them "
    "(reviewer, or deadline when the policy's default applied).",
)
SAFETY_GROUNDEDNESS_ACTIONS = MetricSpec(
    "cairn_safety_groundedness_actions_total",
    MetricKind.COUNTER,
    ("policy", "action"),
    "Answers the safety groundedness gate scored, by policy and action (pass, flag, cite, review).",
)
SAFETY_GROUNDEDNESS_SCORE = MetricSpec(
    "cairn_safety_groundedness_score",
    MetricKind.HISTOGRAM,
    ("policy",),
    "Groundedness of answers in their retrieved chunks at release (0 .. 1), scored by the safety gate.",
    _SCORE_0_1,
)
SAFETY_API_SCREENINGS = MetricSpec(
    "cairn_safety_api_screenings_total",
    MetricKind.COUNTER,
    ("stage", "verdict", "policy"),
    "Texts screened on request through the safety API (`POST /v1/screen`, outside the event path), "
    "by stage, verdict and policy.",
)
GATEWAY_REQUESTS = MetricSpec(
    "cairn_gateway_requests_total",
    MetricKind.COUNTER,
    ("route", "status", "outcome"),
    "HTTP requests answered by the gateway, by route, HTTP status and outcome (`completed`, "
    "`blocked`, `rejected`, `failed`, `held`, `timeout`, `replayed`, `unauthorized`, `invalid`, ...).",
)
GATEWAY_REQUEST_DURATION = MetricSpec(
    "cairn_gateway_request_duration_seconds",
    MetricKind.HISTOGRAM,
    ("route", "status"),
    "Seconds from an HTTP request reaching the gateway to its answer, by route and HTTP status.",
    _SECONDS_REQUEST,
)
GATEWAY_STREAMS = MetricSpec(
    "cairn_gateway_streams_total",
    MetricKind.COUNTER,
    ("outcome",),
    "Streamed chat completions (`stream: true`) by how the stream ended (`completed`, `blocked`, "
    "`replaced`, `held`, `rejected`, `failed`, `timeout`, `disconnected`, `replayed`).",
)
FEEDBACK_SCORE = MetricSpec(
    "cairn_feedback_score",
    MetricKind.HISTOGRAM,
    ("tenant",),
    "User feedback ratings (1 bad .. 5 excellent).",
    (1, 2, 3, 4, 5),
)
GROUNDEDNESS = MetricSpec(
    "cairn_groundedness_score",
    MetricKind.HISTOGRAM,
    ("tenant", "model"),
    "Groundedness of live responses in their retrieved context (0 .. 1), scored by the evaluator.",
    _SCORE_0_1,
)
SHADOW_MIRRORED = MetricSpec(
    "cairn_shadow_requests_mirrored_total",
    MetricKind.COUNTER,
    ("shadow",),
    "Live requests the evaluator mirrored to a shadow's candidate.",
)
SHADOW_ANSWERS = MetricSpec(
    "cairn_shadow_answers_total",
    MetricKind.COUNTER,
    ("shadow", "side", "status"),
    "Final answers filed for shadow pairs, by side (live or shadow) and status.",
)
SHADOW_PAIRS = MetricSpec(
    "cairn_shadow_pairs_total",
    MetricKind.COUNTER,
    ("shadow",),
    "Mirrored requests with both answers filed (a pair, scored).",
)
SHADOW_GROUNDEDNESS = MetricSpec(
    "cairn_shadow_groundedness_score",
    MetricKind.HISTOGRAM,
    ("shadow", "side"),
    "Groundedness of the answers of shadow pairs (0 .. 1), live and shadow side.",
    _SCORE_0_1,
)
DRIFT = MetricSpec(
    "cairn_drift_score",
    MetricKind.GAUGE,
    ("signal",),
    "Drift of a live signal against its reference window (population stability index; >0.25 is drift).",
)

CATALOG: tuple[MetricSpec, ...] = (
    EVENTS_CONSUMED,
    EVENTS_PUBLISHED,
    DEADLETTERS,
    HANDLER_DURATION,
    HANDLER_ERRORS,
    BATCH_FAILURES,
    HOP_LATENCY,
    CONSUMER_LAG,
    GEN_AI_TOKEN_USAGE,
    GEN_AI_OPERATION_DURATION,
    TIME_TO_FIRST_TOKEN,
    COST,
    COST_BUDGET,
    CACHE_REQUESTS,
    CACHE_TOKENS_SAVED,
    CACHE_COST_SAVED,
    REQUESTS,
    REQUEST_DURATION,
    REPLAY_REQUESTS,
    RETRIEVAL_HITS,
    RETRIEVAL_SOURCE_FEEDBACK,
    SAFETY_VERDICTS,
    SAFETY_CHECKS_FIRED,
    SAFETY_REVIEWS_RESOLVED,
    SAFETY_GROUNDEDNESS_ACTIONS,
    SAFETY_GROUNDEDNESS_SCORE,
    SAFETY_API_SCREENINGS,
    GATEWAY_REQUESTS,
    GATEWAY_REQUEST_DURATION,
    GATEWAY_STREAMS,
    FEEDBACK_SCORE,
    GROUNDEDNESS,
    SHADOW_MIRRORED,
    SHADOW_ANSWERS,
    SHADOW_PAIRS,
    SHADOW_GROUNDEDNESS,
    DRIFT,
)

#: Series that Prometheus itself adds to every target (valid in rules and dashboards).
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def series_names(specs: Iterable[MetricSpec] = CATALOG) -> frozenset[str]:
    """Every sample name the given families expose."""
    return frozenset(name for spec in specs for name in spec.series_names)


def spec_for_series(name: str) -> MetricSpec | None:
    """The family a sample name (`cairn_handler_duration_seconds_bucket`, ...) belongs to, if any."""
    for spec in CATALOG:
        if name in spec.series_names:
            return spec
    return None
