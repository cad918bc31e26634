"""Sticky A/B assignment: stable per subject, split by weight, validated arms."""

from __future__ import annotations

from collections import Counter

import pytest

from cairn_prompt_store.domain.experiments import Experiment, Variant, bucket


def experiment(*variants: Variant, name: str = "concise-vs-detailed") -> Experiment:
    return Experiment(name=name, prompt="qa", variants=list(variants))


A = Variant(name="control", label="production", weight=1)
B = Variant(name="concise", version=2, weight=1)


def test_bucket_is_a_stable_point_in_the_unit_interval() -> None:
    # sha256, not Python's salted hash: the same in every process and release
    assert bucket("exp", "user-1") == bucket("exp", "user-1")
    assert bucket("exp", "user-1") == pytest.approx(0.859407, abs=1e-6)
    assert bucket("exp", "user-1") != bucket("other-exp", "user-1")
    assert all(0 <= bucket("e", f"u{i}") < 1 for i in range(1000))


def test_a_subject_keeps_its_variant() -> None:
    e = experiment(A, B)
    first = {f"user-{i}": e.assign(f"user-{i}").name for i in range(200)}
    again = {f"user-{i}": e.assign(f"user-{i}").name for i in range(200)}
    assert first == again
    assert set(first.values()) == {"control", "concise"}


def test_a_redefined_experiment_with_the_same_split_keeps_assignments() -> None:
    before = experiment(A, B)
    after = experiment(A.model_copy(), B.model_copy())
    assert [before.assign(f"u{i}").name for i in range(100)] == [
        after.assign(f"u{i}").name for i in range(100)
    ]


def test_traffic_follows_the_weights() -> None:
    e = experiment(
        Variant(name="a", version=1, weight=70),
        Variant(name="b", version=2, weight=20),
        Variant(name="c", version=3, weight=10),
    )
    counts = Counter(e.assign(f"subject-{i}").name for i in range(20_000))
    assert counts["a"] / 20_000 == pytest.approx(0.70, abs=0.015)
    assert counts["b"] / 20_000 == pytest.approx(0.20, abs=0.015)
    assert counts["c"] / 20_000 == pytest.approx(0.10, abs=0.015)


def test_a_zero_weight_arm_gets_nothing() -> None:
    e = experiment(A, Variant(name="paused", version=3, weight=0))
    assert {e.assign(f"u{i}").name for i in range(2000)} == {"control"}


def test_the_experiment_name_reshuffles_subjects() -> None:
    one = experiment(A, B, name="exp-1")
    two = experiment(A, B, name="exp-2")
    assert [one.assign(f"u{i}").name for i in range(100)] != [two.assign(f"u{i}").name for i in range(100)]


def test_invalid_experiments_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly one of `version` and `label`"):
        Variant(name="x", version=1, label="production")
    with pytest.raises(ValueError, match="exactly one of `version` and `label`"):
        Variant(name="x")
    with pytest.raises(ValueError, match="variant names must be unique"):
        experiment(A, A)
    with pytest.raises(ValueError, match="at least one variant needs a positive weight"):
        experiment(Variant(name="a", version=1, weight=0))
    with pytest.raises(ValueError, match="at least 1 item"):
        experiment()
