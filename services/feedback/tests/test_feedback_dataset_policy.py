"""Dataset policies: versions built from new feedback without an operator, once a burst is over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cairn_bus import Dispatcher, InMemoryPublisher, Outcome, RawRecord
from cairn_bus.objects import InMemoryObjectStore
from cairn_bus.policy_files import PolicyFileError
from cairn_events import DatasetPublishedV1, Event
from cairn_feedback.adapters.memory import InMemoryRepository
from cairn_feedback.app import router
from cairn_feedback.auto_datasets import DatasetAutoBuilder, load_dataset_policies
from cairn_feedback.bootstrap import Deps, build
from cairn_feedback.datasets import build_dataset
from cairn_feedback.domain.dataset_policy import DatasetPolicy, new_row_count
from cairn_feedback.domain.errors import EmptySelectionError
from cairn_feedback.domain.records import RowProvenance
from cairn_feedback.domain.rules import parse_rules
from cairn_feedback.settings import Settings
from cairn_testing.suites import load_suite

F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))
REPO = Path(__file__).resolve().parents[3]


def row(feedback_id: str | None, request_id: str = "r") -> RowProvenance:
    return RowProvenance("row", request_id, feedback_id, "qa", 1, "corrected", "train")


def test_a_policy_validates_its_rules_and_its_name() -> None:
    policy = DatasetPolicy(name="python-qa")
    assert (policy.rules, policy.min_rows, policy.min_new_rows, policy.quiet_s) == (["corrected"], 1, 1, 10.0)
    with pytest.raises(ValueError, match="nonsense"):
        DatasetPolicy(name="python-qa", rules=["nonsense"])
    with pytest.raises(ValueError, match="name"):
        DatasetPolicy(name="no spaces")
    with pytest.raises(ValueError, match="extra"):
        DatasetPolicy.model_validate({"name": "d", "min_row": 3})


def test_new_rows_are_those_of_feedback_or_teacher_requests_the_previous_version_lacks() -> None:
    previous = [row("fb-1"), row("fb-2"), row(None, "req-9")]
    now = [row("fb-1"), row("fb-2"), row("fb-3"), row(None, "req-9"), row(None, "req-10")]
    assert new_row_count(now, previous) == 2
    assert new_row_count(now, []) == 5


def test_policy_files_are_read_by_dataset_name_and_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "support-qa.yaml").write_text("min_rows: 5\nquiet_s: 2\n", encoding="utf-8")
    (tmp_path / "python-qa.yaml").write_text("rules: [corrected, min_rating:4]\n", encoding="utf-8")
    assert [(p.name, p.min_rows) for p in load_dataset_policies(tmp_path)] == [
        ("python-qa", 1),
        ("support-qa", 5),
    ]
    (tmp_path / "bad.yaml").write_text("min_rows: 0\n", encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"bad.yaml.*min_rows"):
        load_dataset_policies(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_dataset_policies(tmp_path / "missing")


def test_the_shipped_policies_are_valid() -> None:
    shipped = load_dataset_policies(REPO / "infra" / "datasets")
    assert [p.name for p in shipped] == ["python-qa"]
    e2e = load_dataset_policies(REPO / "tests" / "e2e" / "loop-policies" / "datasets")
    assert [p.name for p in e2e] == ["e2e-python-qa"]


async def seed(repository: InMemoryRepository, ids: range) -> None:
    for i in ids:
        rid = f"req-{i}"
        await repository.save_request(F.request(rid), f"e{i}a")
        await repository.save_screening(F.screening(rid, f"question {i}?"), f"e{i}b")
        await repository.save_response(F.response(rid, f"answer {i}"), f"e{i}c")
        await repository.save_feedback(F.feedback(f"fb-{i}", rid, corrected_answer=f"fixed {i}"), f"e{i}d")


async def test_a_build_with_min_new_rows_refuses_a_version_with_nothing_new() -> None:
    repository, objects = InMemoryRepository(), InMemoryObjectStore()
    publisher = InMemoryPublisher("/cairn/feedback", allowed_types=router.published_types)
    options: Any = {
        "dataset_id": "d",
        "rules": parse_rules(["corrected"]),
        "bucket": "cairn",
        "code_version": "t",
    }
    await seed(repository, range(3))
    first = await build_dataset(repository, objects, publisher, min_new_rows=2, **options)
    assert first.version.version == 1
    with pytest.raises(EmptySelectionError, match="0 rows for d that v1 does not have"):
        await build_dataset(repository, objects, publisher, min_new_rows=1, **options)
    await seed(repository, range(3, 4))
    with pytest.raises(EmptySelectionError, match="fewer than the 2 asked for"):
        await build_dataset(repository, objects, publisher, min_new_rows=2, **options)
    await seed(repository, range(4, 5))
    second = await build_dataset(repository, objects, publisher, min_new_rows=2, **options)
    assert (second.version.version, second.version.manifest.row_count) == (2, 5)
    assert [v.version for v in await repository.versions("d")] == [1, 2]


async def test_a_burst_of_feedback_makes_one_build_after_the_quiet_period() -> None:
    built: list[str] = []

    async def build_one(policy: DatasetPolicy) -> bool:
        built.append(policy.name)
        return True

    builder = DatasetAutoBuilder([DatasetPolicy(name="d", quiet_s=0.2)], build_one)
    task = asyncio.create_task(builder.run())
    try:
        await asyncio.sleep(0.3)  # the check at start
        assert built == ["d"]
        for _ in range(5):
            builder.feedback_arrived()
            await asyncio.sleep(0.05)
        assert built == ["d"]  # still within the quiet period of the last one
        assert builder.due_in("d") is not None
        await asyncio.sleep(0.4)
        assert built == ["d", "d"]
        assert builder.due_in("d") is None
        assert builder.built == 2
    finally:
        task.cancel()


async def test_too_few_rows_waits_and_a_failed_build_is_retried() -> None:
    calls: list[str] = []

    async def build_one(policy: DatasetPolicy) -> bool:
        calls.append(policy.name)
        if policy.name == "few":
            raise EmptySelectionError("select 1 rows")
        raise OSError("S3 unreachable")

    builder = DatasetAutoBuilder([DatasetPolicy(name="few"), DatasetPolicy(name="down")], build_one)
    assert await builder.build_now(builder.policies["few"]) is False
    assert builder.due_in("few") is None  # waits for more feedback
    assert await builder.build_now(builder.policies["down"]) is False
    assert builder.due_in("down") is not None  # tried again later
    assert calls == ["few", "down"]


class Upstream:
    """Delivers events to the feedback service's dispatcher as the bus would."""

    def __init__(self, deps: Deps) -> None:
        self.dispatcher = Dispatcher(
            router, deps, deps.publisher, group_id="cairn-feedback", max_attempts=1, retry_backoff_s=0
        )
        self.publisher = InMemoryPublisher("/cairn/test")
        self.offset = 0

    async def deliver(self, event: Event) -> Outcome:
        message = self.publisher.build(event)
        self.offset += 1
        record = RawRecord(
            message.topic, 0, self.offset, message.value, message.key, list(message.headers), 0
        )
        return await self.dispatcher.dispatch(record)


