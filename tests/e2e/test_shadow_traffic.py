"""Shadow traffic end to end: a shadow started with `cairn eval shadow start` mirrors live requests to
a candidate prompt version; the shadow requests run through the real services with the candidate,
their answers stay off upstream's `cairn.responses`, and the evaluator scores every live/shadow pair.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_events import RequestSubmittedV1, ResponseStatus
from cairn_testing.processes import ServiceProcesses, run_cairn

from .harness import REPO, Upstream, new_request_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

E2E_SERVICES = ["audit", "prompt-store", "retriever", "safety", "inference", "evaluator"]
QUESTIONS = [
    "What does the assert statement do?",
    "What does the pass statement do?",
    "What does the yield statement do?",
]
REFRESH_S = 5.0  # the evaluator's default shadow_refresh_s: it sees a new shadow within this


def ask(prompt: str, question: str) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("shadowed"),
            "prompt": f"{prompt}@production",
            "variables": {"question": question},
            "retrieval": {"top_k": 2},
            "params": {"max_tokens": 32, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


def push_prompt_versions(services: ServiceProcesses, folder: Path, name: str) -> str:
    """The `qa` prompt as `name` (labelled production), then a candidate version of it (no label
    moves): the candidate's `name:<n>` reference. A prompt of its own keeps the shadow (filtered on
    it) off other tests' traffic on the same broker."""
    text = (REPO / "infra" / "prompts" / "qa.yaml").read_text(encoding="utf-8")
    live = text.replace("\nname: qa\n", f"\nname: {name}\n")
    assert live != text
    candidate = live.replace(
        "Answer in a few sentences.", "Answer in one short sentence, citing the context."
    )
    assert candidate != live
    (folder / "live.yaml").write_text(live, encoding="utf-8")
    (folder / "candidate.yaml").write_text(candidate, encoding="utf-8")
    run_cairn(services.env, "prompts", "push", str(folder / "live.yaml"), "--label", "production", cwd=REPO)
    out = run_cairn(services.env, "prompts", "push", str(folder / "candidate.yaml"), cwd=REPO)
    found = re.search(rf"\b{re.escape(name)}:(\d+) \(new version\)", out)
    assert found, out
    return f"{name}:{found.group(1)}"


async def shadow_report(services: ServiceProcesses, shadow_id: str) -> dict[str, Any]:
    out = await asyncio.to_thread(
        run_cairn, services.env, "eval", "shadow", "report", shadow_id, "--json", cwd=REPO
    )
    report: dict[str, Any] = json.loads(out)
    return report


