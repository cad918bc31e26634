"""The OpenAI-compatible gateway end to end: the request path (prompt store, retriever, safety,
inference) and the gateway as processes, called with the official `openai` client (sync and async)
and with `curl`, as an application would. API keys are made with `cairn keys create`.

Four tenants with their own keys: `e2e-gw` (the default policy), `e2e-gw-block` (every question
blocked at input), `e2e-gw-hold` (every question held for review at input, so a reviewer's edit
answers it without a generation) and `e2e-gw-outblock` (every answer blocked at output, after its
deltas were streamed). Three answers are generated, together, with a few tokens each.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from cairn_bus.kafka import consumer_at_end, ensure_topics, events_in
from cairn_events import CompletionDeltaGeneratedV1, RequestSubmittedV1
from cairn_localstack.process import ProcessManager
from cairn_testing.processes import ServiceProcesses, free_port, prepare_groups, run_cairn, service_env

from .harness import REPO, create_api_key, policy_folder

pytestmark = pytest.mark.integration

E2E_SERVICES = ["prompt-store", "retriever", "safety", "inference", "gateway"]
EVERYTHING = {"thresholds": [{"min_score": 0.0, "action": "block"}]}
TENANTS = {
    "e2e-gw": {},
    "e2e-gw-block": {"input": {"toxicity": EVERYTHING}},
    "e2e-gw-hold": {"input": {"toxicity": {"thresholds": [{"min_score": 0.0, "action": "review"}]}}},
    "e2e-gw-outblock": {"output": {"toxicity": EVERYTHING}},
}
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What does the pass statement do?"}]
TOKENS = 16
HOLDBACK = 16
EDITED = "The pass statement does nothing; it is a placeholder where a statement is required."


@dataclass
class Gateway:
    url: str
    env: dict[str, str]
    keys: dict[str, str]
    """The API key of each tenant (a viewer key, bound to the tenant)."""

    def client(self, tenant: str = "e2e-gw") -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.keys[tenant], timeout=300)

    def async_client(self, tenant: str = "e2e-gw") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=self.keys[tenant], timeout=300)


@pytest.fixture(scope="module")
async def gateway(
    local_stack: dict[str, str],
    e2e_database: str,
    knowledge_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Gateway]:
    env = service_env(local_stack, e2e_database)
    env["CAIRN_HTTP_PORT"] = "0"  # the other APIs on any free port
    env["CAIRN_POLICY_DIR"] = str(policy_folder(tmp_path_factory.mktemp("gateway-policies"), TENANTS))
    bootstrap = env["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    run_cairn(env, "prompts", "push", str(REPO / "infra/prompts/qa.yaml"), "--label", "production", cwd=REPO)
    run_cairn(env, "docs", "ingest", str(knowledge_dir), cwd=REPO)
    run_cairn(env, "inference", "prepare", cwd=REPO)
    keys = {tenant: create_api_key(env, tenant, name="e2e-gateway") for tenant in TENANTS}
    gateway_port, prompts_port = free_port(), free_port()
    extra = {
        "prompt-store": {"CAIRN_HTTP_PORT": str(prompts_port)},
        "gateway": {
            "CAIRN_HTTP_PORT": str(gateway_port),
            "CAIRN_GATEWAY_PROMPT_STORE_URL": f"http://127.0.0.1:{prompts_port}",
            "CAIRN_GATEWAY_REGISTRY_URL": "",  # no evaluator here: no registry models listed
            "CAIRN_GATEWAY_STREAM_HOLDBACK_CHARS": str(HOLDBACK),
        },
    }
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    manager = ProcessManager(tmp_path_factory.mktemp("e2e-gateway-services"))
    services = ServiceProcesses(manager, env, groups, cwd=REPO)
    with services.running(E2E_SERVICES, extra_env=extra):
        yield Gateway(f"http://127.0.0.1:{gateway_port}", env, keys)


class RequestLog:
    """Reads `cairn.requests` from its end: the request events the gateway published, by request id."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.seen: dict[str, list[RequestSubmittedV1]] = {}

    async def caught_up(self) -> dict[str, list[RequestSubmittedV1]]:
        """Every request event on the topic when called, by request id."""
        ends = await self.consumer.end_offsets(list(self.consumer.assignment()))
        for _ in range(600):
            if all([await self.consumer.position(tp) >= end for tp, end in ends.items()]):
                return self.seen
            for _, event in events_in(await self.consumer.getmany(timeout_ms=100)):
                if isinstance(event, RequestSubmittedV1):
                    self.seen.setdefault(event.request_id, []).append(event)
        raise AssertionError("cairn.requests was not read to its end")


