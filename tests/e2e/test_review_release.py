"""Human review with effect, end to end: a held request is answered `held`, then its final answer
follows the reviewer's decision (approve, edit, reject) or, when no one decides in time, the policy's
default. Driven through topics as an upstream system would; the reviewer decides with the CLI.

The safety service reads its policies from a folder of this module: the shipped ones plus test tenants
whose policy holds every answer (or every input) for review, one with a one-second deadline.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.domain.records import AuditRecord
from cairn_audit.domain.trail import causal_order
from cairn_bus.kafka import ensure_topics
from cairn_events import RequestSubmittedV1, ResponseCompletedV1, ResponseStatus
from cairn_localstack.process import ProcessManager
from cairn_testing.processes import ServiceProcesses, prepare_groups, run_cairn, service_env

from .harness import REPO, Upstream, new_request_id, policy_folder

pytestmark = pytest.mark.integration

REQUESTED = "cairn.review.requested.v1"
RESOLVED = "cairn.review.resolved.v1"
RESPONSE = "cairn.response.completed.v1"
SERVICES = ["audit", "prompt-store", "retriever", "safety", "inference"]
HOLD_EVERYTHING = {"thresholds": [{"min_score": 0.0, "action": "review"}]}
TENANTS = {
    # every answer held for review (the output's toxicity check reviews any score)
    "e2e-hold": {"output": {"toxicity": HOLD_EVERYTHING}},
    # every question held for review before it reaches the model
    "e2e-hold-input": {"input": {"toxicity": HOLD_EVERYTHING}},
    # every answer held, and released by the policy's default one second later
    "e2e-deadline": {
        "output": {"toxicity": HOLD_EVERYTHING},
        "review": {"deadline_s": 1, "on_deadline": "approve"},
    },
}


@pytest.fixture(scope="module")
def review_env(
    local_stack: dict[str, str], e2e_database: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    env = service_env(local_stack, e2e_database)
    env["CAIRN_HTTP_PORT"] = "0"
    env["CAIRN_POLICY_DIR"] = str(policy_folder(tmp_path_factory.mktemp("policies"), TENANTS))
    env["CAIRN_REVIEW_SWEEP_INTERVAL_S"] = "0.5"
    return env


@pytest.fixture(scope="module")
async def services(  # the e2e session's services (conftest), with this module's policies
    review_env: dict[str, str], knowledge_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceProcesses]:
    bootstrap = review_env["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    run_cairn(
        review_env,
        "prompts",
        "push",
        str(REPO / "infra" / "prompts" / "qa.yaml"),
        "--label",
        "production",
        cwd=REPO,
    )
    run_cairn(review_env, "docs", "ingest", str(knowledge_dir), cwd=REPO)
    run_cairn(review_env, "inference", "prepare", cwd=REPO)
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    manager = ProcessManager(tmp_path_factory.mktemp("e2e-review-services"))
    svc = ServiceProcesses(manager, review_env, groups, cwd=REPO)
    with svc.running(SERVICES):
        yield svc


def ask(tenant: str, question: str = "What does the assert statement do?") -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("rev"),
            "tenant": tenant,
            "prompt": "qa@production",
            "variables": {"question": question},
            "params": {"max_tokens": 24, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


async def held(upstream: Upstream, request_id: str, timeout: float = 180.0) -> ResponseCompletedV1:
    """The request's `held` response, once it arrives."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = [e for _, e in upstream.responses.get(request_id, []) if e.status is ResponseStatus.HELD]
        if got:
            return got[0]
        if loop.time() > deadline:
            raise AssertionError(f"{request_id} was not held: {upstream.responses.get(request_id)}")
        await asyncio.sleep(0.2)


def review_id_of(response: ResponseCompletedV1) -> str:
    found = re.search(r"\(review (rev-[0-9a-f-]+)\)", response.reason or "")
    assert found, response.reason
    return found.group(1)


@pytest.fixture(scope="module")
async def requests(upstream: Upstream) -> dict[str, RequestSubmittedV1]:
    """One request per case, submitted together (the model answers them in one go)."""
    cases = {
        "approve": ask("e2e-hold"),
        "edit": ask("e2e-hold"),
        "reject": ask("e2e-hold"),
        "input": ask("e2e-hold-input"),
        "deadline": ask("e2e-deadline"),
    }
    for request in cases.values():
        await upstream.submit(request)
    return cases


async def decide(env: dict[str, str], review_id: str, *args: str) -> str:
    """A reviewer's decision with the CLI (directly in the database, as `cli:<user>`)."""
    wide = {**env, "COLUMNS": "250"}  # no wrapped lines in what it prints
    return await asyncio.to_thread(run_cairn, wide, "safety", "reviews", "decide", review_id, *args, cwd=REPO)


