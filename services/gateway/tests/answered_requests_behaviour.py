"""The AnsweredRequests behaviour suite: what every idempotency table must do.

Not collected by itself. A backend runs it by subclassing `AnsweredRequestsBehaviour` as a `Test...`
class with a `table` fixture giving a new, empty table: `test_gateway_answered_memory.py` runs it in
memory, `test_gateway_answered_postgres.py` against PostgreSQL.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from cairn_gateway.ports import AnsweredRequests, StoredRequest

from .conftest import NOW

BODY = {"id": "chatcmpl-gw-1", "choices": [{"message": {"content": "42 ünïcode"}}], "usage": {"n": 1}}


def row(request_id: str = "gw-1", minutes: float = 0, **fields: object) -> StoredRequest:
    data: dict[str, object] = {
        "request_id": request_id,
        "tenant": "acme",
        "fingerprint": "f-1",
        "asked_model": "qa@beta+model:cairn-qa:2",
        "max_tokens": 64,
        "claimed_at": NOW + timedelta(minutes=minutes),
    }
    data.update(fields)
    return StoredRequest(**data)  # type: ignore[arg-type]


class AnsweredRequestsBehaviour:
    """What every AnsweredRequests promises."""

    async def test_the_first_claim_records_the_request_and_returns_none(
        self, table: AnsweredRequests
    ) -> None:
        assert await table.claim(row()) is None
        assert await table.claim(row(fingerprint="other")) == row()  # stored as first claimed, unchanged

    async def test_max_tokens_may_be_unset(self, table: AnsweredRequests) -> None:
        await table.claim(row(max_tokens=None))
        stored = await table.claim(row())
        assert stored is not None
        assert stored.max_tokens is None

    async def test_an_answer_is_stored_with_its_status_and_body(self, table: AnsweredRequests) -> None:
        await table.claim(row())
        await table.answer("gw-1", 200, BODY, True, NOW)
        stored = await table.claim(row())
        assert stored == replace(row(), http_status=200, body=BODY, final=True)

    async def test_a_held_answer_is_replaced_by_the_final_one(self, table: AnsweredRequests) -> None:
        await table.claim(row())
        held = {"error": {"code": "held_for_review"}}
        await table.answer("gw-1", 409, held, False, NOW)
        stored = await table.claim(row())
        assert stored is not None
        assert (stored.http_status, stored.body, stored.final) == (409, held, False)
        await table.answer("gw-1", 200, BODY, True, NOW)
        stored = await table.claim(row())
        assert stored is not None
        assert (stored.http_status, stored.body, stored.final) == (200, BODY, True)

    async def test_a_final_answer_is_never_replaced(self, table: AnsweredRequests) -> None:
        await table.claim(row())
        await table.answer("gw-1", 200, BODY, True, NOW)
        await table.answer("gw-1", 500, {"error": {}}, True, NOW)
        await table.answer("gw-1", 409, {"error": {}}, False, NOW)
        stored = await table.claim(row())
        assert stored is not None
        assert (stored.http_status, stored.body) == (200, BODY)

    async def test_an_answer_to_an_unknown_request_is_ignored(self, table: AnsweredRequests) -> None:
        await table.answer("gw-unknown", 200, BODY, True, NOW)
        assert await table.claim(row("gw-unknown")) is None

    async def test_unfinished_lists_requests_without_a_final_answer_oldest_first(
        self, table: AnsweredRequests
    ) -> None:
        await table.claim(row("gw-held", minutes=2))
        await table.claim(row("gw-waiting", minutes=1))
        await table.claim(row("gw-done", minutes=0))
        await table.claim(row("gw-old", minutes=-90))
        await table.answer("gw-held", 409, {"error": {}}, False, NOW)
        await table.answer("gw-done", 200, BODY, True, NOW)
        found = await table.unfinished(NOW - timedelta(minutes=60))
        assert [r.request_id for r in found] == ["gw-waiting", "gw-held"]
        assert found[0] == row("gw-waiting", minutes=1)

    async def test_purge_forgets_requests_claimed_before_a_time(self, table: AnsweredRequests) -> None:
        await table.claim(row("gw-old", minutes=-10))
        await table.claim(row("gw-new", minutes=0))
        assert await table.purge(NOW - timedelta(minutes=5)) == 1
        assert await table.purge(NOW - timedelta(minutes=5)) == 0
        assert await table.claim(row("gw-old")) is None  # forgotten: a new request
        assert await table.claim(row("gw-new")) is not None

    async def test_concurrent_claims_of_one_request_let_exactly_one_win(
        self, table: AnsweredRequests
    ) -> None:
        got = await asyncio.gather(*(table.claim(row()) for _ in range(8)))
        assert sum(g is None for g in got) == 1
        assert all(g == row() for g in got if g is not None)
