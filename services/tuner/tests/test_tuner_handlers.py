"""The handlers through the real router and dispatcher, with an in-memory repository and publisher."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn_bus import Dispatcher, InMemoryPublisher, Outcome
from cairn_bus.policy_files import PolicyFileError, TenantPolicyFiles
from cairn_events import (
    DatasetPublishedV1,
    DeadLetterRecordedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    TuningProgressedV1,
    TuningRequestedV1,
)
from cairn_tuner.adapters.memory import InMemoryJobRepository
from cairn_tuner.app import router
from cairn_tuner.bootstrap import tune_policies
from cairn_tuner.deps import Deps
from cairn_tuner.domain.continual import ProductionVersion
from cairn_tuner.domain.jobs import JobState
from cairn_tuner.domain.naming import POLICY_REQUESTER, policy_job_id
from cairn_tuner.domain.tune_policy import TunePolicy

from .conftest import T0, as_record, make_deps, progress, published, request


def dataset_published(train_rows: int = 40, version: int = 3) -> DatasetPublishedV1:
    return DatasetPublishedV1(
        dataset_id="support-qa",
        version=version,
        uri=f"s3://cairn/datasets/support-qa/v{version}/",
        manifest_uri=f"s3://cairn/datasets/support-qa/v{version}/manifest.json",
        row_count=train_rows + 10,
        train_rows=train_rows,
        heldout_rows=10,
        files_sha256={"train.jsonl": "a" * 64},
        rules=["corrected"],
        source_request_count=train_rows,
        published_at=T0,
    )


async def deliver(
    deps: Deps,
    event: TuningRequestedV1 | DatasetPublishedV1 | TuningProgressedV1 | ModelPromotedV1 | ModelRegisteredV1,
    offset: int = 0,
) -> Outcome:
    """Produce `event` as an upstream would, then dispatch the record like the consumer does."""
    upstream = InMemoryPublisher("/cairn/upstream")
    message = upstream.build(event, event_id=f"evt-{event.event_type}-{offset}")
    dispatcher = Dispatcher(router, deps, deps.publisher, group_id="cairn-tuner", retry_backoff_s=0)
    return await dispatcher.dispatch(as_record(message, offset))


def test_router_contract() -> None:
    assert router.topics == ["cairn.datasets", "cairn.models", "cairn.tuning"]
    assert router.consumed_types == {
        TuningRequestedV1.event_type,
        DatasetPublishedV1.event_type,
        ModelPromotedV1.event_type,
    }
    assert {TuningProgressedV1.event_type, TuningRequestedV1.event_type, ModelRegisteredV1.event_type} <= set(
        router.published_types
    )


async def test_a_request_is_recorded_queued_and_announced() -> None:
    deps = make_deps()
    assert await deliver(deps, request("job-1")) is Outcome.HANDLED
    job = await deps.repo.get("job-1")
    assert job is not None
    assert (job.state, job.attempt, job.base_model, job.config.rank) == (
        JobState.QUEUED,
        0,
        "cairn-tiny-chat",
        4,
    )
    [event] = progress(deps)
    assert (event.job_id, event.state, event.step) == ("job-1", "queued", 0)
    [message] = published(deps).messages
    assert message.meta.causation_id == f"evt-{TuningRequestedV1.event_type}-0"
    assert deps.wakeup.is_set()


async def test_duplicate_delivery_yields_one_job_and_one_event_id() -> None:
    deps = make_deps()
    await deliver(deps, request("job-1"))
    await deliver(deps, request("job-1", requested_by="ben"))
    await deliver(deps, request("job-1"))
    jobs = await deps.repo.list()
    assert [(j.job_id, j.requested_by) for j in jobs] == [("job-1", "ana")]
    assert len({m.meta.id for m in published(deps).messages}) == 1


async def test_a_repeated_request_for_a_started_job_publishes_nothing() -> None:
    repo = InMemoryJobRepository()
    deps = make_deps(repo)
    await deliver(deps, request("job-1"))
    repo.jobs["job-1"] = replace(repo.jobs["job-1"], state=JobState.RUNNING, attempt=1)
    await deliver(deps, request("job-1"), offset=1)
    assert len(published(deps).messages) == 1
    assert repo.jobs["job-1"].state is JobState.RUNNING


async def test_progress_on_the_same_topic_is_skipped_cleanly() -> None:
    deps = make_deps()
    event = TuningProgressedV1(job_id="job-1", state="running", step=3, progressed_at=T0)
    assert await deliver(deps, event) is Outcome.SKIPPED
    assert published(deps).messages == []
    assert published(deps).events(DeadLetterRecordedV1.event_type) == []
    assert await deps.repo.list() == []


async def test_the_dataset_policy_is_off_by_default() -> None:
    deps = make_deps()
    assert deps.settings.tune_min_rows == 0
    await deliver(deps, dataset_published(train_rows=10_000))
    assert published(deps).messages == []


async def test_the_dataset_policy_requests_a_job_for_a_large_enough_dataset() -> None:
    deps = make_deps(tune_min_rows=40, lora_rank=16, learning_rate=1e-3, base_model="SmolLM2-135M-Instruct")
    await deliver(deps, dataset_published(train_rows=39))
    assert published(deps).messages == []
    await deliver(deps, dataset_published(train_rows=40), offset=1)
    await deliver(deps, dataset_published(train_rows=40), offset=1)  # redelivered
    [first, again] = published(deps).messages
    assert first.meta.id == again.meta.id
    event = first.event
    assert isinstance(event, TuningRequestedV1)
    assert event.job_id == policy_job_id("support-qa", 3) == "auto-support-qa-v3"
    assert (event.dataset_id, event.dataset_version, event.requested_by) == (
        "support-qa",
        3,
        POLICY_REQUESTER,
    )
    assert event.base_model == "SmolLM2-135M-Instruct"
    assert (event.config.rank, event.config.learning_rate, event.config.target_modules) == (
        16,
        1e-3,
        ["q_proj", "v_proj"],
    )
    assert await deps.repo.list() == []  # the request is handled when it comes back on cairn.tuning


def test_policy_job_ids_stay_valid_identifiers() -> None:
    long_id = "x" * 128
    job_id = policy_job_id(long_id, 12)
    assert len(job_id) <= 128
    assert job_id.startswith("auto-")
    assert job_id != policy_job_id(long_id, 13)
    request(job_id)  # a valid TuningRequestedV1 job id


def promoted(
    version: int, to_stage: str, seconds: int = 0, adapter_uri: str | None = None
) -> ModelPromotedV1:
    return ModelPromotedV1.model_validate(
        {
            "model_name": "cairn-qa",
            "version": version,
            "to_stage": to_stage,
            "adapter_uri": adapter_uri,
            "promoted_by": "cairn-evaluator",
            "reason": "gate passed",
            "promoted_at": T0 + timedelta(seconds=seconds),
        }
    )


async def test_promotions_on_cairn_models_tell_the_tuner_the_production_adapter() -> None:
    deps = make_deps()
    uri = "s3://cairn/adapters/job-2/"
    assert await deliver(deps, promoted(2, "staging", 0, uri)) is Outcome.HANDLED
    assert await deps.repo.production("cairn-qa") is None
    await deliver(deps, promoted(2, "production", 1, uri), offset=1)
    await deliver(deps, promoted(2, "production", 1, uri), offset=1)  # redelivered
    assert await deps.repo.production("cairn-qa") == ProductionVersion("cairn-qa", 2, uri)
    assert published(deps).messages == []


async def test_its_own_registrations_coming_back_are_skipped() -> None:
    deps = make_deps()
    event = ModelRegisteredV1(
        model_name="cairn-qa",
        version=1,
        base_model="tiny",
        config={},
        metrics={},
        code_version="test",
        registered_at=T0,
    )
    assert await deliver(deps, event) is Outcome.SKIPPED
    assert published(deps).events(DeadLetterRecordedV1.event_type) == []


async def test_the_dataset_policy_may_start_from_production() -> None:
    deps = make_deps(tune_min_rows=10, tune_start_from="production", tune_replay_fraction=0.2)
    await deliver(deps, dataset_published(train_rows=10))
    [message] = published(deps).messages
    assert isinstance(message.event, TuningRequestedV1)
    assert (message.event.config.start_from, message.event.config.replay_fraction) == ("production", 0.2)


def with_policies(tmp_path: Path, **setting_fields: Any) -> Deps:
    """Deps whose tuning policy folder holds `support-qa.yaml` (20 rows, its own base and config)."""
    (tmp_path / "support-qa.yaml").write_text(
        "min_rows: 20\nbase_model: tiny-base\nconfig:\n  rank: 4\n  alpha: 8\n  max_steps: 6\n  seed: 7\n"
        "  target_modules: [q_proj, o_proj]\n  start_from: production\n",
        encoding="utf-8",
    )
    deps = make_deps(tune_policy_dir=str(tmp_path), **setting_fields)
    deps.tune_policies = tune_policies(deps.settings)
    return deps


async def test_a_dataset_policy_file_tunes_its_dataset_with_its_own_config(tmp_path: Path) -> None:
    deps = with_policies(tmp_path)  # the global policy is off: only the file's dataset is tuned
    await deliver(deps, dataset_published(train_rows=19))
    assert published(deps).messages == []
    await deliver(deps, dataset_published(train_rows=20), offset=1)
    [message] = published(deps).messages
    event = message.event
    assert isinstance(event, TuningRequestedV1)
    assert (event.job_id, event.base_model, event.requested_by) == (
        "auto-support-qa-v3",
        "tiny-base",
        POLICY_REQUESTER,
    )
    assert (event.config.rank, event.config.max_steps, event.config.seed, event.config.start_from) == (
        4,
        6,
        7,
        "production",
    )
    assert event.config.target_modules == ["q_proj", "o_proj"]


async def test_a_dataset_without_a_file_falls_under_the_global_policy(tmp_path: Path) -> None:
    deps = with_policies(tmp_path, tune_min_rows=5, base_model="SmolLM2-135M-Instruct")
    other = dataset_published(train_rows=5).model_copy(update={"dataset_id": "other-qa"})
    await deliver(deps, other)
    [message] = published(deps).messages
    assert isinstance(message.event, TuningRequestedV1)
    assert (message.event.dataset_id, message.event.base_model, message.event.config.rank) == (
        "other-qa",
        "SmolLM2-135M-Instruct",
        8,
    )


def test_an_invalid_tuning_policy_is_refused_at_start_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "support-qa.yaml").write_text("min_rows: 0\n", encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"support-qa.yaml: min_rows"):
        tune_policies(make_deps(tune_policy_dir=str(tmp_path)).settings)


def test_the_shipped_tuning_policies_are_valid() -> None:
    repo = Path(__file__).resolve().parents[3]
    for folder, names in (
        (repo / "infra" / "tuning", ["python-qa"]),
        (repo / "tests" / "e2e" / "loop-policies" / "tuning", ["e2e-python-qa"]),
    ):
        files = TenantPolicyFiles(folder, TunePolicy)
        assert [p.name for p in files.validate_all()] == names


def test_a_tuning_policy_with_an_unknown_or_bad_lora_field_is_refused(tmp_path: Path) -> None:
    (tmp_path / "support-qa.yaml").write_text("config:\n  ranks: 4\n", encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"config: unknown LoRA field\(s\) ranks"):
        tune_policies(make_deps(tune_policy_dir=str(tmp_path)).settings)
    (tmp_path / "support-qa.yaml").write_text("config:\n  rank: many\n", encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"support-qa.yaml: rank"):
        tune_policies(make_deps(tune_policy_dir=str(tmp_path)).settings)
