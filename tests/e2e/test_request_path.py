"""The request path end to end, driven only through topics as an upstream system would.

Each case is asserted on the response upstream receives and on the audit trail of the request.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.domain.trail import causal_order
from cairn_events import RequestSubmittedV1
from cairn_testing.processes import ServiceProcesses

from .harness import Upstream, new_request_id

pytestmark = pytest.mark.integration

PATH = [
    "cairn.request.submitted.v1",
    "cairn.prompt.rendered.v1",
    "cairn.context.assembled.v1",
    "cairn.input.screened.v1",
    "cairn.completion.generated.v1",
    "cairn.response.completed.v1",
]


def ask(question: str, prompt: str = "qa@production", max_tokens: int = 64) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("e2e"),
            "prompt": prompt,
            "variables": {"question": question},
            "params": {"max_tokens": max_tokens, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


async def trail_types(
    store: PostgresAuditStore, request_id: str, last: str, timeout: float = 30.0
) -> list[str]:
    """Event types of the request's trail in causal order, once `last` is stored."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        records = await store.trail(request_id)
        types = [n.record.event_type for n in causal_order(records)]
        if last in types or loop.time() > deadline:
            return types
        await asyncio.sleep(0.3)


async def test_a_question_is_answered_with_citations(
    upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    request = ask("What does the assert statement do?")
    await upstream.submit(request)
    response = await upstream.response(request.request_id)
    assert response.status.value == "completed", response.reason
    assert response.text
    assert response.text.strip()
    assert response.citations, "a grounded answer carries its sources"
    assert any("assert" in c.source_uri for c in response.citations)
    assert all(c.content_hash and c.chunk_id for c in response.citations)
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    assert response.model
    assert response.prompt_name == "qa"
    assert response.prompt_version == 1
    types = await trail_types(audit_store, request.request_id, PATH[-1])
    assert types == PATH
    # one OpenTelemetry trace joins every hop through the traceparent header (the upstream here sent
    # none, so the trace starts at prompt-store)
    records = await audit_store.trail(request.request_id)
    traces = {r.headers["traceparent"].split("-")[1] for r in records if r.event_type != PATH[0]}
    assert len(traces) == 1


async def test_toxic_input_is_blocked_before_inference(
    upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    request = ask("You stupid idiot, what does the pass statement do, moron?")
    await upstream.submit(request)
    response = await upstream.response(request.request_id)
    assert response.status.value == "blocked"
    assert response.verdict is not None
    assert response.verdict.value == "block"
    assert any(f.check.startswith("toxicity") and f.fired for f in response.findings)
    assert response.text is None
    types = await trail_types(audit_store, request.request_id, PATH[-1])
    assert types == [*PATH[:3], PATH[-1]], "no screening pass, no generation"


async def test_pii_in_the_input_is_redacted(upstream: Upstream, audit_store: PostgresAuditStore) -> None:
    email = "jane.doe@example.com"
    request = ask(f"My email is {email}. What does the del statement do?")
    await upstream.submit(request)
    response = await upstream.response(request.request_id)
    assert response.status.value == "completed", response.reason
    assert email not in (response.text or "")
    await trail_types(audit_store, request.request_id, PATH[-1])
    screened = [r for r in await audit_store.trail(request.request_id) if r.event_type == PATH[3]]
    assert len(screened) == 1
    payload = screened[0].payload
    assert payload["verdict"] == "redact"
    assert email not in json.dumps(payload["messages"])
    assert any(f["check"].startswith("pii") and f["fired"] for f in payload["findings"])


async def test_an_unknown_prompt_is_rejected(upstream: Upstream, audit_store: PostgresAuditStore) -> None:
    request = ask("What is a lambda?", prompt="no-such-prompt")
    await upstream.submit(request)
    response = await upstream.response(request.request_id)
    assert response.status.value == "rejected"
    assert response.reason
    assert "no-such-prompt" in response.reason
    types = await trail_types(audit_store, request.request_id, PATH[-1])
    assert types == [PATH[0], PATH[-1]]


async def test_a_schema_invalid_request_is_dead_lettered_and_rejected(
    upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    rid = new_request_id("invalid")
    body = json.dumps({"request_id": rid, "prompt": "qa", "params": {"max_tokens": -5}}).encode()
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", uuid.uuid4().hex.encode()),
        ("ce_source", b"/upstream/e2e"),
        ("ce_type", b"cairn.request.submitted.v1"),
        ("ce_subject", rid.encode()),
        ("ce_correlationid", rid.encode()),
        ("content-type", b"application/json"),
    ]
    await upstream.send_raw(body, rid.encode(), headers)
    response = await upstream.response(rid)
    assert response.status.value == "rejected"
    assert response.reason
    assert "submitted_at" in response.reason
    types = await trail_types(audit_store, rid, PATH[-1])
    assert "cairn.deadletter.recorded.v1" in types
    assert PATH[-1] in types


async def test_a_duplicate_delivery_yields_one_response(
    upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    request = ask("What does the global statement declare?", max_tokens=32)
    message = upstream.publisher.build(request)
    await upstream.publisher.send(message)
    await upstream.publisher.send(message)  # the same event delivered twice
    await upstream.response(request.request_id, settle=3.0)
    assert len(upstream.responses[request.request_id]) == 1
    await trail_types(audit_store, request.request_id, PATH[-1])
    records = await audit_store.trail(request.request_id)
    assert sorted(r.event_type for r in records) == sorted(PATH)


async def test_a_backend_outage_fails_the_request_with_a_reason(
    services: ServiceProcesses, upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    services.stop("inference")
    try:
        # the production backend, pointed at a port nothing listens on
        services.start(
            "inference", {"CAIRN_INFERENCE_BACKEND": "sglang", "CAIRN_SGLANG_URL": "http://127.0.0.1:9"}
        )
        services.wait_ready(["inference"])
        request = ask("What does the with statement do?")
        await upstream.submit(request)
        response = await upstream.response(request.request_id)
        assert response.status.value == "failed"
        assert response.reason
        types = await trail_types(audit_store, request.request_id, PATH[-1])
        assert types == [*PATH[:4], PATH[-1]]
    finally:
        services.stop("inference")
        services.start("inference")
        services.wait_ready(["inference"])
