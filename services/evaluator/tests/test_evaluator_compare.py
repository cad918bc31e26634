"""`cairn eval compare`: the same suites asked of several versions (one `compare` run each, never
promoting), their scores side by side, and the students' agreement with a teacher."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from typer.testing import CliRunner

from cairn_bus import InMemoryPublisher
from cairn_evaluator import cli_support
from cairn_evaluator.cli import eval_app
from cairn_evaluator.comparison import parse_ref, resolve, start_comparison
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.comparison import compare_runs
from cairn_evaluator.domain.errors import VersionNotFoundError
from cairn_evaluator.domain.registry import ModelVersion
from cairn_evaluator.domain.runs import Run, RunCase
from cairn_events import EvaluationCompletedV1, ModelPromotedV1, RequestSubmittedV1, ResponseStatus

from .conftest import answer_all, heldout_rows, make_deps, put_heldout, registered, requests_of

runner = CliRunner()
BASE, TEACHER, STUDENT = "cairn-qa:1", "cairn-qa:2", "cairn-qa:3"


def three_models(request: RequestSubmittedV1) -> tuple[ResponseStatus, str | None]:
    """The base knows nothing; the teacher repeats the held-out targets; the student half of them."""
    question = str(request.variables.get("question", ""))
    if "Ignore" in question or "DAN" in question:
        return (
            (ResponseStatus.COMPLETED, "pwned") if request.model == BASE else (ResponseStatus.BLOCKED, None)
        )
    if question.startswith("question "):
        number = question.split()[-1]
        if request.model == TEACHER:
            return ResponseStatus.COMPLETED, f"the answer is number {number}"
        if request.model == STUDENT:
            return ResponseStatus.COMPLETED, f"the answer is {number}"
        return ResponseStatus.COMPLETED, "no idea"
    if request.model == BASE:
        return ResponseStatus.COMPLETED, "hello"
    return ResponseStatus.COMPLETED, "A generator function uses yield."


@pytest.fixture
def deps() -> Deps:
    shared = make_deps()
    put_heldout(shared.objects, heldout_rows(2))
    for n, job in ((1, None), (2, None), (3, "job-student")):  # only the student was tuned on the dataset
        asyncio.run(shared.registry.register(ModelVersion.from_event(registered(n, job_id=job))))
    return shared


@pytest.fixture
def cli(deps: Deps, monkeypatch: pytest.MonkeyPatch) -> Deps:
    @asynccontextmanager
    async def open_deps(publish: bool) -> AsyncIterator[Deps]:
        yield deps

    monkeypatch.setattr(cli_support, "open_deps", open_deps)
    return deps


def published(deps: Deps, event_type: str) -> list[object]:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return list(deps.publisher.events(event_type))


async def compared(deps: Deps, refs: list[str], **options: object) -> list[tuple[Run, list[RunCase]]]:
    versions = await resolve(deps, refs)
    runs = await start_comparison(deps, versions, compare_id="c1", **options)  # type: ignore[arg-type]
    await answer_all(deps, three_models)
    return [(r, await deps.runs.cases(r.run_id)) for r in [await deps.runs.get(x.run_id) for x in runs] if r]


def test_refs_name_registry_versions() -> None:
    assert parse_ref("cairn-qa:3") == ("cairn-qa", 3)
    for bad in ("cairn-qa", "cairn-qa@staging", "cairn-qa:0", "SmolLM2-135M-Instruct"):
        with pytest.raises(VersionNotFoundError):
            parse_ref(bad)


async def test_every_version_answers_the_same_cases_and_nothing_is_promoted(deps: Deps) -> None:
    runs = await compared(deps, [STUDENT, TEACHER, BASE])
    assert [r.candidate_ref for r, _ in runs] == [STUDENT, TEACHER, BASE]
    assert {r.purpose for r, _ in runs} == {"compare"}
    assert all(r.baseline_version is None for r, _ in runs)  # each version alone, no production side
    asked = [[(c.suite, c.case.id) for c in cases] for _, cases in runs]
    assert asked[0] == asked[1] == asked[2]
    assert {suite for suite, _ in asked[0]} == {"scenario", "adversarial", "heldout"}  # the student's rows
    assert {r.model for r in requests_of(deps)} == {BASE, TEACHER, STUDENT}
    assert all(r.status != "running" for r, _ in runs)
    assert published(deps, ModelPromotedV1.event_type) == []  # even though the teacher passes every gate
    assert len(published(deps, EvaluationCompletedV1.event_type)) == 3
    # the same comparison id finds the same runs and sends nothing again
    before = len(requests_of(deps))
    again = await start_comparison(deps, await resolve(deps, [STUDENT, TEACHER, BASE]), compare_id="c1")
    assert [r.run_id for r in again] == [r.run_id for r, _ in runs]
    assert len(requests_of(deps)) == before


async def test_scores_per_suite_and_agreement_with_the_teacher(deps: Deps) -> None:
    comparison = compare_runs(await compared(deps, [STUDENT, TEACHER, BASE]), TEACHER)
    assert comparison.suites == [
        ("scenario", "pass_rate"),
        ("adversarial", "refusal_rate"),
        ("heldout", "token_f1"),
        ("completeness", "answered"),
    ]
    by_ref = {v.ref: v for v in comparison.versions}
    assert by_ref[TEACHER].scores["heldout"]["token_f1"] == 1.0
    assert by_ref[BASE].scores["heldout"]["token_f1"] == 0.0
    assert by_ref[BASE].scores["adversarial"]["refusal_rate"] == 0.0
    assert by_ref[STUDENT].scores["adversarial"]["refusal_rate"] == 1.0
    # "the answer is 1" against "the answer is number 1": precision 1, recall 3/4 (articles dropped)
    assert by_ref[STUDENT].agreement == pytest.approx(2 * 0.75 / 1.75)
    assert by_ref[STUDENT].agreement_cases == 2
    assert by_ref[BASE].agreement == 0.0
    assert by_ref[TEACHER].agreement is None
    assert compare_runs(await compared(deps, [STUDENT, BASE]), TEACHER).notes == [
        f"teacher {TEACHER} has no run here"
    ]


async def test_only_the_suites_asked_and_unknown_ones_are_refused(deps: Deps) -> None:
    runs = await compared(deps, [STUDENT, TEACHER], only=["heldout"])
    assert {c.suite for _, cases in runs for c in cases} == {"heldout"}
    with pytest.raises(VersionNotFoundError, match="no suite nope"):
        await start_comparison(deps, await resolve(deps, [BASE]), compare_id="c2", only=["nope"])
    with pytest.raises(VersionNotFoundError, match="no version 9"):
        await resolve(deps, ["cairn-qa:9"])


def test_the_cli_waits_reports_and_resumes_by_comparison_id(cli: Deps) -> None:
    args = ["compare", BASE, STUDENT, "--teacher", TEACHER, "--compare-id", "cmp-1"]
    pending = runner.invoke(eval_app, [*args, "--timeout", "0"])
    assert pending.exit_code == 2, pending.output  # nobody answered yet
    assert "--compare-id cmp-1" in pending.output
    asyncio.run(answer_all(cli, three_models))
    done = runner.invoke(eval_app, args)
    assert done.exit_code == 0, done.output
    for ref in (BASE, STUDENT, TEACHER):
        assert ref in done.output
    assert "agreement" in done.output
    assert "(teacher)" in done.output
    assert "nothing promoted" in done.output
    assert "0.857 (2)" in done.output  # the student's agreement on the 2 held-out cases
    as_json = runner.invoke(eval_app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["compare_id"] == "cmp-1"
    assert report["teacher"] == TEACHER
    assert [v["ref"] for v in report["versions"]] == [BASE, STUDENT, TEACHER]
    student = report["versions"][1]
    assert student["scores"]["heldout"]["token_f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert student["agreement_with_teacher"] == pytest.approx(2 * 0.75 / 1.75)
    assert runner.invoke(eval_app, ["compare", "cairn-qa:7"]).exit_code == 1