@pytest.fixture
async def policy_service(tmp_path: Path) -> AsyncIterator[Deps]:
    (tmp_path / "support-qa.yaml").write_text("min_rows: 3\nheldout: 0.34\nquiet_s: 0.2\n", encoding="utf-8")
    publisher = InMemoryPublisher("/cairn/feedback", allowed_types=router.published_types)
    settings = Settings(dataset_policy_dir=str(tmp_path))
    async with build(
        settings, publisher, repository=InMemoryRepository(), objects=InMemoryObjectStore()
    ) as deps:
        yield deps


async def test_the_service_builds_and_announces_a_version_once_corrections_stop(policy_service: Deps) -> None:
    upstream = Upstream(policy_service)
    published: Any = policy_service.publisher
    for i in range(3):
        rid = f"req-{i}"
        for event in (F.request(rid), F.screening(rid, f"question {i}?"), F.response(rid, f"answer {i}")):
            assert await upstream.deliver(event) == Outcome.HANDLED
    assert await upstream.deliver(F.feedback("fb-0", "req-0", corrected_answer="fixed 0")) == Outcome.HANDLED
    await asyncio.sleep(0.4)  # quiet: one correction is below min_rows, so no version
    assert published.events(DatasetPublishedV1.event_type) == []
    for i in (1, 2):
        await upstream.deliver(F.feedback(f"fb-{i}", f"req-{i}", corrected_answer=f"fixed {i}"))
    for _ in range(50):
        announced = published.events(DatasetPublishedV1.event_type)
        if announced:
            break
        await asyncio.sleep(0.1)
    assert [(e.dataset_id, e.version, e.train_rows + e.heldout_rows) for e in announced] == [
        ("support-qa", 1, 3)
    ]
    assert announced[0].heldout_rows >= 1
    await upstream.deliver(
        F.feedback("fb-0", "req-0", corrected_answer="fixed 0")
    )  # a duplicate: nothing new
    await asyncio.sleep(0.4)
    assert len(published.events(DatasetPublishedV1.event_type)) == 1
    assert policy_service.auto_datasets is not None
    assert policy_service.auto_datasets.built == 1
