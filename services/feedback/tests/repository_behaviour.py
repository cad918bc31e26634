"""The Repository behaviour suite: what every Repository promises, run against each backend.

Not collected by itself (loaded by path). A backend subclasses `RepositoryBehaviour` as a `Test...`
class with a `repository` fixture giving a new, empty repository.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cairn_events.artifacts import DatasetManifest
from cairn_feedback.domain.records import DatasetVersion, RequestTrail, RowProvenance, answered_by
from cairn_feedback.ports import Repository
from cairn_testing.suites import load_suite

F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))


def version(dataset_id: str, n: int, rows: int = 1) -> DatasetVersion:
    uri = f"s3://cairn/datasets/{dataset_id}/v{n}/"
    provenance = tuple(
        RowProvenance(
            f"row{i:013d}", f"req-{i}", f"fb-{i}", "qa", 3, "corrected", "train" if i else "heldout"
        )
        if i % 3 != 2
        else RowProvenance(f"row{i:013d}", f"req-{i}", None, "qa", 3, "teacher", "train")  # no feedback
        for i in range(rows)
    )
    manifest = DatasetManifest(
        dataset_id=dataset_id,
        version=n,
        created_at=f"2025-03-04T09:00:0{n}+00:00",
        rules=["corrected"],
        files=[],
        row_count=rows,
        train_rows=rows - 1,
        heldout_rows=1,
        request_ids=sorted(p.request_id for p in provenance),
        feedback_ids=sorted(p.feedback_id for p in provenance if p.feedback_id is not None),
        dropped={"duplicate": 1},
        code_version="test",
    )
    return DatasetVersion(dataset_id, n, uri, uri + "manifest.json", manifest, provenance)


def answered(trail: RequestTrail) -> str | None:
    """Who answered the trail, live or in a replay (a repository may return more trails than asked)."""
    return answered_by(trail.response) or answered_by(trail.shadow_response)


class RepositoryBehaviour:
    """What every Repository promises."""

    async def test_a_trail_joins_whatever_arrived_in_any_order(self, repository: Repository) -> None:
        empty = await repository.trail("req-1")
        assert (empty.request, empty.screening, empty.response, empty.feedback) == (None, None, None, ())
        await repository.save_response(F.response("req-1"), "e3")
        assert await repository.save_feedback(F.feedback("fb-1", "req-1", rating=5), "e4")
        await repository.save_screening(F.screening("req-1"), "e2")
        await repository.save_request(F.request("req-1"), "e1")
        trail = await repository.trail("req-1")
        assert trail.request == F.request("req-1")
        assert trail.screening == F.screening("req-1")
        assert trail.response == F.response("req-1")
        assert trail.feedback == (F.feedback("fb-1", "req-1", rating=5),)

    async def test_saving_again_changes_nothing(self, repository: Repository) -> None:
        for _ in range(2):
            await repository.save_request(F.request("req-1"), "e1")
            await repository.save_screening(F.screening("req-1"), "e2")
            await repository.save_response(F.response("req-1"), "e3")
        assert await repository.save_feedback(F.feedback("fb-1", "req-1", rating=5), "e4") is True
        assert await repository.save_feedback(F.feedback("fb-1", "req-1", rating=1), "e5") is False
        trail = await repository.trail("req-1")
        assert trail.feedback == (F.feedback("fb-1", "req-1", rating=5),)
        assert trail.request == F.request("req-1")

    async def test_the_latest_event_per_request_wins_whatever_the_order(self, repository: Repository) -> None:
        early, late = (
            F.response("req-1", "early", completed_at=F.at(2)),
            F.response("req-1", "late", completed_at=F.at(9)),
        )
        await repository.save_response(late, "e-b")
        await repository.save_response(early, "e-a")
        await repository.save_response(early, "e-c")
        assert (await repository.trail("req-1")).response == late
        await repository.save_request(F.request("req-2", prompt="qa:1"), "e-1")
        await repository.save_request(F.request("req-2", prompt="qa:2"), "e-2")  # same time: higher id wins
        await repository.save_request(F.request("req-2", prompt="qa:1"), "e-1")
        trail = await repository.trail("req-2")
        assert trail.request is not None
        assert trail.request.prompt == "qa:2"

    async def test_feedback_is_kept_for_unknown_requests_and_ordered(self, repository: Repository) -> None:
        await repository.save_feedback(F.feedback("fb-2", "req-9", rating=1, submitted_at=F.at(30)), "e2")
        await repository.save_feedback(F.feedback("fb-1", "req-9", rating=5, submitted_at=F.at(20)), "e1")
        await repository.save_feedback(F.feedback("fb-3", "req-8", thumbs="up"), "e3")
        await repository.save_request(F.request("req-7"), "e4")  # no feedback: not a candidate
        trails = await repository.trails_with_feedback()
        assert [t.request_id for t in trails] == ["req-8", "req-9"]
        assert [f.feedback_id for f in trails[1].feedback] == ["fb-1", "fb-2"]
        latest = trails[1].latest_feedback()
        assert latest is not None
        assert latest.feedback_id == "fb-2"
        assert trails[1].request is None

    async def test_a_shadow_answer_is_kept_apart_from_the_live_one(self, repository: Repository) -> None:
        live = F.response("req-1", "live answer", completed_at=F.at(2))
        replayed = F.response("req-1", "replayed answer", completed_at=F.at(50), adapter="cairn-qa:3")
        await repository.save_response(live, "e-live")
        for _ in range(2):  # a redelivery changes nothing
            await repository.save_response(replayed, "e-shadow", shadow=True)
        trail = await repository.trail("req-1")
        assert (trail.response, trail.shadow_response) == (live, replayed)
        assert (await repository.trail("req-2")).shadow_response is None

    async def test_trails_answered_by_a_model_live_or_in_a_replay(self, repository: Repository) -> None:
        await repository.save_response(F.response("req-1"), "e1")  # cairn-qa:2
        await repository.save_response(F.response("req-2", adapter="cairn-qa:3", model_version="3"), "e2")
        await repository.save_response(F.response("req-3:rp-1", adapter="cairn-qa:2"), "e3", shadow=True)
        base = F.response("req-4", model="SmolLM2-135M-Instruct", model_version=None, adapter=None)
        await repository.save_response(base, "e4")
        await repository.save_request(F.request("req-1"), "e5")
        found = await repository.trails_answered_by("cairn-qa:2")
        assert [t.request_id for t in found if answered(t) == "cairn-qa:2"] == ["req-1", "req-3:rp-1"]
        assert found[0].request == F.request("req-1")
        by_base = await repository.trails_answered_by("SmolLM2-135M-Instruct")
        assert [t.request_id for t in by_base if answered(t) == "SmolLM2-135M-Instruct"] == ["req-4"]
        assert await repository.trails_with_feedback() == []  # answers alone are no feedback

    async def test_versions_number_from_one_and_are_read_back(self, repository: Repository) -> None:
        assert await repository.version("qa") is None
        assert await repository.datasets() == []
        seen: list[tuple[str, int]] = []

        def maker(dataset_id: str) -> Any:
            async def make(n: int) -> DatasetVersion:
                seen.append((dataset_id, n))
                return version(dataset_id, n, rows=3)

            return make

        first = await repository.add_version("qa", maker("qa"))
        second = await repository.add_version("qa", maker("qa"))
        await repository.add_version("other", maker("other"))
        assert seen == [("qa", 1), ("qa", 2), ("other", 1)]
        assert (first.version, second.version) == (1, 2)
        assert await repository.version("qa") == second
        assert await repository.version("qa", 1) == first
        assert await repository.version("qa", 3) is None
        assert [v.version for v in await repository.versions("qa")] == [1, 2]
        assert (await repository.version("qa", 2)) == version("qa", 2, rows=3)
        summaries = await repository.datasets()
        assert [(d.dataset_id, d.versions, d.latest_version, d.latest_rows) for d in summaries] == [
            ("other", 1, 1, 3),
            ("qa", 2, 2, 3),
        ]

    async def test_a_failed_build_records_nothing(self, repository: Repository) -> None:
        async def broken(n: int) -> DatasetVersion:
            raise RuntimeError("S3 is down")

        with pytest.raises(RuntimeError, match="S3 is down"):
            await repository.add_version("qa", broken)

        async def wrong(n: int) -> DatasetVersion:
            return version("qa", n + 5)

        with pytest.raises(ValueError, match="expected qa v1"):
            await repository.add_version("qa", wrong)
        assert await repository.versions("qa") == []

        async def make(n: int) -> DatasetVersion:
            return version("qa", n)

        assert (await repository.add_version("qa", make)).version == 1

    async def test_concurrent_builds_take_distinct_versions(self, repository: Repository) -> None:
        async def slow(n: int) -> DatasetVersion:
            await asyncio.sleep(0.05)
            return version("qa", n)

        made = await asyncio.gather(*(repository.add_version("qa", slow) for _ in range(3)))
        assert sorted(v.version for v in made) == [1, 2, 3]
