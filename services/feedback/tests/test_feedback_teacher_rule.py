"""The `teacher:MODEL` rule (distillation): a designated model's answers become the targets.

Which answers count (completed, nothing redacted, not evaluation traffic, not disputed), how it
combines with the feedback rules, replay (shadow) answers, and a build through the handlers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cairn_bus import EventMeta, InMemoryPublisher
from cairn_bus.objects import InMemoryObjectStore
from cairn_events.artifacts import DatasetManifest, DatasetRow
from cairn_feedback.adapters.memory import InMemoryRepository
from cairn_feedback.app import router
from cairn_feedback.bootstrap import Deps, build
from cairn_feedback.datasets import build_dataset
from cairn_feedback.domain.curation import curate
from cairn_feedback.domain.errors import InvalidRuleError
from cairn_feedback.domain.manifest import provenance
from cairn_feedback.domain.records import EVALUATOR_USER, RequestTrail, answered_by
from cairn_feedback.domain.rules import Rules, parse_rules
from cairn_feedback.handlers import on_input_screened, on_request_submitted, on_response_completed
from cairn_feedback.settings import Settings
from cairn_testing.suites import load_suite

F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))
TEACHER = Rules(teacher="cairn-qa:2")  # the factories' responses come from cairn-qa:2


def trail(rid: str, *feedback: Any, question: str | None = None, **parts: Any) -> RequestTrail:
    data: dict[str, Any] = {
        "request": F.request(rid),
        "screening": F.screening(rid, question or f"question {rid}?"),
        "response": F.response(rid, f"teacher says {rid}"),
    }
    data.update(parts)
    return RequestTrail(request_id=rid, feedback=tuple(feedback), **data)


def test_parse_the_teacher_rule() -> None:
    assert parse_rules(["teacher:cairn-qa:2"]) == TEACHER
    assert parse_rules(["teacher:SmolLM2-135M-Instruct", "corrected"]).names() == [
        "corrected",
        "teacher:SmolLM2-135M-Instruct",
    ]
    assert parse_rules(["teacher:cairn-qa:2", "teacher:cairn-qa:2"]) == TEACHER
    for bad in (["teacher:"], ["teacher:cairn-qa@staging"], ["teacher:a b"], ["teacher:x:1", "teacher:y:2"]):
        with pytest.raises(InvalidRuleError):
            parse_rules(bad)


def test_answered_by_names_the_version_the_way_a_request_would() -> None:
    assert answered_by(F.response("r")) == "cairn-qa:2"
    assert answered_by(F.response("r", model_version="1", adapter=None)) == "cairn-qa:1"
    base = F.response("r", model="SmolLM2-135M-Instruct", model_version=None, adapter=None)
    assert answered_by(base) == "SmolLM2-135M-Instruct"
    assert answered_by(F.response("r", None, model=None, model_version=None, adapter=None)) is None


def test_the_teachers_completed_answers_are_the_targets() -> None:
    result = curate([trail("r1"), trail("r2")], TEACHER, heldout=0)
    rows = sorted(result.rows, key=lambda r: r.request_id)
    assert [(r.request_id, r.completion, r.source, r.model) for r in rows] == [
        ("r1", "teacher says r1", "teacher", "cairn-qa:2"),
        ("r2", "teacher says r2", "teacher", "cairn-qa:2"),
    ]
    assert [(r.feedback_id, r.rating) for r in rows] == [(None, None), (None, None)]
    assert [m.content for m in rows[0].messages] == [F.SYSTEM, "question r1?"]


def test_only_the_named_version_and_only_clean_completed_answers() -> None:
    other = F.response("r2", "other model", adapter="cairn-qa:3", model_version="3")
    result = curate(
        [
            trail("r1"),
            trail("r2", response=other),  # another version answered: not a candidate at all
            trail("r3", response=F.response("r3", None, status="blocked")),
            trail("r4", screening=F.screening("r4", "mail [EMAIL]", verdict="redact")),
            trail("r5", response=F.response("r5", "A [EMAIL] answer", verdict="redact")),
            trail("r6", request=F.request("r6", user_id=EVALUATOR_USER)),
            trail("r7", screening=None),
            trail("r8", request=None),
            trail("r9", response=F.response("r9", "   ")),
        ],
        TEACHER,
    )
    assert [r.request_id for r in result.rows] == ["r1"]
    assert result.dropped == {
        "empty": 1,
        "evaluation": 1,
        "no_answer": 1,
        "no_input": 1,
        "no_request": 1,
        "redacted_answer": 1,
        "redacted_input": 1,
    }


def test_feedback_rules_win_and_disputed_teacher_answers_are_left_out() -> None:
    rules = Rules(corrected=True, min_rating=4, teacher="cairn-qa:2")
    result = curate(
        [
            trail("r1", F.feedback("f1", "r1", corrected_answer="the fixed answer")),
            trail("r2", F.feedback("f2", "r2", rating=5)),
            trail("r3", F.feedback("f3", "r3", thumbs="down")),
            trail("r4", F.feedback("f4", "r4", rating=2)),
            trail("r5", F.feedback("f5", "r5", comment="ok")),
            trail("r6"),
        ],
        rules,
        heldout=0,
    )
    assert sorted((r.request_id, r.source, r.completion) for r in result.rows) == [
        ("r1", "corrected", "the fixed answer"),
        ("r2", "rated", "teacher says r2"),
        ("r5", "teacher", "teacher says r5"),
        ("r6", "teacher", "teacher says r6"),
    ]
    assert result.dropped == {"disputed": 2}
    # without `corrected`, a corrected teacher answer is disputed, never a target
    alone = curate([trail("r1", F.feedback("f1", "r1", corrected_answer="fix"))], TEACHER)
    assert (alone.rows, alone.dropped) == ([], {"disputed": 1})


def test_a_replayed_answer_by_the_teacher_counts_but_never_for_the_feedback_rules() -> None:
    shadow = F.response("r1:rp-1", "replayed by the teacher", completed_at=F.at(40))
    replayed = trail("r1:rp-1", response=None, shadow_response=shadow)
    [row] = curate([replayed], TEACHER).rows
    assert (row.request_id, row.completion) == ("r1:rp-1", "replayed by the teacher")
    # the live answer is the one rated; a shadow answer is not an answer for `rated`
    liked = trail("r2", F.feedback("f2", "r2", rating=5), response=None, shadow_response=shadow)
    assert curate([liked], Rules(min_rating=4)).dropped == {"no_answer": 1}
    # the live answer wins when both came from the teacher
    both = trail("r3", shadow_response=F.response("r3", "replayed"))
    assert [r.completion for r in curate([both], TEACHER).rows] == ["teacher says r3"]


def test_teacher_rows_are_scrubbed_and_deduplicated() -> None:
    same = [
        trail(
            "r1", question="Same?", response=F.response("r1", "mail ana@example.com", completed_at=F.at(9))
        ),
        trail(
            "r2", question="Same?", response=F.response("r2", "mail ana@example.com", completed_at=F.at(5))
        ),
    ]
    result = curate(same, TEACHER)
    [row] = result.rows
    assert (row.request_id, row.completion, result.dropped) == ("r2", "mail [EMAIL]", {"duplicate": 1})


class World:
    """The feedback service's handlers and a build, in memory."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.n = 0

    def meta(self, replay_id: str | None = None) -> EventMeta:
        self.n += 1
        return EventMeta(
            id=f"ev-{self.n}",
            type="t",
            source="/test",
            time=datetime(2025, 3, 4, tzinfo=UTC),
            replay_id=replay_id,
        )

    async def request(self, rid: str, answer: Any, *, replay_id: str | None = None, **req: Any) -> None:
        await on_request_submitted(F.request(rid, **req), self.meta(replay_id), self.deps)
        await on_input_screened(F.screening(rid, f"question {rid}?"), self.meta(replay_id), self.deps)
        await on_response_completed(answer, self.meta(replay_id), self.deps)


