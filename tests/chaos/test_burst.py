"""A burst far above capacity: every request is answered in the end, and memory stays bounded.

Backpressure: a consumer takes at most `consumer_batch_max_records` records at a time and commits
them before taking more, so a service holds one batch of work however deep the backlog is; the
backlog stays on the broker. The bound on memory: each service's peak RSS during the burst may
exceed its RSS after warm-up by at most 256 MiB. One batch is at most 200 records (1,000 for the
audit) of a few KB (well under 10 MiB), and the working memory of handling it (query embeddings, one generation batch of at
most `max_batch_size` rows of the tiny model, buffered audit rows) is tens of MiB; 256 MiB leaves
room for allocator slack while catching a service that holds the whole backlog or leaks per request.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psutil
import pytest

from cairn_events import RequestSubmittedV1
from cairn_testing.processes import ServiceProcesses
from tests.e2e.harness import Upstream, new_request_id

from .conftest import PROMPT, REQUEST_PATH, answer, distinct_responses, ours

pytestmark = pytest.mark.integration

BURST = 400
GROWTH_BOUND = 256 * 2**20
QUESTIONS = ["What does assert do?", "What does global declare?", "What does pass do?", "What does del do?"]


def request(i: int) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id(f"burst{i}"),
            "prompt": f"{PROMPT}@production",
            "variables": {"question": QUESTIONS[i % len(QUESTIONS)]},
            "params": {"max_tokens": 4, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


def rss(services: ServiceProcesses) -> dict[str, int]:
    out = {}
    for name in REQUEST_PATH:
        pid = services.pm.pid(name)
        assert pid is not None, f"{name} is not running"
        out[name] = psutil.Process(pid).memory_info().rss
    return out


async def test_a_burst_is_answered_with_bounded_memory(
    services: ServiceProcesses, upstream: Upstream
) -> None:
    # warm up: first calls load tokenizers, compile paths, fill pools
    warm = [request(i) for i in range(8)]
    for r in warm:
        await upstream.submit(r)
    for r in warm:
        await answer(upstream, r.request_id, timeout=180)
    baseline = rss(services)
    peak = dict(baseline)
    burst = [request(i) for i in range(BURST)]
    await asyncio.gather(*(upstream.submit(r) for r in burst))

    async def sample() -> None:
        while True:
            for name, value in rss(services).items():
                peak[name] = max(peak[name], value)
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 300
        while loop.time() < deadline and not all(ours(upstream, r.request_id) for r in burst):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    finally:
        sampler.cancel()
    missing = [r.request_id for r in burst if not ours(upstream, r.request_id)]
    assert not missing, f"{len(missing)} of {BURST} requests unanswered, e.g. {missing[:3]}"
    for r in burst:
        assert distinct_responses(upstream, r.request_id) == 1, f"{r.request_id}: a second response"
        response = ours(upstream, r.request_id)[0][1]
        assert response.status.value == "completed", (r.request_id, response.status, response.reason)
    mib = {n: (round(baseline[n] / 2**20), round(peak[n] / 2**20)) for n in REQUEST_PATH}
    print(f"RSS MiB (after warm-up, peak during the burst): {mib}")
    for name in REQUEST_PATH:
        assert peak[name] - baseline[name] <= GROWTH_BOUND, f"{name} grew beyond the bound: {mib[name]}"
        assert services.pm.is_running(name), f"{name} died:\n{services.log(name, 40)}"
