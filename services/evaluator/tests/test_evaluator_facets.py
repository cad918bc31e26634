"""Facets: cases attributed to tenant, prompt, topic and length slices, the gated metric per slice,
and the gate's `max_facet_regression` (with `min_facet_cases`) against the baseline."""

from __future__ import annotations

from cairn_evaluator.completion import verdict_of
from cairn_evaluator.domain.facets import (
    LONG_MIN_CHARS,
    SHORT_MAX_CHARS,
    case_facets,
    judge_facet,
    length_bucket,
)
from cairn_evaluator.domain.runs import Answer, RunCase, Side
from cairn_evaluator.domain.scoring import score_run
from cairn_evaluator.domain.suites import EvalCase, Gate, Suite, heldout_suite
from cairn_evaluator.evaluation import plan_cases
from cairn_evaluator.handlers import on_model_registered, on_response_completed
from cairn_evaluator.reports.html import render_html
from cairn_evaluator.settings import Settings
from cairn_events import (
    ChatMessage,
    EvaluationCompletedV1,
    ModelPromotedV1,
    ResponseCompletedV1,
    ResponseStatus,
)
from cairn_events.artifacts import DatasetRow, SourceRequest

from .conftest import T0, make_deps, meta, put_heldout, registered, requests_of
from .test_evaluator_adversarial_slices import run_case, run_of
from .test_evaluator_handlers import published, with_production

GATE = Gate(metric="pass_rate", max_facet_regression=0.1, min_facet_cases=3)


def answer(ok: bool, prompt: str | None = "qa:2") -> Answer:
    return Answer(status=ResponseStatus.COMPLETED, text="yes" if ok else "no", answered_at=T0, prompt=prompt)


def topic_suite(topics: dict[str, int], gate: Gate = GATE) -> Suite:
    """`n` cases per topic (`<topic>-<i>`), each passing when the answer says `yes`."""
    cases = [
        EvalCase(
            id=f"{t}-{i}", variables={"question": f"q {i}", "topic": t}, expect_all=["yes"], tenant="acme"
        )
        for t, n in topics.items()
        for i in range(n)
    ]
    return Suite(name="scenarios", kind="scenario", gate=gate, cases=cases)


def cases_of(suite: Suite, passing: dict[Side, set[str]]) -> list[RunCase]:
    """Each case answered by each side in `passing`: `yes` when its id is in the side's set."""
    return [
        run_case(suite, index, side, answer(case.id in ok))
        for index, case in enumerate(suite.cases)
        for side, ok in passing.items()
    ]


def ids(topic: str, n: int) -> set[str]:
    return {f"{topic}-{i}" for i in range(n)}


def test_a_case_is_attributed_to_one_slice_per_facet() -> None:
    case = EvalCase(id="a", prompt="qa", variables={"question": "What is yield?", "topic": "generators"})
    assert case_facets(case, answer(True, "qa:3")) == {
        "tenant": "none",
        "prompt": "qa:3",
        "topic": "generators",
        "length": "short",
    }
    own = case.model_copy(update={"topic": "python", "tenant": "acme"})
    assert case_facets(own, None, answer(True, "qa:1"))["topic"] == "python"
    assert case_facets(own, None, answer(True, "qa:1"))["prompt"] == "qa:1"  # the baseline's, as answered
    assert case_facets(own, None)["prompt"] == "qa"  # nothing answered: the reference asked
    assert case_facets(own, None)["tenant"] == "acme"
    untagged = EvalCase(
        id="b", variables={"question": "x"}, messages=[ChatMessage(role="user", content="y" * 300)]
    )
    assert case_facets(untagged, None)["topic"] == "none"
    assert case_facets(untagged, None)["length"] == "medium"  # the chat turns count


