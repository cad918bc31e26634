"""kill -9 services while requests flow: every request still gets exactly one response and a clean trail."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter
from datetime import UTC, datetime

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_events import RequestSubmittedV1
from cairn_testing.processes import ServiceProcesses
from tests.e2e.harness import Upstream, new_request_id

from .conftest import PROMPT, answer, assert_answered_once_with_clean_trails

pytestmark = pytest.mark.integration

REQUESTS = 36
KILLS = 4
QUESTIONS = ["What does assert do?", "What does global declare?", "What does pass do?", "What does del do?"]


def request(i: int) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id(f"chaos{i}"),
            "prompt": f"{PROMPT}@production",
            "variables": {"question": QUESTIONS[i % len(QUESTIONS)]},
            "params": {"max_tokens": 8, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


async def kill_and_restart(services: ServiceProcesses, name: str) -> None:
    pid = services.pm.pid(name)
    assert pid is not None, f"{name} is not running before its kill"
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not services.pm.is_running(name):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    services.start(name)


async def test_requests_survive_kill_9_of_random_services(
    services: ServiceProcesses, upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    rng = random.Random(20261129)
    victims = [
        rng.choice(["prompt-store", "retriever", "safety", "inference", "audit"]) for _ in range(KILLS)
    ]
    requests = [request(i) for i in range(REQUESTS)]

    async def send() -> None:
        for r in requests:
            await upstream.submit(r)
            await asyncio.sleep(0.25)

    async def chaos() -> None:
        for name in victims:
            await asyncio.sleep(1.8)
            await kill_and_restart(services, name)

    await asyncio.gather(send(), chaos())
    # every request answered exactly once
    statuses = Counter()
    for r in requests:
        response = await answer(upstream, r.request_id, timeout=240)
        statuses[response.status.value] += 1
    assert statuses == {"completed": REQUESTS}, statuses
    await assert_answered_once_with_clean_trails(upstream, audit_store, [r.request_id for r in requests])
    for name in set(victims):
        assert services.pm.is_running(name), f"{name} did not come back:\n{services.log(name, 40)}"
