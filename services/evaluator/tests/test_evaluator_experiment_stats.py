"""The experiment statistics (pure): intervals that cover, a sequential test that keeps false
positives under alpha on A/A simulations (checked after every observation) and finds real
differences, guards, and per-arm statistics from live records. Fixed seeds throughout."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from cairn_evaluator.online.experiments import (
    ArmStatistics,
    TestParameters,
    arm_statistics,
    decide,
    mean_interval,
    msprt_evidence,
    wilson_interval,
)
from cairn_evaluator.online.records import FeedbackRecord, PromptAttribution, ResponseRecord
from cairn_events import ResponseStatus

from .conftest import T0


def first_rejection(rng: random.Random, p_a: float, p_b: float, n: int, params: TestParameters) -> int | None:
    """Observe both arms one pair at a time, test after every pair; the pair count at the first
    significant result, or None."""
    s_a = s_b = 0
    for i in range(1, n + 1):
        s_a += rng.random() < p_a
        s_b += rng.random() < p_b
        if (
            i >= params.min_samples
            and msprt_evidence(s_a, i, s_b, i, params.mixing_variance) >= 1 / params.alpha
        ):
            return i
    return None


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_peeking_after_every_observation_keeps_a_a_false_positives_under_alpha(rate: float) -> None:
    params = TestParameters(alpha=0.05, min_samples=30)
    rng = random.Random(20251208)
    runs = 300
    false_positives = sum(first_rejection(rng, rate, rate, 1000, params) is not None for _ in range(runs))
    assert false_positives / runs <= params.alpha


def test_a_real_difference_is_found_and_sooner_when_larger() -> None:
    params = TestParameters(alpha=0.05, min_samples=30)
    rng = random.Random(7)
    moderate = [first_rejection(rng, 0.6, 0.4, 2000, params) for _ in range(100)]
    large = [first_rejection(rng, 0.8, 0.4, 2000, params) for _ in range(100)]
    assert all(n is not None for n in moderate + large)
    assert sorted(large)[50] < sorted(moderate)[50]  # type: ignore[type-var]


def test_wilson_intervals_cover_the_true_rate_about_95_percent_of_the_time() -> None:
    rng = random.Random(11)
    for rate, n in [(0.3, 50), (0.05, 80), (0.9, 30)]:
        covered = 0
        for _ in range(1000):
            successes = sum(rng.random() < rate for _ in range(n))
            ci = wilson_interval(successes, n)
            assert ci.low is not None
            assert ci.high is not None
            covered += ci.low <= rate <= ci.high
        assert 0.92 <= covered / 1000 <= 0.99, (rate, n, covered)


def test_mean_intervals_cover_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = random.Random(12)
    covered = 0
    for _ in range(1000):
        ci = mean_interval([rng.gauss(0.7, 0.15) for _ in range(60)])
        assert ci.low is not None
        assert ci.high is not None
        covered += ci.low <= 0.7 <= ci.high
    assert 0.92 <= covered / 1000 <= 0.98


def test_interval_edges() -> None:
    assert wilson_interval(0, 0).value is None
    none = wilson_interval(0, 10)
    assert (none.value, none.low) == (0.0, 0.0)
    assert none.high == pytest.approx(0.2775, abs=1e-4)
    half = wilson_interval(5, 10)
    assert (half.low, half.high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert half.show() == "0.500 [0.237, 0.763]"
    assert mean_interval([4.0]).show() == "4.000"
    assert mean_interval([]).show() == "-"
    assert msprt_evidence(10, 10, 10, 10, 0.1) == 0.0  # no variance, no evidence
    assert msprt_evidence(0, 0, 3, 10, 0.1) == 0.0


def arm(
    variant: str, positives: int, n: int, *, refusals: float = 0.0, grounded: float | None = None
) -> ArmStatistics:
    empty = mean_interval([])
    return ArmStatistics(
        variant=variant,
        prompt_version=1,
        requests=n,
        positives=positives,
        positive_rate=wilson_interval(positives, n),
        mean_rating=empty,
        refusal_rate=wilson_interval(round(refusals * n), n),
        groundedness=mean_interval([grounded] * 3) if grounded is not None else empty,
    )


def test_a_winner_needs_the_minimum_sample_in_every_arm_then_significance() -> None:
    params = TestParameters(min_samples=30)
    early = decide("exp", [arm("a", 30, 30), arm("b", 0, 29)], params)
    assert (early.decision, early.winner, early.leader) == ("continue", None, "a")
    assert "fewer than 30 observations: b" in early.reason
    close = decide("exp", [arm("a", 17, 30), arm("b", 15, 30)], params)
    assert close.decision == "continue"
    assert "not yet significantly better than b" in close.reason
    clear = decide("exp", [arm("a", 25, 30), arm("b", 8, 30)], params)
    assert (clear.decision, clear.winner, clear.threshold) == ("winner", "a", 20.0)
    [comparison] = clear.comparisons
    assert comparison.significant
    assert comparison.evidence == clear.evidence >= 20.0
    assert comparison.difference == pytest.approx(17 / 30, abs=1e-4)


def test_with_three_arms_the_leader_must_beat_each_at_a_bonferroni_threshold() -> None:
    params = TestParameters(min_samples=30)
    verdict = decide("exp", [arm("a", 32, 40), arm("b", 8, 40), arm("c", 31, 40)], params)
    assert verdict.threshold == 40.0
    assert verdict.leader == "a"
    assert verdict.decision == "continue"
    assert "than c" in verdict.reason
    assert [c.significant for c in verdict.comparisons] == [False, True]  # c is second, then b


def test_a_leader_whose_guards_fail_is_not_a_winner() -> None:
    params = TestParameters(min_samples=30, refusal_margin=0.05, groundedness_margin=0.05)
    refuses = decide("exp", [arm("a", 25, 30, refusals=0.3), arm("b", 8, 30)], params)
    assert refuses.decision == "guard_failed"
    assert "refusal rate" in refuses.reason
    ungrounded = decide("exp", [arm("a", 25, 30, grounded=0.5), arm("b", 8, 30, grounded=0.8)], params)
    assert ungrounded.decision == "guard_failed"
    assert "groundedness" in ungrounded.reason
    within = decide("exp", [arm("a", 25, 30, grounded=0.77), arm("b", 8, 30, grounded=0.8)], params)
    assert within.decision == "winner"
    assert decide("exp", [arm("a", 25, 30)], params).decision == "continue"  # one arm: nothing to compare


def test_arm_statistics_count_the_latest_feedback_per_request_and_the_arms_responses() -> None:
    def attribution(n: int, variant: str, version: int) -> PromptAttribution:
        return PromptAttribution(
            event_id=f"r{n}",
            request_id=f"q{n}",
            tenant="default",
            prompt_name="qa",
            prompt_version=version,
            experiment="exp",
            variant=variant,
            rendered_at=T0 + timedelta(minutes=n),
        )

    def said(n: int, minutes: int, *, thumbs: str | None = None, rating: int | None = None) -> FeedbackRecord:
        return FeedbackRecord.model_validate(
            {
                "event_id": f"f{n}-{minutes}",
                "feedback_id": f"f{n}-{minutes}",
                "request_id": f"q{n}",
                "tenant": "default",
                "thumbs": thumbs,
                "rating": rating,
                "submitted_at": T0 + timedelta(minutes=minutes),
            }
        )

    def answered(n: int, *, refused: bool = False, grounded: float | None = None) -> ResponseRecord:
        return ResponseRecord(
            event_id=f"a{n}",
            request_id=f"q{n}",
            tenant="default",
            status=ResponseStatus.BLOCKED if refused else ResponseStatus.COMPLETED,
            refused=refused,
            groundedness=grounded,
            completed_at=T0 + timedelta(minutes=n),
        )

    attributions = [
        attribution(1, "a", 1),
        attribution(2, "a", 1),
        attribution(3, "b", 2),
        attribution(4, "b", 2),
    ]
    feedback = [
        said(1, 10, thumbs="down"),
        said(1, 20, thumbs="up"),  # the latest counts
        said(2, 10, rating=4),  # at the threshold: positive
        said(3, 10, rating=3),
        said(4, 10),  # neither thumbs nor rating: not an observation
        said(9, 10, thumbs="up"),  # not in the experiment
    ]
    responses = [answered(1, grounded=0.8), answered(2, grounded=0.6), answered(3, refused=True), answered(9)]
    a, b = arm_statistics(attributions, responses, feedback, positive_rating=4)
    assert (a.variant, a.prompt_version, a.requests, a.observations, a.positives) == ("a", 1, 2, 2, 2)
    assert (b.variant, b.prompt_version, b.requests, b.observations, b.positives) == ("b", 2, 2, 1, 0)
    assert a.positive_rate.value == 1.0
    assert a.mean_rating.value == 4.0
    assert (a.refusal_rate.value, b.refusal_rate.value) == (0.0, 1.0)
    assert a.groundedness.value == 0.7
    assert a.groundedness.low is not None
    assert b.groundedness.value is None
