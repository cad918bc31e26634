"""The console's model pages over a fake registry (evaluator) API: the listing, one model's versions,
stage history and evaluation runs, and promotions and rollbacks behind their confirmation pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_gateway.console.pages_models import gate_text, rollback_target

from .console_world import ConsoleWorld, FakeApis, console_world


def version(number: int, stage: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": "cairn-qa", "version": number, "base_model": "Qwen/Qwen2.5-0.5B-Instruct", "adapter_uri": None,
        "dataset_id": None, "dataset_version": None, "job_id": None, "config": {}, "metrics": {},
        "code_version": "unknown", "registered_at": f"2026-12-0{number}T08:00:00+00:00", "stage": stage, **fields,
    }  # fmt: skip


MODEL = {
    "name": "cairn-qa", "production": 2, "staging": [3], "aliases": {"champion": 2},
    "versions": [
        version(1, "archived"),
        version(2, "production", adapter_uri="s3://cairn-models/cairn-qa/2", dataset_id="ds-support",
                dataset_version=4, job_id="job-7", metrics={"eval_loss": 0.4321}),
        version(3, "staging", adapter_uri="s3://cairn-models/cairn-qa/3"),
        version(4, "dev"),
    ],
}  # fmt: skip


def promotion(
    number: int, from_stage: str | None, to_stage: str, at: str, run: str | None = None
) -> dict[str, Any]:
    return {
        "name": "cairn-qa", "version": number, "from_stage": from_stage, "to_stage": to_stage, "by": "key-root",
        "reason": f"v{number} to {to_stage}", "at": at, "event_id": f"ev-{number}-{to_stage}",
        "evidence_run_id": run,
    }  # fmt: skip


HISTORY = [
    promotion(1, "dev", "production", "2026-12-01T09:00:00+00:00"),
    promotion(2, "staging", "production", "2026-12-02T09:00:00+00:00"),
    promotion(1, "production", "archived", "2026-12-02T09:00:00+00:00"),
    promotion(3, "dev", "staging", "2026-12-03T09:00:00+00:00", run="run-3"),
]
RUN: dict[str, Any] = {
    "run": {
        "run_id": "run-3", "model_name": "cairn-qa", "candidate_version": 3, "baseline_version": 2,
        "status": "passed", "started_at": "2026-12-03T08:00:00+00:00", "deadline": "2026-12-03T09:00:00+00:00",
        "cause_event_id": "ev-reg-3", "sent": True, "passed": True, "verdict": "passed every gate",
        "report_uri": "s3://cairn-reports/run-3.json", "completed_at": "2026-12-03T08:30:00+00:00",
        "suites": [{"name": "support-qa", "kind": "benchmark", "description": "", "max_tokens": 48,
                    "gate": {"metric": "exact_match", "min": 0.5, "max_regression": 0.05}}],
        "scores": [{"suite": "support-qa", "metric": "exact_match", "candidate": 0.72, "baseline": 0.7,
                    "passed": True}],
    },
    "cases": 40, "answered": 40,
}  # fmt: skip
FAILED_RUN = {
    "run": {**RUN["run"], "run_id": "run-4", "candidate_version": 4, "status": "failed", "passed": False,
            "verdict": "support-qa exact_match 0.41 is below 0.5", "started_at": "2026-12-04T08:00:00+00:00",
            "scores": [{"suite": "support-qa", "metric": "exact_match", "candidate": 0.41, "baseline": 0.7,
                        "passed": False}]},
    "cases": 40, "answered": 40,
}  # fmt: skip
EVALUATED = [
    {"event_type": "cairn.evaluation.completed.v1", "tenant": None,
     "payload": {"run_id": "run-4", "model_name": "cairn-qa", "candidate_version": 4, "passed": False}},
    {"event_type": "cairn.evaluation.completed.v1", "tenant": None,
     "payload": {"run_id": "run-9", "model_name": "other-model", "candidate_version": 1, "passed": True}},
]  # fmt: skip
CHANGED = {"changed": True, "promotions": []}


@pytest.fixture
async def world() -> AsyncIterator[ConsoleWorld]:
    apis = FakeApis()
    apis.answer("registry", "GET", "/v1/models", [MODEL])
    apis.answer("registry", "GET", "/v1/models/cairn-qa", MODEL)
    apis.answer("registry", "GET", "/v1/models/cairn-qa/history", HISTORY)
    apis.answer("registry", "GET", "/v1/runs/run-3", RUN)
    apis.answer("registry", "GET", "/v1/runs/run-4", FAILED_RUN)
    apis.answer("registry", "POST", "/v1/models/cairn-qa/versions/[0-9]+/promote", CHANGED)
    apis.answer("registry", "POST", "/v1/models/cairn-qa/rollback", CHANGED)
    apis.answer("audit", "GET", "/v1/events", EVALUATED)
    async with console_world(apis) as w:
        yield w


def buttons(html: str) -> set[str]:
    return set(re.findall(r'id="(promote-\d+-\w+|rollback)"', html))


async def test_the_listing_shows_each_model_with_its_production_and_staging_versions(
    world: ConsoleWorld,
) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/models")
    assert page.status_code == 200
    assert 'href="/console/models/cairn-qa"' in page.text
    assert '<span class="badge production">v2</span>' in page.text
    assert '<span class="badge staging">v3</span>' in page.text
    assert "champion → v2" in page.text
    [(path, _, _, auth)] = world.apis.calls_to("registry")
    assert path == "/v1/models"
    assert auth == f"Bearer {world.tokens['viewer']}"


async def test_a_model_page_shows_versions_history_and_the_evidence_runs(world: ConsoleWorld) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/models/cairn-qa")
    assert page.status_code == 200
    text = page.text
    assert text.index('id="version-4"') < text.index('id="version-1"')  # newest first
    assert 'id="stage-2">production' in text
    assert 'id="stage-3">staging' in text
    assert "s3://cairn-models/cairn-qa/2" in text
    assert "ds-support v4" in text
    assert "job-7" in text
    assert "eval_loss 0.432" in text
    assert '<a href="#run-run-3">run run-3</a>' in text  # the history names its evidence
    assert 'id="run-status-run-3">passed' in text
    assert "exact_match: at least 0.5, drop below baseline at most 0.05" in text
    assert "+0.020" in text
    assert "40 of 40 requests answered" in text
    assert "s3://cairn-reports/run-3.json" in text
    assert buttons(text) == set()  # a viewer moves nothing
    assert "needs the operator role" in text
    assert world.apis.calls_to("audit") == []  # evaluations are platform events: not asked with a tenant key
    assert [p for p, *_ in world.apis.calls_to("registry")] == [
        "/v1/models/cairn-qa", "/v1/models/cairn-qa/history", "/v1/runs/run-3"]  # fmt: skip


async def test_a_platform_admin_also_sees_runs_that_promoted_nothing(world: ConsoleWorld) -> None:
    await world.login("root")
    page = await world.client.get("/console/models/cairn-qa")
    text = page.text
    assert 'id="run-status-run-4">failed' in text
    assert "support-qa exact_match 0.41 is below 0.5" in text
    assert text.index('id="run-run-4"') < text.index('id="run-run-3"')  # newest first
    assert "run-9" not in text  # another model's run
    [(_, query, _, _)] = world.apis.calls_to("audit")
    assert query["type"] == "cairn.evaluation.completed.v1"


async def test_operators_see_staging_buttons_and_platform_admins_every_move(world: ConsoleWorld) -> None:
    await world.login("operator")
    operator = buttons((await world.client.get("/console/models/cairn-qa")).text)
    assert operator == {"promote-4-staging", "promote-2-staging", "promote-1-staging"}
    await world.login("admin")  # a tenant's admin: production changes every tenant's answers
    assert buttons((await world.client.get("/console/models/cairn-qa")).text) == operator
    await world.login("root")
    root = buttons((await world.client.get("/console/models/cairn-qa")).text)
    assert {"promote-3-production", "promote-4-archived", "promote-2-archived", "rollback"} <= root
    assert "promote-2-production" not in root
    assert "promote-3-staging" not in root


async def test_the_confirmation_page_says_what_a_production_move_does(world: ConsoleWorld) -> None:
    await world.login("root")
    page = await world.client.get("/console/models/cairn-qa/versions/3/promote", params={"to": "production"})
    assert page.status_code == 200
    assert "Version 3 moves from staging to production." in page.text
    assert "Version 2 leaves production: it is archived." in page.text
    assert 'action="/console/models/cairn-qa/versions/3/promote"' in page.text
    assert 'id="confirm"' in page.text
    assert 'name="reason"' in page.text
    assert world.apis.calls_to("registry", "POST") == []  # only the POST acts


async def test_confirming_a_production_move_calls_the_registry_with_the_stage_and_reason(
    world: ConsoleWorld,
) -> None:
    await world.login("root")
    csrf = await world.csrf("/console/models/cairn-qa/versions/3/promote?to=production")
    got = await world.client.post(
        "/console/models/cairn-qa/versions/3/promote",
        data={"csrf": csrf, "to": "production", "reason": "won the evaluation"},
    )
    assert got.status_code == 303
    assert got.headers["location"] == "/console/models/cairn-qa?notice=promoted"
    [(path, _, body, auth)] = world.apis.calls_to("registry", "POST")
    assert path == "/v1/models/cairn-qa/versions/3/promote"
    assert body == {"to": "production", "reason": "won the evaluation"}
    assert auth == f"Bearer {world.tokens['root']}"


async def test_an_operator_moves_a_version_to_staging(world: ConsoleWorld) -> None:
    await world.login("operator")
    csrf = await world.csrf("/console/models/cairn-qa/versions/4/promote?to=staging")
    got = await world.client.post(
        "/console/models/cairn-qa/versions/4/promote",
        data={"csrf": csrf, "to": "staging", "reason": "try it"},
    )
    assert got.headers["location"] == "/console/models/cairn-qa?notice=promoted"
    [(path, _, body, auth)] = world.apis.calls_to("registry", "POST")
    assert (path, body) == ("/v1/models/cairn-qa/versions/4/promote", {"to": "staging", "reason": "try it"})
    assert auth == f"Bearer {world.tokens['operator']}"


async def test_a_move_to_the_stage_it_has_changes_nothing(world: ConsoleWorld) -> None:
    world.apis.answer(
        "registry", "POST", "/v1/models/cairn-qa/versions/3/promote", {"changed": False, "promotions": []}
    )
    await world.login("operator")
    page = await world.client.get("/console/models/cairn-qa/versions/3/promote", params={"to": "staging"})
    assert "in staging already: nothing changes" in page.text
    assert 'id="confirm"' not in page.text
    csrf = await world.csrf("/console/models/cairn-qa")
    got = await world.client.post(
        "/console/models/cairn-qa/versions/3/promote", data={"csrf": csrf, "to": "staging", "reason": "again"}
    )
    assert got.headers["location"] == "/console/models/cairn-qa?notice=unchanged"


@pytest.mark.parametrize("who", ["operator", "admin"])
async def test_a_production_move_needs_a_platform_admin_and_calls_nothing(
    world: ConsoleWorld, who: str
) -> None:
    await world.login(who)
    page = await world.client.get("/console/models/cairn-qa/versions/3/promote", params={"to": "production"})
    assert page.status_code == 403
    csrf = await world.csrf("/console/models/cairn-qa")
    got = await world.client.post(
        "/console/models/cairn-qa/versions/3/promote", data={"csrf": csrf, "to": "production", "reason": "x"}
    )
    assert got.status_code == 403
    assert "platform-wide admin" in got.text
    assert world.apis.calls_to("registry", "POST") == []


async def test_a_viewer_cannot_stage_a_version(world: ConsoleWorld) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/models/cairn-qa/versions/4/promote", params={"to": "staging"})
    assert page.status_code == 403
    csrf = await world.csrf("/console/models/cairn-qa")
    got = await world.client.post(
        "/console/models/cairn-qa/versions/4/promote", data={"csrf": csrf, "to": "staging", "reason": "x"}
    )
    assert got.status_code == 403
    assert "needs the operator role" in got.text
    assert world.apis.calls_to("registry", "POST") == []


async def test_a_promotion_without_the_sessions_csrf_token_is_refused(world: ConsoleWorld) -> None:
    await world.login("root")
    got = await world.client.post(
        "/console/models/cairn-qa/versions/3/promote", data={"to": "production", "reason": "forged"}
    )
    assert got.status_code == 403
    assert "CSRF" in got.text
    assert world.apis.calls_to("registry", "POST") == []


async def test_a_promotion_needs_a_reason_and_a_known_stage(world: ConsoleWorld) -> None:
    await world.login("root")
    csrf = await world.csrf("/console/models/cairn-qa")
    no_reason = await world.client.post(
        "/console/models/cairn-qa/versions/3/promote", data={"csrf": csrf, "to": "production", "reason": " "}
    )
    assert no_reason.status_code == 400
    bad_stage = await world.client.post(
        "/console/models/cairn-qa/versions/3/promote", data={"csrf": csrf, "to": "dev", "reason": "x"}
    )
    assert bad_stage.status_code == 400
    assert world.apis.calls_to("registry", "POST") == []


async def test_the_rollback_confirmation_names_both_versions(world: ConsoleWorld) -> None:
    await world.login("root")
    page = await world.client.get("/console/models/cairn-qa/rollback")
    assert page.status_code == 200
    assert "Version 1 returns to production" in page.text
    assert "Version 2 leaves production: it is archived." in page.text
    assert 'action="/console/models/cairn-qa/rollback"' in page.text
    assert 'id="confirm"' in page.text
    assert world.apis.calls_to("registry", "POST") == []


async def test_confirming_a_rollback_calls_the_registry(world: ConsoleWorld) -> None:
    await world.login("root")
    csrf = await world.csrf("/console/models/cairn-qa/rollback")
    got = await world.client.post(
        "/console/models/cairn-qa/rollback", data={"csrf": csrf, "reason": "regression"}
    )
    assert got.status_code == 303
    assert got.headers["location"] == "/console/models/cairn-qa?notice=rolled-back"
    [(path, _, body, auth)] = world.apis.calls_to("registry", "POST")
    assert (path, body) == ("/v1/models/cairn-qa/rollback", {"reason": "regression"})
    assert auth == f"Bearer {world.tokens['root']}"


async def test_a_rollback_is_refused_to_a_tenant_admin_and_without_the_csrf_token(
    world: ConsoleWorld,
) -> None:
    await world.login("admin")
    assert (await world.client.get("/console/models/cairn-qa/rollback")).status_code == 403
    csrf = await world.csrf("/console/models/cairn-qa")
    refused = await world.client.post("/console/models/cairn-qa/rollback", data={"csrf": csrf, "reason": "x"})
    assert refused.status_code == 403
    await world.login("root")
    forged = await world.client.post("/console/models/cairn-qa/rollback", data={"reason": "x"})
    assert forged.status_code == 403
    assert world.apis.calls_to("registry", "POST") == []


async def test_a_registry_refusal_is_shown_as_an_error_page(world: ConsoleWorld) -> None:
    world.apis.answer(
        "registry", "POST", "/v1/models/cairn-qa/rollback", {"detail": "no earlier version"}, 409
    )
    await world.login("root")
    csrf = await world.csrf("/console/models/cairn-qa")
    got = await world.client.post("/console/models/cairn-qa/rollback", data={"csrf": csrf, "reason": "x"})
    assert got.status_code == 409
    assert "model registry (evaluator): no earlier version" in got.text


def test_rollback_target_is_the_last_other_production_version() -> None:
    assert rollback_target(HISTORY, 2) == 1
    assert rollback_target(HISTORY[:1], 1) is None


def test_gate_text_names_only_the_rules_set() -> None:
    assert gate_text({"metric": "refusal_rate", "min": None, "max_regression": 0.0}) == (
        "refusal_rate: drop below baseline at most 0.0"
    )
