"""After traffic, the service's /metrics shows the named series with the right labels.

The inference service runs against the real broker with the tiny model; /metrics is scraped over
HTTP from prometheus_client's exposition of the registry the service records into, as Prometheus
would scrape `CAIRN_METRICS_PORT`.
"""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_events import CompletionGeneratedV1, ResponseCompletedV1
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_testing import expect_events, running_service
from cairn_testing.tiny import TINY_MODEL_NAME

from .conftest import screened
from .test_inference_service import for_request, service_settings

pytestmark = pytest.mark.integration

Sample = tuple[str, dict[str, str], float]


@pytest.fixture
def metrics_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server, thread = start_http_server(port, addr="127.0.0.1")
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
async def upstream(kafka_bootstrap: str) -> AsyncIterator[KafkaPublisher]:
    await ensure_topics(kafka_bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield KafkaPublisher(producer, "/cairn/safety", service="safety")
    await producer.stop()


def scrape(url: str) -> list[Sample]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    return [
        (s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples
    ]


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s[0] == name and all(s[1].get(k) == v for k, v in labels.items())]


async def test_metrics_after_a_completion_and_a_failure(
    kafka_bootstrap: str,
    unique_group: str,
    tiny_model_dir: Path,
    upstream: KafkaPublisher,
    metrics_url: str,
    tmp_path: Path,
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "default: {input_per_mtok: 1.0, output_per_mtok: 2.0}\n"
        f"models:\n  {TINY_MODEL_NAME}: {{input_per_mtok: 100.0, output_per_mtok: 300.0}}\n"
        "budgets:\n  default: 7.5\n"
    )
    tenant = f"metrics-{uuid.uuid4().hex[:6]}"
    settings = await service_settings(kafka_bootstrap, unique_group, tiny_model_dir, price_table=str(prices))
    ok, bad = f"req-{uuid.uuid4().hex[:12]}", f"req-{uuid.uuid4().hex[:12]}"
    async with (
        running_service(router, settings, build),
        expect_events(kafka_bootstrap, CompletionGeneratedV1.topic, where=for_request(ok)) as completions,
        expect_events(kafka_bootstrap, ResponseCompletedV1.topic, where=for_request(bad)) as failures,
    ):
        await upstream.publish(screened(request_id=ok, tenant=tenant, model=None, params={"max_tokens": 6}))
        await upstream.publish(screened(request_id=bad, tenant=tenant, model="gpt-5"))
    assert completions.events
    assert failures.events
    samples = scrape(metrics_url)

    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "transformers",
        "gen_ai_request_model": TINY_MODEL_NAME,
    }
    output = find(samples, "gen_ai_client_token_usage_bucket", **genai, gen_ai_token_type="output", le="+Inf")
    assert output
    assert output[0][2] >= 1
    assert find(samples, "gen_ai_client_token_usage_count", **genai, gen_ai_token_type="input")
    assert find(samples, "gen_ai_client_operation_duration_seconds_count", **genai, error_type="")
    assert find(samples, "cairn_time_to_first_token_seconds_count", gen_ai_request_model=TINY_MODEL_NAME)

    [cost] = find(samples, "cairn_cost_usd_total", tenant=tenant, model=TINY_MODEL_NAME)
    assert cost[2] > 0
    [budget] = find(samples, "cairn_cost_budget_usd", tenant=tenant)
    assert budget[2] == 7.5

    prompt = screened().prompt_name
    [failed] = find(samples, "cairn_requests_total", status="failed", tenant=tenant, prompt=prompt)
    assert failed[2] == 1

    lag = find(
        samples, "cairn_consumer_lag", service="inference", group=unique_group, topic="cairn.screenings"
    )
    assert lag, "consumer lag per group and partition"
    assert all(s[1]["partition"].isdigit() for s in lag)
    assert find(samples, "cairn_deadletters_total", service="inference")
    assert find(samples, "cairn_hop_latency_seconds_count", service="inference", hop="cairn.screenings")
