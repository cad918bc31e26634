"""The groundedness gate end to end: the safety and audit services as processes, driven through topics.

The test plays the inference service: it publishes `completion.generated` events (an answer and the
chunks it was generated from) to `cairn.completions`, so the answers are known, and reads what
upstream receives on `cairn.responses` and what the audit service stored. Tenants `gate-cite` and
`gate-review` have policies whose gate replaces or holds an unsupported answer; the default
policy (infra/policies/default.yaml) flags it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_bus.kafka import ensure_topics
from cairn_events import CompletionGeneratedV1, ContextChunk, ResponseStatus, TokenUsage
from cairn_localstack.process import ProcessManager
from cairn_testing.processes import ServiceProcesses, prepare_groups, service_env

from .harness import REPO, Upstream, new_request_id

pytestmark = pytest.mark.integration

E2E_SERVICES = ["audit", "safety"]
CHUNKS = [
    ContextChunk(
        document_id="doc-pass",
        chunk_id="doc-pass#0",
        source_uri="pydoc:topics/pass",
        content_hash="sha256:" + "c" * 64,
        score=0.7,
        text='"pass" is a null operation: when it is executed, nothing happens. It is useful as a '
        "placeholder when a statement is required syntactically, but no code needs to be executed.",
    ),
    ContextChunk(
        document_id="doc-break",
        chunk_id="doc-break#0",
        source_uri="pydoc:topics/break",
        content_hash="sha256:" + "d" * 64,
        score=0.4,
        text='"break" terminates the nearest enclosing loop, skipping the optional "else" clause if the '
        "loop has one.",
    ),
]
SUPPORTED = (
    "pass is a null operation: nothing happens when it is executed [1]. It is a placeholder where a "
    "statement is required syntactically [1]."
)
UNSUPPORTED = (
    "The pass statement compiles the module to machine code and uploads it to the cloud [1]. "
    "It was invented by the Apollo programme in 1969."
)


def gate_policy(name: str, action: str) -> dict[str, Any]:
    base = yaml.safe_load((REPO / "infra" / "policies" / "default.yaml").read_text(encoding="utf-8"))
    base["name"] = name
    base["output"]["groundedness"] = {"threshold": 0.7, "action": action}
    return dict(base)


@pytest.fixture(scope="module")
async def services(
    local_stack: dict[str, str], e2e_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceProcesses]:
    """Safety (with the repository's default policy and two gate policies) and audit."""
    policies = tmp_path_factory.mktemp("policies")
    (policies / "default.yaml").write_text(
        (REPO / "infra" / "policies" / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    for name, action in (("gate-cite", "cite"), ("gate-review", "review")):
        (policies / f"{name}.yaml").write_text(yaml.safe_dump(gate_policy(name, action)), encoding="utf-8")
    env = service_env(local_stack, e2e_database)
    env["CAIRN_HTTP_PORT"] = "0"
    env["CAIRN_POLICY_DIR"] = str(policies)
    bootstrap = local_stack["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    svc = ServiceProcesses(ProcessManager(tmp_path_factory.mktemp("gate-services")), env, groups, cwd=REPO)
    with svc.running(E2E_SERVICES):
        yield svc


def completion(tenant: str, text: str) -> CompletionGeneratedV1:
    return CompletionGeneratedV1(
        request_id=new_request_id("gate"),
        tenant=tenant,
        model="smollm2-135m-instruct",
        backend="transformers",
        text=text,
        finish_reason="stop",
        usage=TokenUsage(input_tokens=120, output_tokens=30),
        latency_ms=900.0,
        chunks=CHUNKS,
        prompt_name="qa",
        prompt_version=1,
        generated_at=datetime.now(UTC),
    )


def gate_finding(findings: list[Any]) -> Any:
    found = [f for f in findings if (f["check"] if isinstance(f, dict) else f.check) == "groundedness"]
    assert len(found) == 1, findings
    return found[0]


async def stored(store: PostgresAuditStore, request_id: str, event_type: str, timeout: float = 30.0) -> Any:
    """The audit record of `event_type` in the request's trail, once the audit service stored it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = [r for r in await store.trail(request_id) if r.event_type == event_type]
        if found or loop.time() > deadline:
            assert found, f"no {event_type} in the trail of {request_id}"
            return found[0]
        await asyncio.sleep(0.3)


async def test_the_gate_acts_per_policy_and_the_trail_shows_score_and_action(
    upstream: Upstream, audit_store: PostgresAuditStore
) -> None:
    cases = {
        "flagged": completion("any-tenant", UNSUPPORTED),  # the default policy: flag
        "cited": completion("gate-cite", UNSUPPORTED),
        "held": completion("gate-review", UNSUPPORTED),
        "supported": completion("gate-cite", SUPPORTED),
    }
    for event in cases.values():
        await upstream.submit(event)
    got = {name: await upstream.response(event.request_id, timeout=60) for name, event in cases.items()}

    flagged = got["flagged"]
    assert flagged.status is ResponseStatus.COMPLETED
    assert flagged.text == UNSUPPORTED
    finding = gate_finding(flagged.findings)
    assert (finding.label, finding.fired) == ("unsupported", True)
    assert finding.score < 0.7
    assert finding.detail.startswith("flagged; 2 of 2 sentence(s) unsupported")

    cited = got["cited"]
    assert cited.status is ResponseStatus.COMPLETED
    assert cited.text is not None
    assert cited.text.startswith("This answer could not be verified against its sources")
    assert CHUNKS[0].text in cited.text  # the passage the answer cited as [1]
    assert CHUNKS[1].text not in cited.text
    assert "Apollo" not in cited.text
    assert gate_finding(cited.findings).detail.startswith("replaced by the cited passages;")

    held = got["held"]
    assert held.status is not ResponseStatus.COMPLETED  # held for a reviewer, not released
    assert held.text != UNSUPPORTED
    assert held.verdict is not None
    assert held.verdict.value == "review"
    assert gate_finding(held.findings).detail.startswith("held for review;")

    supported = got["supported"]
    assert supported.status is ResponseStatus.COMPLETED
    assert supported.text == SUPPORTED
    finding = gate_finding(supported.findings)
    assert (finding.label, finding.fired, finding.score) == ("supported", False, 1.0)

    # the trail keeps the score and the action taken, with the response upstream received
    for name in ("flagged", "cited", "supported"):
        record = await stored(audit_store, cases[name].request_id, "cairn.response.completed.v1")
        assert gate_finding(record.payload["findings"]) == gate_finding(got[name].findings).model_dump(
            mode="json"
        )
    requested = await stored(audit_store, cases["held"].request_id, "cairn.review.requested.v1")
    assert requested.payload["verdict"] == "review"
    assert requested.payload["text"] == UNSUPPORTED  # the reviewer sees the answer
    assert gate_finding(requested.payload["findings"])["fired"] is True
