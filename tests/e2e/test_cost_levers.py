"""The cost levers end to end: the request path and the audit service as processes, the real small model,
driven only through topics.

Response cache: inference with `CAIRN_RESPONSE_CACHE=semantic` (exact reuse for every prompt, and the
semantic cache for prompts that opt in; in-memory store).

The same question asked twice at temperature 0 is generated once: the second answer comes from the
cache, names the first request as its source, passes output screening like any answer, keeps its
citations, and the audit trail records the hit. A sampled question (temperature > 0) bypasses it.
With a prompt that opts in to the semantic cache (`qa-semantic`: the `qa` prompt with one passage,
`cache_semantic` and its own threshold), a reworded question is answered with the stored answer (kind
`semantic`, with its similarity, in the response and the trail), and the same question negated is
generated (the signature guard).

Inference also loads the int8 copy of the model (`CAIRN_QUANTIZED_BACKENDS`): a version registered with
`cairn tune register-base --quantization int8` is answered by that backend, and the trail says so.

Routing (`tests/e2e/routing/default.yaml`, for this module's tenant only): with three backends - the
full-precision base, its int8 copy, and a version made to fail (its adapter files do not exist) - a batch
request passes over the failing one to int8, and an interactive one gives int8 10 ms before the
full-precision model answers; each response's `route` names the rule and why each model was passed over.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.domain.records import AuditRecord
from cairn_events import (
    ModelRegisteredV1,
    Quantization,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
)
from cairn_testing.processes import ServiceProcesses, run_cairn

from .harness import REPO, Upstream, key_of, new_request_id, send

pytestmark = pytest.mark.integration

E2E_SERVICES = ["audit", "prompt-store", "retriever", "safety", "inference"]
E2E_SERVICE_ENV = {
    "inference": {
        "CAIRN_RESPONSE_CACHE": "semantic",
        "CAIRN_RESPONSE_CACHE_STORE": "memory",
        "CAIRN_QUANTIZED_BACKENDS": '["int8"]',
        "CAIRN_ROUTING_DIR": str(REPO / "tests" / "e2e" / "routing"),
    }
}
TOKENS = 16


def ask(
    question: str,
    temperature: float = 0.0,
    model: str | None = None,
    tenant: str = "e2e-cache",
    latency_class: str | None = None,
) -> RequestSubmittedV1:
    params: dict[str, object] = {"max_tokens": TOKENS, "temperature": temperature}
    if latency_class is not None:
        params["latency_class"] = latency_class
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("cache"),
            "tenant": tenant,
            "prompt": "qa@production",
            "variables": {"question": question},
            "params": params,
            "model": model,
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


async def answered(
    upstream: Upstream, make: Callable[[], RequestSubmittedV1]
) -> tuple[str, ResponseCompletedV1]:
    """Ask `make()` until inference has learnt the models it names from cairn.models (at its own pace)
    and answers; the request id and the response."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        request = make()
        await upstream.submit(request)
        answer = await upstream.response(request.request_id)
        waiting = answer.reason is not None and "is not served here" in answer.reason
        if not waiting or loop.time() > deadline:
            return request.request_id, answer
        await asyncio.sleep(1.0)


