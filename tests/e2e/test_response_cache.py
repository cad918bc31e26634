"""The response cache end to end: the request path and the audit service as processes, inference with
`CAIRN_RESPONSE_CACHE=exact` (in-memory store), the real small model, driven only through topics.

The same question asked twice at temperature 0 is generated once: the second answer comes from the
cache, names the first request as its source, passes output screening like any answer, keeps its
citations, and the audit trail records the hit. A sampled question (temperature > 0) bypasses it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.domain.records import AuditRecord
from cairn_events import RequestSubmittedV1, ResponseStatus

from .harness import Upstream, new_request_id

pytestmark = pytest.mark.integration

E2E_SERVICES = ["audit", "prompt-store", "retriever", "safety", "inference"]
E2E_SERVICE_ENV = {"inference": {"CAIRN_RESPONSE_CACHE": "exact", "CAIRN_RESPONSE_CACHE_STORE": "memory"}}
TOKENS = 16


def ask(question: str, temperature: float = 0.0) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("cache"),
            "tenant": "e2e-cache",
            "prompt": "qa@production",
            "variables": {"question": question},
            "params": {"max_tokens": TOKENS, "temperature": temperature},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


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