async def trail(
    store: PostgresAuditStore, request_id: str, responses: int = 2, timeout: float = 30.0
) -> list[AuditRecord]:
    """The request's trail in causal order, once its `responses` responses and the decision are stored."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        records = [n.record for n in causal_order(await store.trail(request_id))]
        types = [r.event_type for r in records]
        if (types.count(RESPONSE) >= responses and RESOLVED in types) or loop.time() > deadline:
            return records
        await asyncio.sleep(0.3)


async def test_an_approved_answer_is_released_and_the_trail_shows_hold_and_decision(
    upstream: Upstream,
    requests: dict[str, RequestSubmittedV1],
    review_env: dict[str, str],
    audit_store: PostgresAuditStore,
) -> None:
    rid = requests["approve"].request_id
    hold = await held(upstream, rid)
    assert hold.text is None
    review_id = review_id_of(hold)
    out = await decide(review_env, review_id, "approve", "--note", "checked")
    assert f"{review_id}: approved by cli:" in out
    final = await upstream.final_response(rid)
    assert final.status is ResponseStatus.COMPLETED, final.reason
    assert final.text
    assert final.citations
    assert final.model
    records = await trail(audit_store, rid)
    types = [r.event_type for r in records]
    assert types[:5] == [
        "cairn.request.submitted.v1",
        "cairn.prompt.rendered.v1",
        "cairn.context.assembled.v1",
        "cairn.input.screened.v1",
        "cairn.completion.generated.v1",
    ]
    assert sorted(types[5:]) == sorted([REQUESTED, RESPONSE, RESOLVED, RESPONSE])
    [requested] = [r for r in records if r.event_type == REQUESTED]
    [resolved] = [r for r in records if r.event_type == RESOLVED]
    [held_record, final_record] = sorted(
        (r for r in records if r.event_type == RESPONSE), key=lambda r: r.event_time
    )
    assert held_record.payload["status"] == "held"
    assert requested.payload["review_id"] == review_id
    assert requested.payload["text"] == final.text  # the reviewer saw what was released
    assert resolved.causation_id == requested.event_id  # the decision sits under the hold
    assert final_record.causation_id == resolved.event_id  # and the answer under the decision
    assert (resolved.payload["decision"], resolved.payload["reason"]) == ("approve", "checked")
    assert resolved.payload["decided_by"].startswith("cli:")
    assert final_record.payload["status"] == "completed"


async def test_an_edited_answer_releases_the_reviewers_text(
    upstream: Upstream, requests: dict[str, RequestSubmittedV1], review_env: dict[str, str]
) -> None:
    rid = requests["edit"].request_id
    review_id = review_id_of(await held(upstream, rid))
    text = "The assert statement checks a condition and raises AssertionError when it is false."
    await decide(review_env, review_id, "edit", "--text", text)
    final = await upstream.final_response(rid)
    assert (final.status, final.text) == (ResponseStatus.COMPLETED, text)
    assert final.model  # the generation that was held


async def test_a_rejected_answer_is_blocked_with_the_reason(
    upstream: Upstream, requests: dict[str, RequestSubmittedV1], review_env: dict[str, str]
) -> None:
    rid = requests["reject"].request_id
    review_id = review_id_of(await held(upstream, rid))
    await decide(review_env, review_id, "reject", "--note", "off topic")
    final = await upstream.final_response(rid)
    assert (final.status, final.text, final.reason) == (
        ResponseStatus.BLOCKED,
        None,
        "rejected in human review: off topic",
    )
    with pytest.raises(RuntimeError, match="rejected by cli:"):  # a second decision is refused
        await decide(review_env, review_id, "approve")


async def test_an_approved_input_goes_on_to_the_model(
    upstream: Upstream,
    requests: dict[str, RequestSubmittedV1],
    review_env: dict[str, str],
    audit_store: PostgresAuditStore,
) -> None:
    rid = requests["input"].request_id
    hold = await held(upstream, rid)
    assert hold.model is None  # held before inference
    await decide(review_env, review_id_of(hold), "approve")
    final = await upstream.final_response(rid)
    assert final.status is ResponseStatus.COMPLETED, final.reason
    assert final.text
    assert final.model
    types = [r.event_type for r in await trail(audit_store, rid)]
    assert (
        types.index(RESOLVED)
        < types.index("cairn.input.screened.v1")
        < types.index("cairn.completion.generated.v1")
    )


async def test_an_overdue_review_takes_the_policys_default(
    upstream: Upstream, requests: dict[str, RequestSubmittedV1], audit_store: PostgresAuditStore
) -> None:
    rid = requests["deadline"].request_id
    await held(upstream, rid)
    final = await upstream.final_response(rid, timeout=60)  # no one decides
    assert final.status is ResponseStatus.COMPLETED, final.reason  # e2e-deadline approves at its deadline
    assert final.text
    [resolved] = [r for r in await trail(audit_store, rid) if r.event_type == RESOLVED]
    assert (
        resolved.payload["decided_by"],
        resolved.payload["by_deadline"],
        resolved.payload["decision"],
    ) == (
        "deadline",
        True,
        "approve",
    )