async def stored_completion(store: PostgresAuditStore, request_id: str, timeout: float = 60.0) -> AuditRecord:
    """The request's completion as the audit service stored it (it consumes on its own pace)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = [r for r in await store.trail(request_id) if r.event_type == "cairn.completion.generated.v1"]
        if found:
            return found[0]
        assert loop.time() < deadline, f"the audit trail of {request_id} has no completion"
        await asyncio.sleep(0.5)


async def test_an_identical_question_is_answered_from_the_cache_and_the_trail_says_so(
    upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    first, again = ask("What does the pass statement do?"), ask("What does the pass statement do?")
    await upstream.submit(first)
    generated = await upstream.response(first.request_id)
    await upstream.submit(again)
    reused = await upstream.response(again.request_id)
    assert generated.status is ResponseStatus.COMPLETED, generated.reason
    assert reused.status is ResponseStatus.COMPLETED, reused.reason
    assert generated.cache is not None
    assert generated.cache.result == "miss"
    assert reused.cache is not None
    assert (reused.cache.result, reused.cache.kind) == ("hit", "exact")
    assert reused.cache.source_request_id == first.request_id
    assert reused.text == generated.text
    assert reused.verdict is not None  # output screening judged the cached answer too
    assert [c.chunk_id for c in reused.citations] == [c.chunk_id for c in generated.citations]
    completion = await stored_completion(audit_store, again.request_id)
    assert completion.payload["backend"] == "cache"
    assert completion.payload["cache"]["source_request_id"] == first.request_id


async def test_a_sampled_question_bypasses_the_cache(upstream: Upstream) -> None:
    sampled = ask("What does the pass statement do?", temperature=0.7)
    await upstream.submit(sampled)
    answer = await upstream.response(sampled.request_id)
    assert answer.status is ResponseStatus.COMPLETED, answer.reason
    assert answer.cache is not None
    assert (answer.cache.result, answer.cache.reason) == ("bypass", "not deterministic")


@pytest.fixture(scope="module")
def semantic_prompt(services: ServiceProcesses, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`qa-semantic@production`: the `qa` prompt retrieving one passage, opted in to the semantic cache
    with its own threshold."""
    text = (REPO / "infra" / "prompts" / "qa.yaml").read_text(encoding="utf-8")
    text = text.replace("name: qa\n", "name: qa-semantic\n").replace("top_k: 4", "top_k: 1")
    text = text.replace(
        "  temperature: 0.0", "  temperature: 0.0\n  cache_semantic: true\n  cache_similarity: 0.85"
    )
    assert "cache_semantic" in text
    assert "qa-semantic" in text
    path = tmp_path_factory.mktemp("prompts") / "qa-semantic.yaml"
    path.write_text(text, encoding="utf-8")
    run_cairn(services.env, "prompts", "push", str(path), "--label", "production", cwd=REPO)
    return "qa-semantic@production"