@dataclass
class Answers:
    sync: ChatCompletion
    sync_request_id: str
    retried: ChatCompletion
    retried_request_id: str
    asynchronous: ChatCompletion
    curl: dict[str, Any]
    curl_status: int
    requests: dict[str, list[RequestSubmittedV1]]


async def curl(url: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST `body` to the gateway with curl; (HTTP status, JSON body)."""
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-w", "\n%{http_code}", f"{url}/v1/chat/completions",
        "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
        "-d", json.dumps(body),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()
    text, _, status = out.decode().rpartition("\n")
    return int(status), json.loads(text)


@pytest.fixture(scope="module")
async def answers(gateway: Gateway, kafka_bootstrap: str) -> Answers:
    """One answer from each client, asked together (the model answers them in one batch), and a
    retry of the sync client's request with its Idempotency-Key."""
    log = RequestLog(await consumer_at_end(kafka_bootstrap, RequestSubmittedV1.topic))
    try:
        key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}

        def sync_call() -> Any:
            return gateway.client().chat.completions.with_raw_response.create(
                model="qa", messages=QUESTION, max_tokens=TOKENS, extra_headers=key
            )

        async with gateway.async_client() as client:
            raw, asynchronous, (status, body) = await asyncio.gather(
                asyncio.to_thread(sync_call),
                client.chat.completions.create(model="qa@production", messages=QUESTION, max_tokens=TOKENS),
                curl(
                    gateway.url,
                    gateway.keys["e2e-gw"],
                    {"model": "qa", "messages": QUESTION, "max_tokens": TOKENS},
                ),
            )
        again = await asyncio.to_thread(sync_call)
        return Answers(
            sync=raw.parse(),
            sync_request_id=raw.headers["x-cairn-request-id"],
            retried=again.parse(),
            retried_request_id=again.headers["x-cairn-request-id"],
            asynchronous=asynchronous,
            curl=body,
            curl_status=status,
            requests=dict(await log.caught_up()),
        )
    finally:
        await log.consumer.stop()


def assert_answered(completion: ChatCompletion) -> None:
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content, completion
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= TOKENS


async def test_the_sync_openai_client_gets_a_completed_answer(answers: Answers) -> None:
    assert_answered(answers.sync)
    assert answers.sync.id == f"chatcmpl-{answers.sync_request_id}"
    [request] = answers.requests[answers.sync_request_id]
    assert (request.tenant, request.prompt) == ("e2e-gw", "qa")
    assert request.messages[-1].content == QUESTION[0]["content"]
    assert request.params.max_tokens == TOKENS


async def test_the_async_openai_client_gets_a_completed_answer(answers: Answers) -> None:
    assert_answered(answers.asynchronous)
    request_id = answers.asynchronous.id.removeprefix("chatcmpl-")
    assert answers.requests[request_id][0].prompt == "qa@production"


async def test_curl_gets_an_openai_shaped_answer(answers: Answers) -> None:
    assert answers.curl_status == 200
    assert answers.curl["object"] == "chat.completion"
    assert answers.curl["choices"][0]["message"]["content"]
    assert answers.curl["cairn"]["status"] == "completed"
    assert answers.curl["cairn"]["citations"], "the answer is grounded in retrieved passages"


async def test_a_retry_with_the_idempotency_key_gets_the_same_answer_and_sends_nothing(
    answers: Answers,
) -> None:
    assert answers.retried_request_id == answers.sync_request_id
    assert answers.retried.model_dump() == answers.sync.model_dump()
    assert len(answers.requests[answers.sync_request_id]) == 1  # one request event for both calls


async def test_a_blocked_answer_finishes_for_content_filter(gateway: Gateway) -> None:
    async with gateway.async_client("e2e-gw-block") as client:
        blocked = await client.chat.completions.create(model="qa", messages=QUESTION, max_tokens=TOKENS)
    [choice] = blocked.choices
    assert choice.finish_reason == "content_filter"
    assert choice.message.content is None
    assert choice.message.refusal