async def test_live_requests_mirrored_to_a_candidate_prompt_are_scored_in_pairs(
    services: ServiceProcesses,
    upstream: Upstream,
    audit_store: PostgresAuditStore,
    e2e_database: str,
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:8]
    prompt, shadow_id = f"shadowqa-{tag}", f"e2e-{tag}"
    candidate = push_prompt_versions(services, tmp_path, prompt)
    start = ["eval", "shadow", "start", shadow_id, "--prompt", candidate, "--share", "1"]
    start += ["--only-prompt", prompt]
    started = run_cairn(services.env, *start, cwd=REPO)
    assert f"shadow {shadow_id}: on, prompt {candidate}, share 1" in started
    await asyncio.sleep(REFRESH_S + 0.5)  # the running evaluator reads the shadows again

    requests = [ask(prompt, q) for q in QUESTIONS]
    for request in requests:
        await upstream.submit(request)
    live = {r.request_id: await upstream.response(r.request_id, settle=0.2) for r in requests}

    # the evaluator files and scores both answers of every mirrored request
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 600
    report = await shadow_report(services, shadow_id)
    while report["summary"]["pairs"] < len(requests):
        assert loop.time() < deadline, f"pairs not scored in time: {json.dumps(report['summary'], indent=2)}"
        await asyncio.sleep(2)
        report = await shadow_report(services, shadow_id)
    summary = report["summary"]
    assert (summary["mirrored"], summary["live_answers"], summary["shadow_answers"]) == (3, 3, 3)

    twins = {r.request_id: f"shadow:{shadow_id}:{r.request_id}" for r in requests}
    trails = await audit_store.trails(list(twins.values()))
    shadow_answers = {}
    for live_id, twin_id in twins.items():
        trail = trails[twin_id]
        [submitted] = [r for r in trail if r.event_type == "cairn.request.submitted.v1"]
        # the shadow request: the live one with the candidate prompt, marked as shadow traffic
        assert submitted.payload["prompt"] == candidate
        assert submitted.payload["metadata"] == {"shadow_id": shadow_id, "shadow_of": live_id}
        assert submitted.replay_id == f"shadow:{shadow_id}"
        [live_submitted] = [
            r for r in await audit_store.trail(live_id) if r.event_type == "cairn.request.submitted.v1"
        ]
        assert submitted.replay_of == live_submitted.event_id
        assert submitted.payload["variables"] == live_submitted.payload["variables"]
        # it ran with the candidate: rendered from that version, every event marked
        [rendered] = [r for r in trail if r.event_type == "cairn.prompt.rendered.v1"]
        assert f"{prompt}:{rendered.payload['prompt_version']}" == candidate
        assert {r.replay_id for r in trail} == {f"shadow:{shadow_id}"}
        [answer] = [r for r in trail if r.event_type == "cairn.response.completed.v1"]
        assert answer.topic == "cairn.responses.shadow"
        assert answer.payload["prompt_version"] == rendered.payload["prompt_version"]
        shadow_answers[live_id] = answer.payload
        # the live answer came from the production version
        assert live[live_id].prompt_version != rendered.payload["prompt_version"]

    # upstream's cairn.responses got the live answers only, one answer each
    assert set(upstream.responses) >= set(live)
    assert not set(upstream.responses) & set(twins.values())
    answered = {rid: [(m.id, e.status.value) for m, e in upstream.responses[rid]] for rid in live}
    assert all(len({i for i, _ in got}) == 1 for got in answered.values()), (
        answered
    )  # redeliveries share an id

    # both sides scored the way live traffic is: the live side's groundedness is the one the online
    # quality records for the same answer
    conn = await asyncpg.connect(e2e_database)
    try:
        filed = await conn.fetch(
            "SELECT request_id, side, status, groundedness, output_tokens FROM shadow_answers WHERE shadow_id = $1",
            shadow_id,
        )
        online = {
            r["request_id"]: r["groundedness"]
            for r in await conn.fetch(
                "SELECT request_id, groundedness FROM online_responses WHERE request_id = ANY($1::text[])",
                list(live),
            )
        }
    finally:
        await conn.close()
    by_side = {(r["request_id"], r["side"]): r for r in filed}
    assert len(by_side) == 6
    scored = 0
    for live_id, response in live.items():
        mine, theirs = by_side[(live_id, "live")], by_side[(live_id, "shadow")]
        assert mine["status"] == response.status.value
        assert theirs["status"] == shadow_answers[live_id]["status"]
        assert theirs["output_tokens"] == (shadow_answers[live_id].get("usage") or {}).get("output_tokens")
        if response.status is ResponseStatus.COMPLETED and response.citations:
            assert mine["groundedness"] == pytest.approx(online[live_id])
        if mine["groundedness"] is not None and theirs["groundedness"] is not None:
            scored += 1
    assert summary["scored_pairs"] == scored
    assert summary["wins"] + summary["ties"] + summary["losses"] == scored
    if scored:
        assert 0.0 <= summary["shadow_groundedness"]["mean"] <= 1.0
    assert report["scores"][0] == {
        "suite": f"shadow:{shadow_id}",
        "metric": "pairs",
        "candidate": float(scored),
        "baseline": None,
        "passed": True,
    }

    stopped = run_cairn(services.env, "eval", "shadow", "stop", shadow_id, cwd=REPO)
    assert f"shadow {shadow_id}: off" in stopped