async def test_a_build_through_the_handlers_takes_live_and_replayed_teacher_answers() -> None:
    repository, objects = InMemoryRepository(), InMemoryObjectStore()
    publisher = InMemoryPublisher("/cairn/feedback", allowed_types=router.published_types)
    async with build(Settings(), publisher, repository=repository, objects=objects) as deps:
        world = World(deps)
        await world.request("live-1", F.response("live-1", "live teacher answer"))
        await world.request(
            "live-2", F.response("live-2", "student", adapter="cairn-qa:3", model_version="3")
        )
        await world.request(
            "live-2:rp-1", F.response("live-2:rp-1", "replayed teacher answer"), replay_id="diff-1"
        )
        await world.request("eval-1", F.response("eval-1", "eval answer"), user_id=EVALUATOR_USER)
        built = await build_dataset(
            repository,
            objects,
            publisher,
            dataset_id="distil",
            rules=parse_rules(["teacher:cairn-qa:2"]),
            bucket="cairn",
            code_version="test",
            heldout=0,
        )
    assert (await repository.trail("live-2:rp-1")).response is None  # kept apart as a shadow answer
    manifest = DatasetManifest.model_validate_json(objects.get(built.version.manifest_uri))
    assert (manifest.rules, manifest.feedback_ids, manifest.dropped) == (
        ["teacher:cairn-qa:2"],
        [],
        {"evaluation": 1},
    )
    assert manifest.request_ids == ["live-1", "live-2:rp-1"]
    rows = [
        DatasetRow.model_validate(json.loads(line))
        for line in objects.get(built.version.uri + "train.jsonl").decode().splitlines()
    ]
    assert sorted(r.completion for r in rows) == ["live teacher answer", "replayed teacher answer"]
    assert {p.source for p in provenance(built.curation)} == {"teacher"}
