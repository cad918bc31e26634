"""Streaming (`stream: true`): the SSE chunks, the hold-back window, and the API's streams with an
in-memory request path that publishes deltas before the screened answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cairn_auth import Authenticator, AuthSettings, Role
from cairn_auth.adapters.memory import InMemoryKeyStore
from cairn_auth.management import create_key
from cairn_events import CompletionDeltaGeneratedV1, RequestSubmittedV1, ResponseCompletedV1
from cairn_gateway.adapters.memory import InMemoryAnsweredRequests, StaticCatalogue
from cairn_gateway.api import create_app
from cairn_gateway.deps import Deps
from cairn_gateway.domain.streaming import DONE, ChunkMaker, HoldBack, replay_chunks, sse
from cairn_gateway.replies import ReplyBook

from .conftest import NOW, AnsweringPublisher, answer, deltas_of

ASK = {"model": "qa", "stream": True, "messages": [{"role": "user", "content": "What does yield do?"}]}
TEXT = "yield hands a value to the caller and pauses the generator."

# --- SSE and chunks ----------------------------------------------------------------------------


def test_an_event_is_one_data_line_of_compact_json_and_a_blank_line() -> None:
    assert sse({"a": "é", "b": [1]}) == 'data: {"a":"é","b":[1]}\n\n'.encode()
    assert DONE == b"data: [DONE]\n\n"


def test_chunks_are_openai_chat_completion_chunks() -> None:
    maker = ChunkMaker("chatcmpl-r1", 1741079722, "cairn-qa:2", include_usage=True)
    role = maker.role()
    assert role["object"] == "chat.completion.chunk"
    assert (role["id"], role["created"], role["model"]) == ("chatcmpl-r1", 1741079722, "cairn-qa:2")
    assert role["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    assert role["usage"] is None  # include_usage: every chunk says usage null ...
    assert maker.content("Hi")["choices"][0]["delta"] == {"content": "Hi"}
    assert maker.refusal("toxic")["choices"][0]["delta"] == {"refusal": "toxic"}
    last = maker.finish("stop", {"status": "completed"})
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["cairn"] == {"status": "completed"}
    usage = maker.usage(11, 7)  # ... and the last chunk has no choice and the usage
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    assert "usage" not in ChunkMaker("c", 0, "m").role()


# --- the hold-back window --------------------------------------------------------------------------


def delta(offset: int, text: str, index: int = 0) -> CompletionDeltaGeneratedV1:
    return CompletionDeltaGeneratedV1(
        request_id="r1",
        tenant="acme",
        index=index,
        offset=offset,
        text=text,
        output_tokens=index + 1,
        last=False,
        model="m",
        generated_at=NOW,
    )


def test_the_last_window_characters_are_held_back_until_the_verdict() -> None:
    hold = HoldBack(window=5)
    assert hold.add(delta(0, "abc")) == ""
    assert hold.add(delta(3, "defgh")) == "abc"
    assert hold.add(delta(8, "ij")) == "de"
    assert hold.shown == 5
    assert hold.rest("abcdefghij") == "fghij"
    assert hold.rest("abcdeXYZ") == "XYZ"  # a change inside the window is not seen by the client
    assert hold.rest("abXde") is None  # a change in what was shown cannot be taken back


def test_a_repeated_delta_is_skipped_and_a_gap_stops_the_release() -> None:
    hold = HoldBack(window=0)
    assert hold.add(delta(0, "abc")) == "abc"
    assert hold.add(delta(0, "abc")) == ""  # a redelivery
    assert hold.add(delta(5, "fg")) == ""  # "de" went missing
    assert hold.add(delta(3, "de")) == ""  # nothing is released until the verdict
    assert hold.rest("abcdefg") == "defg"


def test_without_a_window_nothing_is_released_before_the_verdict() -> None:
    hold = HoldBack(window=None)
    assert hold.add(delta(0, "a" * 500)) == ""
    assert hold.rest("a" * 500) == "a" * 500


def test_a_stored_answer_is_replayed_as_chunks() -> None:
    body = {
        "id": "chatcmpl-r1",
        "created": 1,
        "model": "cairn-qa:2",
        "choices": [{"message": {"content": "Hi", "refusal": None}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        "cairn": {"status": "completed"},
    }
    chunks = replay_chunks(body, include_usage=True)
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {},
        None,
    ]
    assert chunks[-1]["usage"]["total_tokens"] == 4


# --- the API -----------------------------------------------------------------------------------


class World:
    def __init__(self, deps: Deps, publisher: AnsweringPublisher, client: httpx.AsyncClient, token: str):
        self.deps, self.publisher, self.client, self.token = deps, publisher, client, token

    async def stream(self, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.token}", **headers}
        return await self.client.post("/v1/chat/completions", json=body or ASK, headers=sent)


def events(response: httpx.Response) -> list[Any]:
    """The data of each server-sent event; `[DONE]` as the string."""
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in response.text.split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks), blocks
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in blocks]


def streamed_text(got: list[Any]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in got if isinstance(c, dict) and c.get("choices")
    )


def world_fixture(respond: Any = answer, stream: Any = None, **deps: Any) -> Any:
    @pytest.fixture
    async def world() -> AsyncIterator[World]:
        keys = InMemoryKeyStore()
        issued, _, _ = await create_key(keys, tenant="acme", role=Role.VIEWER, name="app", actor="test")
        book = ReplyBook()
        publisher = AnsweringPublisher(book, respond, stream)
        catalogue = StaticCatalogue([], [])
        made = Deps(InMemoryAnsweredRequests(), catalogue, publisher, book, answer_timeout_s=2.0, **deps)
        app = create_app(made, authenticator=Authenticator(keys), auth=AuthSettings(enabled=True))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield World(made, publisher, client, issued.token)

    return world


def respond(request: RequestSubmittedV1) -> ResponseCompletedV1:
    """The request path: `BLOCK` is blocked at output, `HOLD` held, `REDACT` redacted at its start."""
    question = request.messages[-1].content
    if question == "BLOCK":
        return answer(request, status="blocked", text=None, reason="toxic output")
    if question == "HOLD":
        return answer(request, status="held", text=None, reason="held for review (review rev-1)")
    if question == "REDACT":
        return answer(request, text="[EMAIL]" + TEXT[7:])
    return answer(request, text=TEXT)


def deltas(request: RequestSubmittedV1) -> list[CompletionDeltaGeneratedV1]:
    return deltas_of(request, TEXT, size=10)


world = world_fixture(respond, deltas, stream_holdback_chars=16)
verdict_first = world_fixture(respond, deltas, stream_verdict_first_tenants=frozenset({"acme"}))


def ask(question: str, **fields: Any) -> dict[str, Any]:
    return {**ASK, "messages": [{"role": "user", "content": question}], **fields}


async def test_a_streamed_answer_is_chunks_then_done_and_its_request_asks_for_deltas(world: World) -> None:
    got = await world.stream(ask("Q", stream_options={"include_usage": True}))
    assert got.status_code == 200
    [request] = world.publisher.requests()
    assert request.params.stream is True
    assert got.headers["X-Cairn-Request-Id"] == request.request_id
    chunks = events(got)
    assert chunks[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["id"] == f"chatcmpl-{request.request_id}" for c in chunks[:-1])
    assert streamed_text(chunks) == TEXT
    assert len([c for c in chunks[:-1] if c["choices"] and c["choices"][0]["delta"].get("content")]) > 2
    finish = chunks[-3]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["cairn"]["status"] == "completed"
    assert chunks[-2]["choices"] == []
    assert chunks[-2]["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


async def test_a_streamed_answer_blocked_by_output_screening_ends_for_content_filter(world: World) -> None:
    got = await world.stream(ask("BLOCK"))
    chunks = events(got)
    assert chunks[-1] == "[DONE]"
    shown = streamed_text(chunks)
    assert TEXT.startswith(shown)
    assert len(shown) <= len(TEXT) - 16  # the hold-back window was never shown
    assert chunks[-3]["choices"][0]["delta"] == {"refusal": "toxic output"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[-2]["cairn"]["status"] == "blocked"


async def test_a_tenant_streaming_after_the_verdict_sees_nothing_of_a_blocked_answer(
    verdict_first: World,
) -> None:
    chunks = events(await verdict_first.stream(ask("BLOCK")))
    assert streamed_text(chunks) == ""
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    completed = events(await verdict_first.stream(ask("Q")))
    assert streamed_text(completed) == TEXT


async def test_an_answer_redacted_after_it_was_shown_ends_with_an_error_event(world: World) -> None:
    chunks = events(await world.stream(ask("REDACT")))
    assert streamed_text(chunks).startswith("yield ")
    assert chunks[-1]["error"]["code"] == "answer_replaced"
    assert "[DONE]" not in chunks


async def test_an_answer_held_after_text_was_shown_ends_with_an_error_event(world: World) -> None:
    got = await world.stream(ask("HOLD"))
    # the deltas (50 of 59 characters releasable) came first: the stream started, so an error event
    chunks = events(got)
    assert chunks[-1]["error"]["code"] == "held_for_review"
    assert chunks[-1]["error"]["type"] == "held_for_review"


nothing_streamed = world_fixture(respond, lambda request: [], stream_holdback_chars=16)


async def test_an_answer_held_before_any_text_is_a_409_not_a_stream(nothing_streamed: World) -> None:
    got = await nothing_streamed.stream(ask("HOLD"))
    assert got.status_code == 409
    assert got.json()["error"]["code"] == "held_for_review"
    assert got.headers["x-should-retry"] == "false"


silent = world_fixture(lambda request: None, lambda request: [])


async def test_no_answer_before_the_stream_started_is_a_504(silent: World) -> None:
    got = await silent.stream(ask("Q"))
    assert got.status_code == 504
    assert got.json()["error"]["code"] == "timeout"


async def test_a_retry_with_the_idempotency_key_replays_the_stored_answer_as_a_stream(world: World) -> None:
    key = {"Idempotency-Key": "stream-1"}
    first = events(await world.stream(ask("Q"), **key))
    again = events(await world.stream(ask("Q"), **key))
    assert len(world.publisher.requests()) == 1
    assert streamed_text(again) == streamed_text(first) == TEXT
    assert again[-1] == "[DONE]"
    assert not world.deps.replies._entries  # nothing is waited for or watched any more
