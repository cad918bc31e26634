"""The closed loop end to end: `cairn loop demo` against every service as a process, then a rollback.

requests → feedback → dataset version → tuning job → model version → evaluation → promotion →
responses served by the new adapter; asserted on the command's outcome, the registry, the audit
trail of the lifecycle events and the responses themselves.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import asyncpg
import pytest

from cairn_events import RequestSubmittedV1

from .harness import CAIRN, REPO, Services, Upstream, new_request_id

pytestmark = pytest.mark.integration

E2E_SERVICES = ["audit", "prompt-store", "retriever", "safety", "inference", "feedback", "tuner", "evaluator"]
PLAN = REPO / "tests" / "e2e" / "loop-plan.yaml"
LIFECYCLE = [
    "cairn.dataset.published.v1",
    "cairn.tuning.requested.v1",
    "cairn.tuning.progressed.v1",
    "cairn.model.registered.v1",
    "cairn.evaluation.completed.v1",
    "cairn.model.promoted.v1",
]


def cairn(services: Services, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAIRN, *args], env=services.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def ask(question: str) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("loop"),
            "prompt": "qa",
            "variables": {"question": question},
            "retrieval": {"top_k": 2},
            "params": {"max_tokens": 24, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


@pytest.fixture(scope="module")
def loop_run(services: Services) -> subprocess.CompletedProcess[str]:
    done = cairn(services, "loop", "demo", "--plan", str(PLAN), timeout=1800)
    if done.returncode != 0:
        logs = "\n".join(f"--- {n}\n{services.log(n, 30)}" for n in ("tuner", "evaluator", "inference"))
        pytest.fail(
            f"cairn loop demo failed ({done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}\n{logs}"
        )
    return done


def test_the_loop_promotes_a_tuned_adapter_that_won_its_gate(
    loop_run: subprocess.CompletedProcess[str],
) -> None:
    out = loop_run.stdout
    for step in ("dataset", "tuning job", "model version", "evaluation", "served"):
        assert step in out
    assert "passed" in out
    assert "adapter cairn-qa:2" in out, out[-3000:]


async def test_the_registry_and_the_audit_trail_show_the_chain(
    loop_run: subprocess.CompletedProcess[str], services: Services
) -> None:
    history = cairn(services, "models", "history", "cairn-qa")
    assert history.returncode == 0, history.stderr
    assert "production" in history.stdout
    assert "staging" in history.stdout
    conn = await asyncpg.connect(services.env["CAIRN_POSTGRES_DSN"])
    try:
        rows = await conn.fetch(
            "SELECT event_type, count(*) AS n FROM audit_events WHERE event_type = ANY($1::text[]) GROUP BY event_type",
            LIFECYCLE,
        )
    finally:
        await conn.close()
    stored = {r["event_type"]: r["n"] for r in rows}
    assert set(stored) == set(LIFECYCLE), stored
    assert stored["cairn.tuning.progressed.v1"] >= 3  # queued, running steps, succeeded


async def test_rollback_restores_the_previous_version(
    loop_run: subprocess.CompletedProcess[str], services: Services, upstream: Upstream
) -> None:
    done = cairn(services, "models", "rollback", "cairn-qa", "--reason", "e2e: roll back")
    assert done.returncode == 0, done.stdout + done.stderr
    # inference follows cairn.models: answers come from version 1 (the base model, no adapter) again
    for _ in range(30):
        request = ask("What does the pass statement do?")
        await upstream.submit(request)
        response = await upstream.response(request.request_id, timeout=120, settle=0.0)
        if response.model_version == "1":
            break
    assert response.model_version == "1", response
    assert response.adapter is None