async def test_an_invalid_key_is_a_401_for_the_client_and_for_curl(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="cairn_nope_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model="qa", messages=QUESTION)
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    status, body = await curl(gateway.url, "not-a-key", {"model": "qa", "messages": QUESTION})
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"


async def test_models_lists_the_prompts_the_key_can_name(gateway: Gateway) -> None:
    async with gateway.async_client() as client:
        listed = [m.id async for m in client.models.list()]
    assert "qa" in listed
    assert "prompt:qa@production" in listed


async def test_a_held_request_is_a_409_and_its_retry_gets_the_reviewers_answer(gateway: Gateway) -> None:
    client = gateway.client("e2e-gw-hold")
    key = {"Idempotency-Key": f"e2e-held-{uuid.uuid4()}"}

    def ask() -> ChatCompletion:
        return client.chat.completions.create(
            model="qa", messages=QUESTION, max_tokens=TOKENS, extra_headers=key
        )

    with pytest.raises(openai.ConflictError) as raised:
        await asyncio.to_thread(ask)
    held = raised.value
    assert isinstance(held.body, dict)
    message = str(held.body["message"])
    request_id = held.response.headers["x-cairn-request-id"]
    assert held.code == "held_for_review"
    assert held.response.headers["x-should-retry"] == "false"  # the client did not retry by itself
    assert request_id in message
    review = re.search(r"\(review (rev-[0-9a-f-]+)\)", message)
    assert review, message
    await asyncio.to_thread(
        run_cairn,
        gateway.env,
        "safety",
        "reviews",
        "decide",
        review.group(1),
        "edit",
        "--text",
        EDITED,
        cwd=REPO,
    )
    for _ in range(120):  # the safety service answers the decision; the gateway stores the answer
        try:
            final = await asyncio.to_thread(ask)
            break
        except openai.ConflictError:
            await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"{request_id} was still held after the reviewer's decision")
    assert final.id == f"chatcmpl-{request_id}"
    assert final.choices[0].message.content == EDITED
    assert final.choices[0].finish_reason == "stop"


def streamed(chunks: list[Any]) -> tuple[str, str | None, str | None]:
    """(the content, the finish reason, the refusal) of a stream's chunks."""
    content, finish, refused = "", None, None
    for chunk in chunks:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            refused = choice.delta.refusal or refused
            finish = choice.finish_reason or finish
    return content, finish, refused


async def test_the_sync_client_streams_an_answer_with_its_usage(gateway: Gateway) -> None:
    def read() -> list[Any]:
        stream = gateway.client().chat.completions.create(
            model="qa",
            messages=QUESTION,
            max_tokens=TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
        return list(stream)

    chunks = await asyncio.to_thread(read)
    content, finish, _ = streamed(chunks)
    assert content
    assert finish in ("stop", "length")
    assert chunks[0].object == "chat.completion.chunk"
    assert len({c.id for c in chunks}) == 1
    usage = chunks[-1].usage
    assert usage is not None
    assert 0 < usage.completion_tokens <= TOKENS


async def test_the_async_client_streams_an_answer(gateway: Gateway) -> None:
    async with gateway.async_client() as client:
        stream = await client.chat.completions.create(
            model="qa", messages=QUESTION, max_tokens=TOKENS, stream=True
        )
        chunks = [chunk async for chunk in stream]
    content, finish, _ = streamed(chunks)
    assert content
    assert finish in ("stop", "length")


async def test_a_streamed_answer_blocked_at_output_ends_for_content_filter(
    gateway: Gateway, kafka_bootstrap: str
) -> None:
    deltas = await consumer_at_end(kafka_bootstrap, CompletionDeltaGeneratedV1.topic)
    try:
        async with gateway.async_client("e2e-gw-outblock") as client:
            stream = await client.chat.completions.create(
                model="qa", messages=QUESTION, max_tokens=TOKENS, stream=True
            )
            chunks = [chunk async for chunk in stream]
        request_id = chunks[0].id.removeprefix("chatcmpl-")
        pieces: dict[int, str] = {}
        complete = False
        for _ in range(100):  # the generation's deltas, as inference published them
            for _, event in events_in(await deltas.getmany(timeout_ms=100)):
                if isinstance(event, CompletionDeltaGeneratedV1) and event.request_id == request_id:
                    pieces[event.index] = event.text
                    complete = complete or event.last
            if complete:
                break
    finally:
        await deltas.stop()
    content, finish, refused = streamed(chunks)
    assert finish == "content_filter"
    assert refused
    assert chunks[-1].model_extra is not None
    assert chunks[-1].model_extra["cairn"]["status"] == "blocked"
    generated = "".join(pieces[i] for i in sorted(pieces))
    assert generated, "inference streamed the answer before output screening blocked it"
    assert generated.startswith(content)  # what was shown is the generation's start ...
    assert len(content) <= max(0, len(generated) - HOLDBACK)  # ... never its last HOLDBACK characters
