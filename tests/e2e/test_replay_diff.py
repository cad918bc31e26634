"""`cairn replay --diff` end to end: requests recorded through the running services are re-run with
a second prompt version as shadow requests, and the diff's rows match both trails.

Upstream (reading `cairn.responses`) must receive nothing from the replay: the shadow answers go to
`cairn.responses.shadow`, where the audit service stores them.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.domain.records import AuditRecord
from cairn_events import RequestSubmittedV1
from cairn_testing.processes import ServiceProcesses, run_cairn

from .harness import REPO, Upstream, new_request_id

pytestmark = pytest.mark.integration

RERUN_WOULD_ADD = ("cairn.request.submitted.v1", "cairn.prompt.rendered.v1")
QUESTIONS = ["What does the assert statement do?", "What does the pass statement do?"]


def ask(question: str) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("diff"),
            "prompt": "qa@production",
            "variables": {"question": question},
            "params": {"max_tokens": 32, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


def push_second_version(services: ServiceProcesses, folder: Path) -> str:
    """A second version of the `qa` prompt (no label moves): its `qa:<n>` reference."""
    text = (REPO / "infra" / "prompts" / "qa.yaml").read_text(encoding="utf-8")
    changed = text.replace("Answer in a few sentences.", "Answer in one short sentence.")
    assert changed != text
    path = folder / "qa-v2.yaml"
    path.write_text(changed, encoding="utf-8")
    out = run_cairn(services.env, "prompts", "push", str(path), cwd=REPO)
    found = re.search(r"\bqa:(\d+) \(new version\)", out)
    assert found, out
    return f"qa:{found.group(1)}"


def one(records: list[AuditRecord], event_type: str) -> dict[str, Any]:
    found = [r for r in records if r.event_type == event_type]
    assert len(found) == 1, f"{len(found)} x {event_type}"
    return dict(found[0].payload)


async def test_a_replay_with_a_prompt_override_yields_a_diff_matching_the_trails(
    services: ServiceProcesses, upstream: Upstream, audit_store: PostgresAuditStore, tmp_path: Path
) -> None:
    version = push_second_version(services, tmp_path)
    start = datetime.now(UTC) - timedelta(seconds=1)
    requests = [ask(q) for q in QUESTIONS]
    for request in requests:
        await upstream.submit(request)
    live = {r.request_id: await upstream.response(r.request_id, settle=0.2) for r in requests}
    end = datetime.now(UTC) + timedelta(seconds=1)
    before = {rid: list(got) for rid, got in upstream.responses.items()}

    replay_id = f"e2e-{uuid.uuid4().hex[:8]}"
    report = tmp_path / "diff.json"
    args = ["replay", "--diff", "--from", start.isoformat(), "--to", end.isoformat(), "--prompt", version]
    args += ["--replay-id", replay_id, "--format", "json", "--out", str(report), "--timeout", "300"]
    await asyncio.to_thread(run_cairn, services.env, *args, cwd=REPO)
    diff = json.loads(report.read_text(encoding="utf-8"))

    assert diff["replay_id"] == replay_id
    assert diff["missing"] == []
    rows = {row["original_request_id"]: row for row in diff["rows"]}
    assert sorted(rows) == sorted(live)
    for request_id, response in live.items():
        row = rows[request_id]
        old_trail = [r for r in await audit_store.trail(request_id) if r.replay_id is None]
        new_trail = await audit_store.trail(row["shadow_request_id"])
        assert new_trail
        assert {r.replay_id for r in new_trail} == {replay_id}
        shadow_request = one(new_trail, "cairn.request.submitted.v1")
        assert shadow_request["prompt"] == version
        assert shadow_request["variables"] == {"question": row["question"]}
        [first] = [r for r in new_trail if r.event_type == "cairn.request.submitted.v1"]
        assert first.replay_of == one_id(old_trail, "cairn.request.submitted.v1")
        new_response = one(new_trail, "cairn.response.completed.v1")
        [stored] = [r for r in new_trail if r.event_type == "cairn.response.completed.v1"]
        assert stored.topic == "cairn.responses.shadow"

        # old answer = what upstream got; new answer = the shadow response; prompt versions as run
        assert row["old"]["text"] == response.text
        assert row["old"]["status"] == response.status.value
        assert row["new"]["text"] == new_response["text"]
        assert row["new"]["status"] == new_response["status"]
        assert row["old"]["prompt"] == f"qa:{response.prompt_version}"
        assert row["new"]["prompt"] == version
        # chunks, verdicts and tokens, from each trail's own events
        old_chunks = [c["chunk_id"] for c in one(old_trail, "cairn.context.assembled.v1")["chunks"]]
        new_chunks = [c["chunk_id"] for c in one(new_trail, "cairn.context.assembled.v1")["chunks"]]
        assert row["old"]["chunks"] == old_chunks
        assert row["new"]["chunks"] == new_chunks
        assert [c["chunk_id"] for c in row["chunks_added"]] == [c for c in new_chunks if c not in old_chunks]
        assert [c["chunk_id"] for c in row["chunks_removed"]] == [
            c for c in old_chunks if c not in new_chunks
        ]
        assert row["old"]["input_verdict"] == one(old_trail, "cairn.input.screened.v1")["verdict"]
        assert row["new"]["input_verdict"] == one(new_trail, "cairn.input.screened.v1")["verdict"]
        assert row["new"]["output_verdict"] == new_response["verdict"]
        if response.usage is not None:
            assert (row["old"]["input_tokens"], row["old"]["output_tokens"]) == (
                response.usage.input_tokens,
                response.usage.output_tokens,
            )
        usage = new_response["usage"]
        if usage is not None:
            assert (row["new"]["input_tokens"], row["new"]["output_tokens"]) == (
                usage["input_tokens"],
                usage["output_tokens"],
            )
        assert row["new"]["latency_ms"] is not None
        assert row["new"]["latency_ms"] >= 0

    # upstream received nothing from the replay: no answer to a shadow request, no second answer
    await asyncio.sleep(2.0)
    shadow_ids = {row["shadow_request_id"] for row in diff["rows"]}
    assert not shadow_ids & set(upstream.responses)
    assert {rid: len(got) for rid, got in upstream.responses.items()} == {
        rid: len(got) for rid, got in before.items()
    }
    assert all(meta.replay_id is None for got in upstream.responses.values() for meta, _ in got)

    # the same replay again (resumable): nothing new is published, the HTML report is written
    stored = {sid: await shadow_path(audit_store, sid) for sid in shadow_ids}
    html = tmp_path / "diff.html"
    args[args.index("json")] = "html"
    args[args.index(str(report))] = str(html)
    await asyncio.to_thread(run_cairn, services.env, *args, cwd=REPO)
    for sid, before_rerun in stored.items():
        after = await shadow_path(audit_store, sid)
        added = [pair for pair in after if pair not in before_rerun]
        # the rerun's requests are the same events: no second request, nothing rendered again
        assert not [t for t, _ in added if t in RERUN_WOULD_ADD], f"{sid}: the rerun added {added}"
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert all(rid in page for rid in live)


async def shadow_path(store: PostgresAuditStore, shadow_id: str) -> list[tuple[str, str]]:
    """(type, id) of the request path's events in a shadow trail (one of each when nothing ran twice)."""
    return sorted((r.event_type, r.event_id) for r in await store.trail(shadow_id))


def one_id(records: list[AuditRecord], event_type: str) -> str:
    [found] = [r for r in records if r.event_type == event_type]
    return found.event_id
