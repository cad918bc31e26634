"""Building dataset versions in memory: files and manifest hashes, versions, refusals, the event."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cairn_bus import InMemoryPublisher, derive_event_id
from cairn_bus.objects import InMemoryObjectStore
from cairn_events import DatasetPublishedV1
from cairn_events.artifacts import DatasetManifest, DatasetRow
from cairn_feedback.adapters.memory import InMemoryRepository
from cairn_feedback.app import router
from cairn_feedback.datasets import Built, build_dataset, find_version, republish
from cairn_feedback.domain.errors import DatasetNotFoundError, EmptySelectionError, InvalidRuleError
from cairn_feedback.domain.rules import Rules
from cairn_testing.suites import load_suite

F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))
NOW = datetime(2025, 3, 5, 8, 0, tzinfo=UTC)
RULES = Rules(corrected=True, min_rating=4)


class World:
    def __init__(self) -> None:
        self.repository = InMemoryRepository()
        self.objects = InMemoryObjectStore()
        self.publisher = InMemoryPublisher("/cairn/feedback", allowed_types=router.published_types)

    async def seed(self, n: int, **feedback: Any) -> None:
        for i in range(n):
            rid = f"req-{i}"
            await self.repository.save_request(F.request(rid), f"e{i}a")
            await self.repository.save_screening(F.screening(rid, f"question {i}?"), f"e{i}b")
            await self.repository.save_response(F.response(rid, f"answer {i}"), f"e{i}c")
            await self.repository.save_feedback(F.feedback(f"fb-{i}", rid, **feedback), f"e{i}d")

    async def build(self, dataset_id: str = "support-qa", rules: Rules = RULES, **options: Any) -> Built:
        return await build_dataset(
            self.repository,
            self.objects,
            self.publisher,
            dataset_id=dataset_id,
            rules=rules,
            bucket="cairn",
            code_version="git:abc",
            clock=lambda: NOW,
            **options,
        )


@pytest.fixture
def world() -> World:
    return World()


async def test_a_build_writes_the_splits_and_a_manifest_with_their_hashes(world: World) -> None:
    await world.seed(6, rating=5)
    await world.repository.save_feedback(F.feedback("fb-x", "req-unknown", corrected_answer="fix"), "ex")
    built = await world.build(heldout=0.3, seed=7)
    prefix = "s3://cairn/datasets/support-qa/v1/"
    assert sorted(world.objects.objects) == [
        prefix + "heldout.jsonl",
        prefix + "manifest.json",
        prefix + "train.jsonl",
    ]
    manifest = DatasetManifest.model_validate_json(world.objects.get(prefix + "manifest.json"))
    assert manifest == built.version.manifest
    for f in manifest.files:
        data = world.objects.get(prefix + f.name)
        assert (f.sha256, f.bytes) == (hashlib.sha256(data).hexdigest(), len(data))
        rows = [DatasetRow.model_validate_json(line) for line in data.decode().splitlines()]
        assert len(rows) == f.rows
    assert (manifest.row_count, manifest.train_rows + manifest.heldout_rows) == (6, 6)
    assert manifest.heldout_rows >= 1
    assert manifest.request_ids == [f"req-{i}" for i in range(6)]
    assert manifest.feedback_ids == [f"fb-{i}" for i in range(6)]
    assert (manifest.rules, manifest.dropped, manifest.code_version) == (
        ["corrected", "min_rating:4"],
        {"no_request": 1},
        "git:abc",
    )
    assert manifest.created_at == NOW.isoformat()
    assert [(p.request_id, p.split) for p in built.version.rows if p.split == "heldout"]


async def test_the_published_event_points_at_the_version(world: World) -> None:
    await world.seed(3, corrected_answer="better")
    built = await world.build()
    [event] = world.publisher.events()
    assert isinstance(event, DatasetPublishedV1)
    assert event == built.event
    assert (event.uri, event.manifest_uri) == (
        "s3://cairn/datasets/support-qa/v1/",
        "s3://cairn/datasets/support-qa/v1/manifest.json",
    )
    assert (event.version, event.row_count, event.source_request_count) == (1, 3, 3)
    assert event.files_sha256 == {
        name: hashlib.sha256(world.objects.get(event.uri + name)).hexdigest()
        for name in ("train.jsonl", "heldout.jsonl", "manifest.json")
    }
    [message] = world.publisher.messages
    assert message.meta.id == derive_event_id("dataset:support-qa/v1", event.event_type, "")
    assert message.key == b"support-qa"
    # announcing the same version again sends the same event
    again = await republish(world.repository, world.publisher, "support-qa", 1)
    assert again.id == message.meta.id
    assert world.publisher.messages[1].value == message.value


async def test_rebuilds_are_new_versions_and_old_ones_stay(world: World) -> None:
    await world.seed(2, rating=5)
    first = await world.build()
    old_train = world.objects.get(first.version.uri + "train.jsonl")
    await world.repository.save_request(F.request("req-new"), "n1")
    await world.repository.save_screening(F.screening("req-new", "new?"), "n2")
    await world.repository.save_feedback(F.feedback("fb-new", "req-new", corrected_answer="fixed"), "n3")
    second = await world.build()
    assert (first.version.version, second.version.version) == (1, 2)
    assert second.version.manifest.row_count == 3
    assert world.objects.get(first.version.uri + "train.jsonl") == old_train
    assert [v.version for v in await world.repository.versions("support-qa")] == [1, 2]
    assert (await find_version(world.repository, "support-qa", None)).version == 2


async def test_an_empty_selection_is_refused_and_makes_no_version(world: World) -> None:
    await world.seed(2, rating=2)
    await world.repository.save_request(F.request("req-eval", user_id="cairn-evaluator"), "v1")
    await world.repository.save_screening(F.screening("req-eval"), "v2")
    await world.repository.save_feedback(F.feedback("fb-eval", "req-eval", corrected_answer="x"), "v3")
    with pytest.raises(EmptySelectionError, match=r"select no rows for support-qa \(dropped: evaluation=1\)"):
        await world.build()
    assert world.objects.objects == {}
    assert world.publisher.messages == []
    assert await world.repository.versions("support-qa") == []


async def test_bad_input_is_refused_before_anything_is_written(world: World) -> None:
    await world.seed(2, rating=5)
    with pytest.raises(InvalidRuleError, match="dataset id"):
        await world.build(dataset_id="no/slashes")
    with pytest.raises(InvalidRuleError, match="at least one rule"):
        await world.build(rules=Rules())
    with pytest.raises(InvalidRuleError, match="held-out fraction"):
        await world.build(heldout=1.5)
    with pytest.raises(DatasetNotFoundError, match="no dataset 'nothing'"):
        await find_version(world.repository, "nothing", None)
    await world.build()
    with pytest.raises(DatasetNotFoundError, match="has no version 4"):
        await find_version(world.repository, "support-qa", 4)
    assert world.objects.list("s3://cairn/") != []


async def test_the_same_feedback_gives_the_same_bytes(world: World) -> None:
    await world.seed(5, rating=5)
    first = await world.build("a")
    second = await world.build("b")
    for name in ("train.jsonl", "heldout.jsonl"):
        assert world.objects.get(first.version.uri + name) == world.objects.get(second.version.uri + name)
    lines = world.objects.get(first.version.uri + "train.jsonl").decode().splitlines()
    assert all(json.loads(line)["source"] == "rated" for line in lines)


async def test_fewer_rows_than_asked_for_make_no_version(world: World) -> None:
    await world.seed(2, rating=2, corrected_answer="a better answer")
    with pytest.raises(EmptySelectionError, match="fewer than the 5 asked for"):
        await world.build(min_rows=5)
    assert world.objects.objects == {}
    assert world.publisher.messages == []
    built = await world.build(min_rows=2)
    assert built.version.manifest.row_count == 2
