"""The registry view and model references: every reference form, stages, canary routing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cairn_events import ModelPromotedV1, ModelRegisteredV1
from cairn_events.common import ModelStage
from cairn_inference.domain.references import ResolvedModel, UnknownModelError, canary_bucket, resolve
from cairn_inference.domain.registry import RegistryView

BASE = "SmolLM2-135M-Instruct"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def registered(version: int, *, name: str = "cairn-qa", adapter: bool = True) -> ModelRegisteredV1:
    return ModelRegisteredV1(
        model_name=name,
        version=version,
        base_model=BASE,
        adapter_uri=f"s3://cairn/adapters/job-{version}/" if adapter else None,
        config={},
        metrics={},
        code_version="test",
        registered_at=NOW,
    )


def promoted(version: int, stage: str, *, name: str = "cairn-qa", adapter: bool = True) -> ModelPromotedV1:
    return ModelPromotedV1(
        model_name=name,
        version=version,
        to_stage=ModelStage(stage),
        adapter_uri=f"s3://cairn/adapters/job-{version}/" if adapter else None,
        promoted_by="test",
        reason="test",
        promoted_at=NOW,
    )


def view_of(*events: ModelRegisteredV1 | ModelPromotedV1) -> RegistryView:
    view = RegistryView()
    for index, event in enumerate(events):
        if isinstance(event, ModelRegisteredV1):
            view.apply_registered(event, f"e{index}")
        else:
            view.apply_promoted(event, f"e{index}")
    return view


@pytest.fixture
def view() -> RegistryView:
    """Base v1 in production... then v2 promoted to production, v3 to staging, v4 only registered."""
    return view_of(
        registered(1, adapter=False),
        promoted(1, "production", adapter=False),
        registered(2),
        registered(3),
        registered(4),
        promoted(2, "production"),
        promoted(3, "staging"),
    )


def ref(reference: str | None, view: RegistryView, **kwargs: object) -> ResolvedModel:
    return resolve(reference, view, served_model="cairn-qa", base_model=BASE, **kwargs)  # type: ignore[arg-type]


def test_no_reference_is_the_production_version_of_the_served_model(view: RegistryView) -> None:
    served = ref(None, view)
    assert served == ResolvedModel("cairn-qa", 2, "cairn-qa:2", "s3://cairn/adapters/job-2/")
    assert served.model_version == "2"


def test_no_reference_is_the_base_model_while_nothing_is_in_production() -> None:
    for view in (RegistryView(), view_of(registered(1), promoted(1, "staging"))):
        served = ref(None, view)
        assert served == ResolvedModel(BASE, None, None, None)
        assert served.model_version is None


def test_every_reference_form(view: RegistryView) -> None:
    assert ref("cairn-qa", view).version == 2
    assert ref("cairn-qa@production", view).version == 2
    assert ref("cairn-qa@staging", view).adapter == "cairn-qa:3"
    assert ref("cairn-qa@dev", view).version == 4
    assert ref("cairn-qa:4", view) == ResolvedModel("cairn-qa", 4, "cairn-qa:4", "s3://cairn/adapters/job-4/")
    assert ref(BASE, view) == ResolvedModel(BASE, None, None, None)


def test_a_version_without_adapter_has_no_adapter_name(view: RegistryView) -> None:
    assert ref("cairn-qa:1", view) == ResolvedModel("cairn-qa", 1, None, None)
    assert ref("cairn-qa@archived", view).version == 1  # displaced by v2


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        ("gpt-5", ["'gpt-5' is not served here", f"{BASE} (base)", "cairn-qa"]),
        ("cairn-qa:9", ["'cairn-qa:9' has no version 9", "2 (production)", "3 (staging)"]),
        ("cairn-qa:0", ["'cairn-qa:0' is not served here"]),
        ("cairn-qa:x", ["'cairn-qa:x'"]),
        ("cairn-qa@canary", ["'cairn-qa@canary' is not served here"]),
        ("other@staging", ["'other@staging' is not served here"]),
    ],
)
def test_an_unknown_reference_names_itself_and_what_exists(
    view: RegistryView, reference: str, words: list[str]
) -> None:
    with pytest.raises(UnknownModelError) as raised:
        ref(reference, view)
    for word in words:
        assert word in str(raised.value)


def test_a_stage_nobody_holds_is_an_error() -> None:
    view = view_of(registered(1), promoted(1, "production"))
    with pytest.raises(UnknownModelError, match="has no staging version"):
        ref("cairn-qa@staging", view)


def test_the_bare_served_name_without_production_is_an_error_not_the_base() -> None:
    with pytest.raises(UnknownModelError, match="'cairn-qa' has no production version"):
        ref("cairn-qa", view_of(registered(1)))


def test_one_production_version_per_model(view: RegistryView) -> None:
    change = view.apply_promoted(promoted(3, "production"), "p3")
    assert change is not None
    assert [v.version for v in change.archived] == [2]
    assert view.stage_of("cairn-qa", 2) is ModelStage.ARCHIVED
    assert view.stage_of("cairn-qa", 3) is ModelStage.PRODUCTION
    assert view.in_stage("cairn-qa", ModelStage.STAGING) is None  # v3 left staging
    assert ref(None, view).version == 3


def test_rollback_is_a_promotion_of_the_previous_version(view: RegistryView) -> None:
    view.apply_promoted(promoted(3, "production"), "p3")
    view.apply_promoted(promoted(2, "production"), "p2-again")
    assert ref(None, view).adapter == "cairn-qa:2"
    assert view.stage_of("cairn-qa", 3) is ModelStage.ARCHIVED


def test_archiving_removes_the_stage(view: RegistryView) -> None:
    view.apply_promoted(promoted(3, "archived"), "a3")
    assert view.in_stage("cairn-qa", ModelStage.STAGING) is None
    assert ref("cairn-qa:3", view).adapter == "cairn-qa:3"  # still servable by explicit version


def test_events_apply_once_by_id(view: RegistryView) -> None:
    assert view.apply_promoted(promoted(3, "production"), "p3") is not None
    view.apply_promoted(promoted(2, "production"), "p2-again")
    assert view.apply_promoted(promoted(3, "production"), "p3") is None  # a replay of an old event
    assert ref(None, view).version == 2
    assert view.apply_registered(registered(5), "r5") is not None
    assert view.apply_registered(registered(5), "r5") is None


def test_replaying_the_same_history_builds_the_same_view(view: RegistryView) -> None:
    history = [
        registered(1, adapter=False),
        promoted(1, "production", adapter=False),
        registered(2),
        registered(3),
        registered(4),
        promoted(2, "production"),
        promoted(3, "staging"),
    ]
    again = view_of(*history)
    for index, event in enumerate(history):  # the group subscription delivers them once more
        if isinstance(event, ModelRegisteredV1):
            again.apply_registered(event, f"e{index}")
        else:
            again.apply_promoted(event, f"e{index}")
    for reference in (None, "cairn-qa@staging", "cairn-qa@dev", "cairn-qa:1"):
        assert ref(reference, again) == ref(reference, view)


def test_a_promotion_without_a_seen_registration_records_the_version() -> None:
    view = view_of(promoted(7, "production", name="support"))
    assert ref("support", view) == ResolvedModel("support", 7, "support:7", "s3://cairn/adapters/job-7/")


def test_canary_buckets_are_stable_and_in_range() -> None:
    assert canary_bucket("req-1") == canary_bucket("req-1")
    assert canary_bucket("req-1") != canary_bucket("req-2")
    assert all(0 <= canary_bucket(f"req-{i}") < 1 for i in range(100))


def test_the_canary_share_sends_that_share_of_implicit_requests_to_staging(view: RegistryView) -> None:
    ids = [f"req-{i}" for i in range(4000)]
    routed = [ref(None, view, request_id=i, canary_share=0.25) for i in ids]
    to_staging = [r for r in routed if r.version == 3]
    assert all(r.canary for r in to_staging)
    assert 0.22 < len(to_staging) / len(ids) < 0.28
    assert {r.version for r in routed} == {2, 3}
    again = [ref(None, view, request_id=i, canary_share=0.25).version for i in ids]
    assert again == [r.version for r in routed]  # sticky per request id
    bare = [ref("cairn-qa", view, request_id=i, canary_share=0.25).version for i in ids]
    assert bare == again  # the bare name is as implicit as no name


def test_the_canary_leaves_explicit_references_and_missing_staging_alone(view: RegistryView) -> None:
    for i in range(200):
        assert ref("cairn-qa@production", view, request_id=f"r{i}", canary_share=1.0).version == 2
        assert ref("cairn-qa:2", view, request_id=f"r{i}", canary_share=1.0).version == 2
    assert ref(None, view, request_id="r", canary_share=1.0).version == 3
    assert ref(None, view, request_id="r", canary_share=0.0).version == 2
    no_staging = view_of(registered(2), promoted(2, "production"))
    assert ref(None, no_staging, request_id="r", canary_share=1.0).version == 2
