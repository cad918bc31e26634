"""The closed loop end to end: `cairn loop demo` against every service as a process, then a rollback.

requests → feedback → dataset version → tuning job → model version → evaluation → promotion →
responses served by the new adapter; asserted on the command's outcome, the registry, the audit
trail of the lifecycle events and the responses themselves. After the corrections no step is taken by
hand: the feedback service's dataset policy builds the version, the tuner's policy requests the job and
the evaluator promotes the winner to production (tests/e2e/loop-policies/, E2E_SERVICE_ENV).

The adapter usually beats the base model on the held-out split (token F1 0.43 against 0.26, 0.39 against
0.19, 0.29 against 0.23 in logged runs), but the split of 16 rows varies between runs (1 to 11 held out)
and a small training split can lose by a hair (0.298 against 0.299 once): a lost gate is accepted as the
loop's legitimate outcome, and the candidate is then promoted by hand for the serving and rollback tests.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from cairn_events import RequestSubmittedV1
from cairn_testing.processes import CAIRN, ServiceProcesses

from .harness import REPO, Upstream, new_request_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]  # the loop trains and evaluates a model

E2E_SERVICES = ["audit", "prompt-store", "retriever", "safety", "inference", "feedback", "tuner", "evaluator"]
SOURCES = REPO / "tests" / "e2e"
RUN = uuid.uuid4().hex[:6]
DATASET = f"e2e-python-qa-{RUN}"
MODEL = f"loop-qa-{RUN}"
"""This run's dataset and registry model. The ids of a registration, its gate run and its promotions derive
from the model's name and version, so they must not repeat another run's on the shared broker: inference's
registry view, rebuilt from the whole of cairn.models, would take them for events it already applied."""
RUN_DIR = REPO / ".cairn" / "test" / "closed-loop"
PLAN = RUN_DIR / "loop-plan.yaml"
POLICIES = RUN_DIR / "loop-policies"
E2E_SERVICE_ENV = {
    "feedback": {"CAIRN_DATASET_POLICY_DIR": str(POLICIES / "datasets")},
    "tuner": {"CAIRN_TUNE_POLICY_DIR": str(POLICIES / "tuning"), "CAIRN_TUNER_MODEL_NAME": MODEL},
    "evaluator": {"CAIRN_AUTO_PROMOTE_PRODUCTION": "true"},
    "inference": {"CAIRN_SERVED_MODEL": MODEL},  # requests without a model: this model's production version
}
LIFECYCLE = [
    "cairn.dataset.published.v1",
    "cairn.tuning.requested.v1",
    "cairn.tuning.progressed.v1",
    "cairn.model.registered.v1",
    "cairn.evaluation.completed.v1",
    "cairn.model.promoted.v1",
]


@pytest.fixture(scope="module", autouse=True)
def run_plan() -> Path:
    """tests/e2e/loop-plan.yaml and tests/e2e/loop-policies/ for this run's dataset name (before the
    services start: they read the policy folders at start)."""
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    for kind in ("datasets", "tuning"):
        (POLICIES / kind).mkdir(parents=True)
        shutil.copy(
            SOURCES / "loop-policies" / kind / "e2e-python-qa.yaml", POLICIES / kind / f"{DATASET}.yaml"
        )
    plan = yaml.safe_load((SOURCES / "loop-plan.yaml").read_text(encoding="utf-8"))
    plan["dataset"] = DATASET
    plan["model"] = MODEL
    PLAN.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return PLAN


def cairn(services: ServiceProcesses, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**services.env, "COLUMNS": "250"}  # rich tables at full width: no cell cut short
    return subprocess.run([CAIRN, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


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


GATE_FAILED = "the gate did not pass"


@pytest.fixture(scope="module")
def loop_run(services: ServiceProcesses) -> subprocess.CompletedProcess[str]:
    done = cairn(services, "loop", "demo", "--plan", str(PLAN), timeout=1800)
    # kept for reading after the run (stage times, the chain): .cairn/test/loop-demo.log
    log = REPO / ".cairn" / "test" / "loop-demo.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(done.stdout + "\n--- stderr\n" + done.stderr, encoding="utf-8")
    # a candidate that loses its gate is a legitimate outcome (exit 1, said in words): with 16 corrections
    # the held-out split varies between runs and a small training split can lose; anything else fails
    if done.returncode != 0 and GATE_FAILED not in done.stdout:
        logs = "\n".join(
            f"--- {n}\n{services.log(n, 30)}" for n in ("feedback", "tuner", "evaluator", "inference")
        )
        pytest.fail(
            f"cairn loop demo failed ({done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}\n{logs}"
        )
    return done


async def served(upstream: Upstream, version: str, attempts: int = 30) -> Any:
    """A fresh answer (model unset: production), once inference serves `version` (it follows cairn.models)."""
    for _ in range(attempts):
        request = ask("What does the pass statement do?")
        await upstream.submit(request)
        response = await upstream.response(request.request_id, timeout=180, settle=0.0)
        if response.model_version == version:
            return response
        await asyncio.sleep(1)
    raise AssertionError(f"answers never came from version {version}: {response}")


def test_the_loop_runs_from_feedback_to_serving_with_no_manual_step(
    loop_run: subprocess.CompletedProcess[str],
) -> None:
    out = loop_run.stdout
    for step in (
        "requests through the platform",
        "corrections submitted",
        f"{DATASET} v1",
        "by cairn-tuner-policy",  # the job the tuner's policy requested
        "tuning succeeded",
        f"registered {MODEL} v2",
        "evaluation gate",
    ):
        assert step in out, f"missing {step!r} in:\n{out[-4000:]}"
    if loop_run.returncode == 0:  # the candidate won: promoted by the evaluator's policy and served
        for step in (
            "verdict: PASS",
            "promoted to production by cairn-evaluator",
            f"{MODEL} v2 adapter {MODEL}:2",
            "the chain",
        ):
            assert step in out, f"missing {step!r} in:\n{out[-4000:]}"
    for manual in ("$ cairn datasets build", f"$ cairn models promote {MODEL} 2"):
        assert manual not in out, out[-3000:]


async def test_the_candidate_is_in_production_only_if_it_won(
    loop_run: subprocess.CompletedProcess[str], services: ServiceProcesses, upstream: Upstream
) -> None:
    shown = cairn(services, "models", "show", MODEL, "2")
    assert shown.returncode == 0, shown.stderr
    stage = shown.stdout.split("stage:")[1].split()[0]
    report = loop_run.stdout.split("6. evaluation gate")[1]
    heldout = next(line for line in report.splitlines() if "heldout" in line and "token_f1" in line)
    candidate, baseline = (float(cell) for cell in heldout.split("│")[3:5])
    if loop_run.returncode == 0:  # promoted by the evaluator's policy: it beat the base on held-out rows
        assert stage == "production", shown.stdout
        assert candidate > baseline, heldout
    else:  # a failing gate blocks promotion: v2 stays out of production and v1 keeps serving
        assert stage == "dev", shown.stdout
        response = await served(upstream, "1")
        assert response.adapter is None
        promoted = cairn(services, "models", "promote", MODEL, "2", "--to", "production", "--reason", "e2e")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    response = await served(upstream, "2")
    assert response.adapter == f"{MODEL}:2"
    assert response.model == MODEL


async def test_the_registry_and_the_audit_trail_show_the_chain(
    loop_run: subprocess.CompletedProcess[str], services: ServiceProcesses
) -> None:
    history = cairn(services, "models", "history", MODEL)
    assert history.returncode == 0, history.stderr
    assert "production" in history.stdout
    conn = await asyncpg.connect(services.env["CAIRN_POSTGRES_DSN"])
    try:
        rows = await conn.fetch(
            "SELECT event_type, count(*) AS n FROM audit_events WHERE event_type = ANY($1::text[]) GROUP BY event_type",
            LIFECYCLE,
        )
        sources = await conn.fetch(
            "SELECT DISTINCT event_type, source FROM audit_events WHERE event_type = ANY($1::text[])",
            ["cairn.dataset.published.v1", "cairn.tuning.requested.v1"],
        )
    finally:
        await conn.close()
    stored = {r["event_type"]: r["n"] for r in rows}
    assert set(stored) == set(LIFECYCLE), stored
    assert stored["cairn.tuning.progressed.v1"] >= 3  # queued, running steps, succeeded
    # the dataset and the job came from the services' policies, not from the CLI
    assert {(r["event_type"], r["source"].rsplit("/", 1)[-1]) for r in sources} == {
        ("cairn.dataset.published.v1", "feedback"),
        ("cairn.tuning.requested.v1", "tuner"),
    }, sources


async def test_rollback_restores_the_previous_version(
    loop_run: subprocess.CompletedProcess[str], services: ServiceProcesses, upstream: Upstream
) -> None:
    # runs after the candidate was put in production (by the evaluator's policy or by the previous test)
    done = cairn(services, "models", "rollback", MODEL, "--reason", "e2e: roll back")
    assert done.returncode == 0, done.stdout + done.stderr
    # inference follows cairn.models: answers come from version 1 (the base model, no adapter) again
    response = await served(upstream, "1")
    assert response.adapter is None
