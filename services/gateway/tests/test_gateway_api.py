"""The API with in-memory fakes: answers, errors in OpenAI's shape, keys and tenants, idempotency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cairn_auth import Authenticator, AuthSettings, Role
from cairn_auth.adapters.memory import InMemoryKeyStore
from cairn_auth.management import create_key
from cairn_gateway.adapters.memory import InMemoryAnsweredRequests, StaticCatalogue
from cairn_gateway.api import create_app
from cairn_gateway.completions import keep_unfinished
from cairn_gateway.deps import Deps
from cairn_gateway.replies import ReplyBook

from .conftest import AnsweringPublisher, answer

CHAT = {"model": "qa", "messages": [{"role": "user", "content": "What does yield do?"}]}


class World:
    def __init__(
        self, deps: Deps, publisher: AnsweringPublisher, client: httpx.AsyncClient, tokens: dict[str, str]
    ):
        self.deps, self.publisher, self.client, self.tokens = deps, publisher, client, tokens

    async def chat(
        self, key: str = "app", body: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.tokens[key]}", **headers}
        return await self.client.post("/v1/chat/completions", json=body or CHAT, headers=sent)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    keys = InMemoryKeyStore()
    tokens = {}
    for name, tenant, role in (("app", "acme", Role.VIEWER), ("root", "*", Role.ADMIN)):
        issued, _, _ = await create_key(keys, tenant=tenant, role=role, name=name, actor="test")
        tokens[name] = issued.token
    book = ReplyBook()
    publisher = AnsweringPublisher(book)
    catalogue = StaticCatalogue([{"name": "qa", "tenant": "default", "labels": {"production": 1}}], [])
    deps = Deps(InMemoryAnsweredRequests(), catalogue, publisher, book, answer_timeout_s=2.0)
    app = create_app(deps, authenticator=Authenticator(keys), auth=AuthSettings(enabled=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield World(deps, publisher, client, tokens)


async def test_a_chat_completion_is_one_request_event_answered_in_openais_shape(world: World) -> None:
    got = await world.chat()
    assert got.status_code == 200
    [request] = world.publisher.requests()
    assert request.tenant == "acme"
    assert request.prompt == "qa"
    assert got.headers["X-Cairn-Request-Id"] == request.request_id
    assert got.json()["choices"][0]["message"]["content"] == "answer to What does yield do?"
    assert got.json()["id"] == f"chatcmpl-{request.request_id}"


async def test_no_key_or_a_bad_key_is_a_401_in_openais_shape(world: World) -> None:
    got = await world.client.post("/v1/chat/completions", json=CHAT)
    assert got.status_code == 401
    assert got.json()["error"]["code"] == "invalid_api_key"
    got = await world.client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer nope"})
    assert got.status_code == 401
    assert "error" in got.json()
    assert world.publisher.requests() == []


async def test_a_tenant_key_asking_for_another_tenant_is_a_403(world: World) -> None:
    got = await world.chat(**{"X-Cairn-Tenant": "beta"})
    assert got.status_code == 403
    assert got.json()["error"]["type"] == "permission_error"
    assert world.publisher.requests() == []


async def test_a_platform_key_names_the_tenant(world: World) -> None:
    assert (await world.chat("root", **{"X-Cairn-Tenant": "beta"})).status_code == 200
    assert world.publisher.requests()[0].tenant == "beta"


async def test_a_body_that_is_not_a_chat_request_is_a_400(world: World) -> None:
    got = await world.chat(body={"model": "qa"})
    assert got.status_code == 400
    assert got.json()["error"]["param"] == "messages"


@pytest.mark.parametrize(
    ("status", "http", "code"),
    [
        ("rejected", 400, "request_rejected"),
        ("failed", 500, "request_failed"),
        ("held", 409, "held_for_review"),
    ],
)
async def test_rejected_failed_and_held_answers(world: World, status: str, http: int, code: str) -> None:
    world.publisher.respond = lambda r: answer(r, status=status, text=None, reason="why")
    got = await world.chat()
    assert got.status_code == http
    assert got.json()["error"]["code"] == code
    [request] = world.publisher.requests()
    assert got.headers["X-Cairn-Request-Id"] == request.request_id


async def test_a_request_over_its_tenants_budget_is_a_429_quota_error(world: World) -> None:
    reason = "over budget: tenant acme spent $5.0100 of its $5.00 daily budget (UTC day 2026-12-07)"
    world.publisher.respond = lambda r: answer(r, status="rejected", text=None, reason=reason)
    got = await world.chat()
    assert got.status_code == 429
    assert got.headers["x-should-retry"] == "false"
    assert got.json()["error"] == {
        "message": reason,
        "type": "insufficient_quota",
        "param": None,
        "code": "over_budget",
    }


async def test_a_held_answer_is_a_409_the_client_does_not_retry_at_once(world: World) -> None:
    world.publisher.respond = lambda r: answer(r, status="held", text=None, reason="held (review rev-9)")
    got = await world.chat()
    [request] = world.publisher.requests()
    assert got.status_code == 409
    assert got.headers["x-should-retry"] == "false"
    assert got.json()["error"]["type"] == "held_for_review"
    assert request.request_id in got.json()["error"]["message"]


async def test_the_reviewers_decision_answers_the_retry_of_a_held_request(world: World) -> None:
    world.publisher.respond = lambda r: answer(r, status="held", text=None, reason="held (review rev-9)")
    held = await world.chat(**{"Idempotency-Key": "review-me"})
    assert held.status_code == 409
    [request] = world.publisher.requests()
    again = await world.chat(**{"Idempotency-Key": "review-me"})  # still held: the same 409, nothing sent
    assert again.status_code == 409
    assert again.headers["x-should-retry"] == "false"
    assert len(world.publisher.requests()) == 1
    # the reviewer approves: safety publishes a second response for the same request id
    released = answer(request, text="released after review")
    assert await world.deps.replies.deliver(released)
    final = await world.chat(**{"Idempotency-Key": "review-me"})
    assert final.status_code == 200
    assert final.json()["choices"][0]["message"]["content"] == "released after review"
    assert final.json()["id"] == f"chatcmpl-{request.request_id}"
    assert len(world.publisher.requests()) == 1
    assert request.request_id not in world.deps.replies  # nothing left to keep


async def test_a_rejection_in_review_answers_the_retry_with_a_content_filter_finish(world: World) -> None:
    world.publisher.respond = lambda r: answer(r, status="held", text=None, reason="held")
    await world.chat(**{"Idempotency-Key": "reject-me"})
    [request] = world.publisher.requests()
    await world.deps.replies.deliver(
        answer(request, status="blocked", text=None, reason="rejected in human review: off topic")
    )
    final = await world.chat(**{"Idempotency-Key": "reject-me"})
    assert final.status_code == 200
    choice = final.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["refusal"] == "rejected in human review: off topic"


async def test_a_replica_started_later_keeps_what_is_unfinished_in_the_table(world: World) -> None:
    """A held request whose replica went away: the table's unfinished rows are kept at start-up."""
    world.publisher.respond = lambda r: answer(r, status="held", text=None, reason="held")
    await world.chat(**{"Idempotency-Key": "restart"})
    [request] = world.publisher.requests()
    fresh = ReplyBook()  # a new replica: its own book, the same table
    world.deps.replies = fresh
    assert request.request_id not in fresh
    assert await keep_unfinished(world.deps) == 1
    assert await fresh.deliver(answer(request, text="decided while the first replica was gone"))
    final = await world.chat(**{"Idempotency-Key": "restart"})
    assert final.json()["choices"][0]["message"]["content"] == "decided while the first replica was gone"