def test_length_buckets_have_documented_bounds() -> None:
    assert [length_bucket(n) for n in (0, SHORT_MAX_CHARS - 1, SHORT_MAX_CHARS)] == [
        "short",
        "short",
        "medium",
    ]
    assert [length_bucket(n) for n in (LONG_MIN_CHARS - 1, LONG_MIN_CHARS)] == ["medium", "long"]


def test_planned_cases_name_the_tenant_asked_as_unless_they_name_their_own() -> None:
    suite = Suite(
        name="s",
        kind="scenario",
        gate=Gate(metric="pass_rate"),
        cases=[EvalCase(id="a"), EvalCase(id="b", tenant="acme")],
    )
    planned = plan_cases("r1", [suite], False, tenant="default")
    assert [c.case.tenant for c in planned] == ["default", "acme"]


def test_held_out_cases_keep_their_rows_tenant_and_the_suite_its_facet_rule() -> None:
    row = DatasetRow(
        row_id="row01",
        request_id="req-1",
        feedback_id=None,
        tenant="beta",
        prompt_name="qa",
        prompt_version=2,
        request=SourceRequest(prompt="qa", variables={"question": "q"}),
        messages=[],
        completion="a",
        source="teacher",
    )
    suite = heldout_suite(
        [row], max_tokens=8, min_f1=0.0, min_improvement=0.0, max_facet_regression=0.2, min_facet_cases=4
    )
    assert suite.cases[0].tenant == "beta"
    assert (suite.gate.max_facet_regression, suite.gate.min_facet_cases) == (0.2, 4)
    assert Gate(metric="token_f1").max_facet_regression is None  # off by default


def test_a_slice_regression_fails_the_gate_though_the_overall_score_improves() -> None:
    suite = topic_suite({"generators": 4, "lambda": 4})
    # the candidate passes every generators case but one lambda case; the baseline the other way round
    passing: dict[Side, set[str]] = {"c": ids("generators", 4) | {"lambda-0"}, "b": ids("lambda", 4)}
    scores = score_run(run_of(suite), cases_of(suite, passing))
    overall = next(s for s in scores.scores if s.metric == "pass_rate")
    assert (overall.candidate, overall.baseline, overall.passed) == (5 / 8, 4 / 8, True)
    lam = next(f for f in scores.facets if (f.facet, f.value) == ("topic", "lambda"))
    assert (lam.candidate, lam.baseline, lam.cases, lam.baseline_cases, lam.passed) == (
        0.25,
        1.0,
        4,
        4,
        False,
    )
    gen = next(f for f in scores.facets if (f.facet, f.value) == ("topic", "generators"))
    assert gen.passed is True
    assert not scores.passed
    failed = [s for s in scores.scores if not s.passed]
    assert [(s.suite, s.metric) for s in failed] == [("scenarios", "pass_rate{topic=lambda}")]
    verdict = verdict_of(run_of(suite), scores)
    assert verdict.startswith("FAIL: cairn-qa:2 misses scenarios/pass_rate{topic=lambda}")
    assert "candidate 0.250 vs baseline 1.000 on 4/4 cases" in verdict
    html = render_html(run_of(suite), scores, verdict)
    assert "<h2>Facets</h2>" in html
    assert "topic=lambda" in html


def test_every_facet_is_scored() -> None:
    suite = topic_suite({"generators": 4})
    scores = score_run(run_of(suite), cases_of(suite, {"c": ids("generators", 4), "b": set()}))
    assert {(f.facet, f.value) for f in scores.facets} == {
        ("tenant", "acme"),
        ("prompt", "qa:2"),
        ("topic", "generators"),
        ("length", "short"),
    }
    assert all(f.cases == 4 and f.passed is True for f in scores.facets)


def test_a_slice_with_too_few_cases_is_reported_not_gated() -> None:
    suite = topic_suite({"generators": 6, "lambda": 2})
    passing: dict[Side, set[str]] = {"c": ids("generators", 6), "b": ids("lambda", 2) | {"generators-0"}}
    scores = score_run(run_of(suite), cases_of(suite, passing))
    lam = next(f for f in scores.facets if (f.facet, f.value) == ("topic", "lambda"))
    assert (lam.candidate, lam.baseline, lam.passed) == (0.0, 1.0, None)
    assert "too few cases" in lam.note
    assert scores.passed


