"""The metric catalog: one spec per family, instruments built from it, names as Prometheus shows them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cairn_observability import metrics
from cairn_observability.catalog import CATALOG, MetricKind, MetricSpec, series_names, spec_for_series
from cairn_observability.metrics import instrument


def test_family_names_are_unique_and_follow_prometheus_conventions() -> None:
    names = [spec.name for spec in CATALOG]
    assert len(names) == len(set(names))
    for spec in CATALOG:
        assert spec.name.startswith(("cairn_", "gen_ai_")), spec.name
        assert spec.help.endswith((".", ")")), spec.name
        assert "le" not in spec.labels
        assert "quantile" not in spec.labels
        if "duration" in spec.name or "latency" in spec.name:
            assert spec.name.endswith("_seconds"), spec.name


def test_the_genai_metrics_follow_the_semantic_conventions() -> None:
    by_name = {spec.name: spec for spec in CATALOG}
    tokens = by_name["gen_ai_client_token_usage"]
    assert tokens.kind is MetricKind.HISTOGRAM
    assert tokens.labels == (
        "gen_ai_operation_name",
        "gen_ai_provider_name",
        "gen_ai_request_model",
        "gen_ai_token_type",
    )
    duration = by_name["gen_ai_client_operation_duration_seconds"]
    assert duration.buckets[0] == 0.01
    assert duration.buckets[-1] == 81.92
    assert by_name["cairn_cost_usd_total"].labels == ("tenant", "model")
    assert by_name["cairn_consumer_lag"].labels == ("service", "group", "topic", "partition")


@pytest.mark.parametrize(
    ("name", "kind", "buckets"),
    [
        ("cairn_x", MetricKind.COUNTER, ()),
        ("cairn_x_total", MetricKind.GAUGE, ()),
        ("cairn_x_seconds", MetricKind.HISTOGRAM, ()),
        ("cairn_x", MetricKind.GAUGE, (1.0,)),
        ("cairn_x_seconds", MetricKind.HISTOGRAM, (2.0, 1.0)),
    ],
)
def test_a_malformed_spec_is_refused(name: str, kind: MetricKind, buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        MetricSpec(name, kind, (), "help.", buckets)


def test_every_module_instrument_is_registered_from_its_spec() -> None:
    registered = {
        getattr(metrics, attr)._name: getattr(metrics, attr)
        for attr in dir(metrics)
        if attr.isupper() and hasattr(getattr(metrics, attr), "_labelnames")
    }
    for spec in CATALOG:
        made = registered[spec.family]
        assert made._labelnames == spec.labels, spec.name
        assert made._type == spec.kind.value
        if spec.kind is MetricKind.HISTOGRAM:
            assert tuple(made._upper_bounds[:-1]) == spec.buckets


def test_series_names_are_what_the_exposition_shows() -> None:
    registry = CollectorRegistry()
    for spec in CATALOG:
        made = instrument(spec, registry)
        child = made.labels(*("x" for _ in spec.labels))
        if spec.kind is MetricKind.HISTOGRAM:
            child.observe(1)  # type: ignore[union-attr]
        elif spec.kind is MetricKind.COUNTER:
            child.inc()  # type: ignore[union-attr]
        else:
            child.set(1)  # type: ignore[union-attr]
    exposed = {
        sample.name
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert exposed == series_names()
    assert spec_for_series("cairn_handler_duration_seconds_bucket") is not None
    assert spec_for_series("cairn_deadletters_total") is not None
    assert spec_for_series("cairn_deadletters") is None