async def test_a_reworded_question_is_answered_from_the_semantic_cache_but_not_its_negation(
    semantic_prompt: str, services: ServiceProcesses, upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    def on_prompt(question: str) -> RequestSubmittedV1:
        return ask(question).model_copy(update={"prompt": semantic_prompt})

    first = on_prompt("What does the pass statement do?")
    reworded = on_prompt("What exactly does the pass statement do?")
    negated = on_prompt("What does the pass statement not do?")
    answers = []
    for request in (first, reworded, negated):
        await upstream.submit(request)
        answers.append(await upstream.response(request.request_id))
    generated, reused, other = answers
    assert all(a.status is ResponseStatus.COMPLETED for a in answers), [a.reason for a in answers]
    assert generated.cache is not None
    assert (generated.cache.result, generated.cache.kind) == ("miss", "semantic")
    assert [c.chunk_id for c in reused.citations] == [c.chunk_id for c in generated.citations]
    assert reused.cache is not None
    assert (reused.cache.result, reused.cache.kind) == ("hit", "semantic"), reused.cache
    assert reused.cache.source_request_id == first.request_id
    assert reused.cache.similarity is not None
    assert 0.85 <= reused.cache.similarity < 1.0
    assert reused.text == generated.text
    assert other.cache is not None
    assert other.cache.result == "miss"  # close in meaning, but negated: generated
    completion = await stored_completion(audit_store, reworded.request_id)
    assert completion.payload["backend"] == "cache"
    assert completion.payload["cache"]["kind"] == "semantic"
    trail = run_cairn({**services.env, "COLUMNS": "250"}, "trail", reworded.request_id, cwd=REPO)
    assert f"cache hit (semantic, similarity {reused.cache.similarity:.3f}) from {first.request_id}" in trail


async def test_a_version_registered_int8_is_served_by_the_quantized_backend(
    services: ServiceProcesses, upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    model = f"e2e-int8-{uuid.uuid4().hex[:6]}"
    printed = run_cairn(services.env, "tune", "register-base", model, "--quantization", "int8", cwd=REPO)
    assert f"registered {model}:1" in printed
    assert "(int8)" in printed
    request_id, answer = await answered(
        upstream, lambda: ask("What does the pass statement do?", model=f"{model}:1")
    )
    assert answer.status is ResponseStatus.COMPLETED, answer.reason
    assert (answer.model, answer.model_version) == (model, "1")
    assert answer.text
    completion = await stored_completion(audit_store, request_id)
    assert completion.payload["backend"] == "transformers-cpu-int8"
    assert completion.payload["route"] is None  # it named its model: not routed


def registration(
    name: str, *, adapter_uri: str | None = None, quantization: Quantization | None = None
) -> ModelRegisteredV1:
    return ModelRegisteredV1(
        model_name=name,
        version=1,
        base_model="SmolLM2-135M-Instruct",
        adapter_uri=adapter_uri,
        config={},
        metrics={},
        code_version="e2e",
        registered_at=datetime.now(UTC),
        quantization=quantization,
    )


@pytest.fixture(scope="module")
async def routed_models(services: ServiceProcesses, upstream: Upstream) -> None:
    """The versions `tests/e2e/routing/default.yaml` names, announced on cairn.models as the tuner would:
    an int8 base model, and one whose adapter files do not exist."""
    tuner = key_of(services, "tuner")
    await send(
        upstream, registration("e2e-route-int8", quantization=Quantization.INT8), "/cairn/tuner", tuner
    )
    missing = f"s3://cairn/adapters/e2e-missing-{uuid.uuid4().hex[:8]}/"
    await send(upstream, registration("e2e-route-broken", adapter_uri=missing), "/cairn/tuner", tuner)
    for name in (
        "e2e-route-int8:1",
        "e2e-route-broken:1",
    ):  # named directly: known to inference once answered
        _, answer = await answered(upstream, lambda name=name: ask("Is it known?", model=name))  # type: ignore[misc]
        assert answer.reason is None or "is not served here" not in answer.reason, answer.reason


async def test_routing_passes_over_a_failing_model_to_the_int8_backend(
    routed_models: None, upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    request_id, answer = await answered(
        upstream, lambda: ask("What does the pass statement do?", tenant="e2e-route", latency_class="batch")
    )
    assert answer.status is ResponseStatus.COMPLETED, answer.reason
    assert (answer.model, answer.model_version) == ("e2e-route-int8", "1")
    assert answer.route is not None
    assert (answer.route.policy, answer.route.rule) == ("default", "e2e-batch")
    [skipped] = answer.route.fallbacks
    assert skipped.model == "e2e-route-broken:1"
    assert "e2e-missing" in skipped.reason or "adapter" in skipped.reason, skipped.reason
    completion = await stored_completion(audit_store, request_id)
    assert completion.payload["backend"] == "transformers-cpu-int8"
    assert completion.payload["route"]["fallbacks"][0]["model"] == "e2e-route-broken:1"


async def test_routing_gives_way_to_full_precision_when_int8_is_too_slow(
    routed_models: None, upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    request_id, answer = await answered(
        upstream,
        lambda: ask("What does the pass statement do?", tenant="e2e-route", latency_class="interactive"),
    )
    assert answer.status is ResponseStatus.COMPLETED, answer.reason
    assert (answer.model, answer.model_version) == ("SmolLM2-135M-Instruct", None)
    assert answer.route is not None
    assert answer.route.rule == "e2e-interactive"
    assert [(a.model, a.reason) for a in answer.route.fallbacks] == [
        ("e2e-route-int8:1", "generation timed out after 0.01 s")
    ]
    completion = await stored_completion(audit_store, request_id)
    assert completion.payload["backend"] == "transformers-cpu"