def test_without_a_baseline_the_rule_does_not_apply() -> None:
    suite = topic_suite({"generators": 4, "lambda": 4})
    scores = score_run(run_of(suite, baseline=False), cases_of(suite, {"c": ids("generators", 4)}))
    assert scores.facets
    assert all(f.passed is None and f.baseline is None and f.note == "no baseline" for f in scores.facets)
    assert scores.passed


def test_without_the_rule_slices_are_reported_not_gated() -> None:
    suite = topic_suite({"generators": 4, "lambda": 4}, gate=Gate(metric="pass_rate"))
    passing: dict[Side, set[str]] = {"c": ids("generators", 4), "b": ids("lambda", 4)}
    scores = score_run(run_of(suite), cases_of(suite, passing))
    assert all(f.passed is None for f in scores.facets)
    assert scores.passed
    assert judge_facet(GATE, 0.5, 0.6, 3, 3) == (
        True,
        "candidate 0.500 vs baseline 0.600 on 3/3 cases: drop within 0.1",
    )


def held_out(tenant: str, i: int) -> DatasetRow:
    return DatasetRow(
        row_id=f"{tenant}{i:02d}",
        request_id=f"req-{tenant}-{i}",
        feedback_id=None,
        tenant=tenant,
        prompt_name="qa",
        prompt_version=1,
        request=SourceRequest(prompt="qa", variables={"question": f"{tenant} question {i}"}),
        messages=[],
        completion=f"the answer is {tenant} {i}",
        source="teacher",
    )


async def test_a_candidate_better_overall_but_worse_for_one_tenant_is_not_promoted() -> None:
    settings = Settings(heldout_max_facet_regression=0.1, heldout_min_facet_cases=3, heldout_max_cases=10)
    deps = make_deps(suites=[], settings=settings)
    put_heldout(deps.objects, [held_out(t, i) for t in ("alpha", "beta") for i in range(4)])
    await with_production(deps)
    event = registered(2)
    await on_model_registered(event, meta(event), deps)
    for request in requests_of(deps):
        words = str(request.variables["question"]).split()
        tenant, number = words[0], words[-1]
        candidate = request.model == "cairn-qa:2"
        # the candidate knows alpha and half of beta; the baseline knows beta only
        right = (tenant == "alpha" and candidate) or (
            tenant == "beta" and (not candidate or number in {"0", "1"})
        )
        response = ResponseCompletedV1(
            request_id=request.request_id,
            tenant=request.tenant,
            status=ResponseStatus.COMPLETED,
            text=f"the answer is {tenant} {number}" if right else "no idea",
            prompt_name="qa",
            prompt_version=3,
            completed_at=T0,
        )
        await on_response_completed(response, meta(response), deps)
    [completed] = published(deps, EvaluationCompletedV1)
    f1 = next(s for s in completed.suites if (s.suite, s.metric) == ("heldout", "token_f1"))
    assert f1.passed
    assert f1.baseline is not None
    assert f1.candidate > f1.baseline
    [failed] = [s for s in completed.suites if not s.passed]
    assert (failed.metric, failed.candidate, failed.baseline) == ("token_f1{tenant=beta}", 0.5, 1.0)
    assert published(deps, ModelPromotedV1) == []
    run = await deps.runs.get(completed.run_id)
    assert run is not None
    assert run.verdict is not None
    assert "heldout/token_f1{tenant=beta} (candidate 0.500 vs baseline 1.000 on 4/4 cases" in run.verdict
    report = deps.objects.get(completed.report_uri or "").decode()
    assert "prompt" in report
    assert "qa:3" in report  # the prompt as answered
