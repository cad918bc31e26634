"""Curation: selection rules, latest feedback wins, required parts, scrubbing, de-duplication, split."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from cairn_events import ChatMessage
from cairn_feedback.domain.curation import curate, row_id_of, split_score
from cairn_feedback.domain.errors import InvalidRuleError
from cairn_feedback.domain.records import EVALUATOR_USER, RequestTrail
from cairn_feedback.domain.rules import Rules, parse_rules
from cairn_testing.suites import load_suite

F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))
CORRECTED = Rules(corrected=True)
BOTH = Rules(corrected=True, min_rating=4)


def trail(
    rid: str, *feedback: Any, question: str = F.QUESTION, answer: str | None = F.ANSWER, **parts: Any
) -> RequestTrail:
    data: dict[str, Any] = {
        "request": F.request(rid),
        "screening": F.screening(rid, question),
        "response": F.response(rid, answer),
    }
    data.update(parts)
    return RequestTrail(request_id=rid, feedback=tuple(feedback), **data)


def test_parse_rules() -> None:
    assert parse_rules(["corrected", "min_rating:4"]) == BOTH
    assert parse_rules(["thumbs_up"]).names() == ["thumbs_up"]
    assert BOTH.names() == ["corrected", "min_rating:4"]
    for bad in (["min_rating:9"], ["min_rating:x"], ["best"], []):
        with pytest.raises(InvalidRuleError):
            parse_rules(bad)


def test_a_correction_is_the_target_of_a_corrected_row() -> None:
    fixed = "Go to Settings > Security > Reset password; mail help@acme.test if stuck."
    result = curate([trail("r1", F.feedback("f1", "r1", corrected_answer=fixed, rating=2))], BOTH)
    [row] = result.rows
    assert (row.source, row.request_id, row.feedback_id, row.rating) == ("corrected", "r1", "f1", 2)
    assert row.completion == "Go to Settings > Security > Reset password; mail [EMAIL] if stuck."
    assert [m.content for m in row.messages] == [F.SYSTEM, F.QUESTION]
    assert (row.prompt_name, row.prompt_version, row.model, row.tenant) == ("qa", 3, "cairn-qa:2", "acme")
    assert row.request.prompt == "qa"
    assert row.request.variables == {"topic": "accounts"}
    assert row.row_id == row_id_of(row.messages, row.completion)


def test_ratings_select_the_original_answer_only_under_a_rating_rule() -> None:
    good = trail("r1", F.feedback("f1", "r1", rating=5))
    low = trail("r2", F.feedback("f2", "r2", rating=3), question="Other?")
    thumbs = trail("r3", F.feedback("f3", "r3", thumbs="up"), question="Third?")
    assert curate([good, low, thumbs], CORRECTED).rows == []
    [row] = curate([good, low, thumbs], BOTH).rows
    assert (row.request_id, row.source, row.completion) == ("r1", "rated", F.ANSWER)
    both = curate([good, low, thumbs], Rules(min_rating=4, thumbs_up=True)).rows
    assert sorted(r.request_id for r in both) == ["r1", "r3"]


def test_the_latest_feedback_on_a_request_wins() -> None:
    liked_then_not = trail(
        "r1",
        F.feedback("f1", "r1", rating=5, submitted_at=F.at(10)),
        F.feedback("f2", "r1", rating=1, submitted_at=F.at(20)),
    )
    assert curate([liked_then_not], BOTH).rows == []
    corrected_again = trail(
        "r2",
        F.feedback("f3", "r2", corrected_answer="first fix", submitted_at=F.at(10)),
        F.feedback("f4", "r2", corrected_answer="second fix", submitted_at=F.at(30)),
    )
    [row] = curate([corrected_again], CORRECTED).rows
    assert (row.feedback_id, row.completion) == ("f4", "second fix")


def test_rows_need_the_request_its_screened_input_and_for_ratings_an_answer() -> None:
    rated = F.feedback("f", "x", rating=5)
    result = curate(
        [
            trail("r1", F.feedback("f1", "r1", corrected_answer="fix"), request=None),
            trail("r2", F.feedback("f2", "r2", corrected_answer="fix"), screening=None),
            trail("r3", rated.model_copy(update={"request_id": "r3"}), answer=None),
            trail("r4", rated.model_copy(update={"request_id": "r4"}), response=None),
            trail(
                "r5",
                F.feedback("f5", "r5", corrected_answer="fix"),
                request=F.request("r5", user_id=EVALUATOR_USER),
            ),
            trail("r6", F.feedback("f6", "r6", corrected_answer="   ")),  # not a correction, no rating
            trail("r7", F.feedback("f7", "r7", corrected_answer="fine", comment="thanks")),
        ],
        BOTH,
    )
    assert result.dropped == {"evaluation": 1, "no_answer": 2, "no_input": 1, "no_request": 1}
    assert [r.request_id for r in result.rows] == ["r7"]


def test_exact_duplicates_keep_the_earliest_feedback() -> None:
    a = trail("r1", F.feedback("f1", "r1", corrected_answer="same", submitted_at=F.at(50)))
    b = trail("r2", F.feedback("f2", "r2", corrected_answer="same", submitted_at=F.at(40)))
    c = trail("r3", F.feedback("f3", "r3", corrected_answer="other", submitted_at=F.at(45)))
    result = curate([a, b, c], CORRECTED, heldout=0)
    assert sorted(r.feedback_id for r in result.rows) == ["f2", "f3"]
    assert result.dropped == {"duplicate": 1}
    # the same text in another conversation is not a duplicate
    d = trail("r4", F.feedback("f4", "r4", corrected_answer="same"), question="Something else?")
    assert len(curate([a, d], CORRECTED).rows) == 2


def test_row_ids_are_sha256_of_canonical_messages_and_completion() -> None:
    messages = [ChatMessage(role="user", content="hé")]
    canonical = '{"completion":"ok","messages":[{"content":"hé","role":"user"}]}'
    assert row_id_of(messages, "ok") == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert json.loads(canonical)["messages"][0] == messages[0].model_dump()


def many(n: int) -> list[RequestTrail]:
    return [
        trail(
            f"r{i}", F.feedback(f"f{i}", f"r{i}", corrected_answer=f"answer {i}"), question=f"question {i}?"
        )
        for i in range(n)
    ]


def test_the_split_is_deterministic_and_follows_the_fraction_and_seed() -> None:
    trails = many(200)
    first = curate(trails, CORRECTED, heldout=0.2, seed=0)
    again = curate(list(reversed(trails)), CORRECTED, heldout=0.2, seed=0)
    assert first == again
    assert 20 <= len(first.heldout) <= 60
    assert all(split_score(r.row_id, 0) < 0.2 for r in first.heldout)
    assert all(split_score(r.row_id, 0) >= 0.2 for r in first.train)
    other = curate(trails, CORRECTED, heldout=0.2, seed=1)
    assert {r.row_id for r in other.heldout} != {r.row_id for r in first.heldout}
    assert len(first.rows) == len(other.rows) == 200
    assert [r.row_id for r in first.train] == sorted(r.row_id for r in first.train)


def test_two_rows_or_more_hold_at_least_one_out_and_train_on_one() -> None:
    for seed in range(20):
        two = curate(many(2), CORRECTED, heldout=0.2, seed=seed)
        assert (len(two.train), len(two.heldout)) == (1, 1)
        nearly_all = curate(many(3), CORRECTED, heldout=0.99, seed=seed)
        assert len(nearly_all.train) >= 1
    one = curate(many(1), CORRECTED, heldout=0.2)
    assert (len(one.train), len(one.heldout)) == (1, 0)
    assert curate(many(5), CORRECTED, heldout=0).heldout == []
    with pytest.raises(ValueError, match="held-out fraction"):
        curate(many(2), CORRECTED, heldout=1.0)


def test_pii_in_the_input_and_the_source_request_is_scrubbed() -> None:
    rid = "r1"
    t = trail(
        rid,
        F.feedback("f1", rid, rating=5),
        question="I am ana@example.com, card 4111 1111 1111 1111",
        request=F.request(
            rid,
            variables={"who": "call +1 415 555 2671", "n": 3},
            messages=[{"role": "user", "content": "ana@example.com"}],
        ),
    )
    [row] = curate([t], BOTH).rows
    assert row.messages[-1].content == "I am [EMAIL], card [CARD]"
    assert row.request.variables == {"who": "call [PHONE]", "n": 3}
    assert row.request.messages[0].content == "[EMAIL]"