async def test_a_request_the_broker_refuses_is_a_503(world: World) -> None:
    async def refuse(message: object) -> None:
        raise ConnectionError("broker down")

    world.publisher.send = refuse  # type: ignore[method-assign,assignment]
    got = await world.chat()
    assert got.status_code == 503
    assert got.json()["error"]["type"] == "service_unavailable"


async def test_a_blocked_answer_is_a_content_filter_finish(world: World) -> None:
    world.publisher.respond = lambda r: answer(r, status="blocked", text=None, reason="toxic")
    got = await world.chat()
    assert got.status_code == 200
    assert got.json()["choices"][0]["finish_reason"] == "content_filter"


async def test_no_answer_in_time_is_a_504(world: World) -> None:
    world.deps.answer_timeout_s = 0.05
    world.publisher.respond = lambda r: None
    got = await world.chat()
    assert got.status_code == 504
    assert got.json()["error"]["type"] == "timeout"


async def test_a_retry_after_the_answer_gets_the_stored_answer_without_a_second_event(world: World) -> None:
    first = await world.chat(**{"Idempotency-Key": "k-1"})
    world.publisher.respond = lambda r: answer(r, text="a different answer")
    again = await world.chat(**{"Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(world.publisher.requests()) == 1
    other = await world.chat(**{"Idempotency-Key": "k-2"})
    assert other.json()["choices"][0]["message"]["content"] == "a different answer"


async def test_the_same_key_with_another_body_is_a_409(world: World) -> None:
    await world.chat(**{"Idempotency-Key": "k-1"})
    got = await world.chat(body={**CHAT, "temperature": 0.5}, **{"Idempotency-Key": "k-1"})
    assert got.status_code == 409
    assert got.json()["error"]["code"] == "idempotency_key_reused"


async def test_a_late_answer_after_a_504_is_stored_for_the_retry(world: World) -> None:
    world.deps.answer_timeout_s = 0.05
    world.publisher.respond = lambda r: None
    assert (await world.chat(**{"Idempotency-Key": "slow"})).status_code == 504
    [request] = world.publisher.requests()
    assert await world.deps.replies.deliver(answer(request, text="late but here"))
    again = await world.chat(**{"Idempotency-Key": "slow"})
    assert again.status_code == 200
    assert again.json()["choices"][0]["message"]["content"] == "late but here"
    assert len(world.publisher.requests()) == 1


async def test_models_lists_what_the_key_can_name(world: World) -> None:
    got = await world.client.get("/v1/models", headers={"Authorization": f"Bearer {world.tokens['app']}"})
    assert got.status_code == 200
    assert [m["id"] for m in got.json()["data"]] == ["qa", "prompt:qa@production"]
