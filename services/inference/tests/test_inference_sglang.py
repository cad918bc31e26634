"""The SGLang adapter against fake servers: request bodies, usage, streaming, LoRA endpoints, errors."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from cairn_events import ChatMessage, GenerationParams, TokenUsage
from cairn_inference.adapters.sglang import SGLangBackend
from cairn_inference.domain.completion import (
    AdapterNotFoundError,
    BackendUnavailableError,
    GenerationTimeoutError,
    ModelError,
)
from cairn_inference.ports import AdapterManager, ModelBackend

URL = "http://sglang.test:30000"
MESSAGES = [
    ChatMessage(role="user", content="How long do refunds take?"),
    ChatMessage(role="system", content="Be brief."),
]
PARAMS = GenerationParams(max_tokens=64, temperature=0.2, top_p=0.9, stop=["\nUser:"], seed=7)


class FakeSGLang:
    """An httpx MockTransport handler that records requests and answers like SGLang."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.respond = respond or self.ok

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    @staticmethod
    def ok(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        if request.url.path == "/v1/chat/completions" and body.get("stream"):
            chunks = [
                {
                    "id": "1",
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {"role": "assistant"}}],
                },
                {"id": "1", "model": body["model"], "choices": [{"index": 0, "delta": {"content": "Five "}}]},
                {
                    "id": "1",
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {"content": "days."}, "finish_reason": "stop"}],
                },
                {
                    "id": "1",
                    "model": body["model"],
                    "choices": [],
                    "usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24},
                },
            ]
            text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
        if request.url.path == "/v1/chat/completions":
            return httpx.Response(
                200,
                json={
                    "id": "1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Five days."},
                            "finish_reason": "length",
                        }
                    ],
                    "usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24},
                },
            )
        if request.url.path in ("/load_lora_adapter", "/unload_lora_adapter"):
            return httpx.Response(200, json={"success": True, "error_message": "", "loaded_adapters": {}})
        return httpx.Response(404, json={"detail": "Not Found"})


def backend(fake: FakeSGLang, **options: Any) -> SGLangBackend:
    return SGLangBackend(URL, transport=httpx.MockTransport(fake), **options)


async def test_it_is_a_model_backend_and_an_adapter_manager() -> None:
    sglang = backend(FakeSGLang())
    assert isinstance(sglang, ModelBackend)
    assert isinstance(sglang, AdapterManager)
    await sglang.aclose()


async def test_a_streamed_chat_completion_sends_the_openai_body_and_reads_usage() -> None:
    fake = FakeSGLang()
    sglang = backend(fake, api_key="s3cret")
    completion = await sglang.generate(MESSAGES, PARAMS, model="Qwen2.5-7B-Instruct")
    await sglang.aclose()
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url == f"{URL}/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert fake.bodies()[0] == {
        "model": "Qwen2.5-7B-Instruct",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "How long do refunds take?"},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["\nUser:"],
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert completion.text == "Five days."
    assert completion.finish_reason == "stop"
    assert completion.usage == TokenUsage(input_tokens=21, output_tokens=3)
    assert completion.backend == "sglang"
    assert completion.model == "Qwen2.5-7B-Instruct"
    assert completion.ttft_ms is not None
    assert 0 <= completion.ttft_ms <= completion.latency_ms


async def test_without_streaming_usage_comes_from_the_response_and_there_is_no_ttft() -> None:
    fake = FakeSGLang()
    sglang = backend(fake, stream=False)
    completion = await sglang.generate(MESSAGES, GenerationParams(), model="m")
    await sglang.aclose()
    body = fake.bodies()[0]
    assert body["stream"] is False
    assert "stream_options" not in body
    assert "stop" not in body
    assert "seed" not in body
    assert (completion.text, completion.finish_reason, completion.ttft_ms) == ("Five days.", "length", None)
    assert completion.usage == TokenUsage(input_tokens=21, output_tokens=3)


@pytest.mark.parametrize("stream", [True, False])
async def test_a_stop_string_the_server_returns_is_cut_off(stream: bool) -> None:
    """`transformers serve` returns the stop string (SGLang cuts it): the completion ends before it."""

    def with_stop(request: httpx.Request) -> httpx.Response:
        answer = FakeSGLang.ok(request)
        content = answer.content.replace(b"days.", b"days.\\nUser: and")
        return httpx.Response(200, content=content, headers={"content-type": answer.headers["content-type"]})

    sglang = backend(FakeSGLang(with_stop), stream=stream)
    completion = await sglang.generate(MESSAGES, PARAMS, model="m")
    await sglang.aclose()
    assert completion.text == "Five days."
    assert completion.finish_reason == "stop"


async def test_an_adapter_is_named_model_colon_adapter_or_sent_as_lora_path() -> None:
    fake = FakeSGLang()
    sglang = backend(fake)
    completion = await sglang.generate(MESSAGES, GenerationParams(), model="base", adapter="support-v2")
    await sglang.aclose()
    assert fake.bodies()[0]["model"] == "base:support-v2"
    assert "lora_path" not in fake.bodies()[0]
    assert completion.adapter == "support-v2"
    assert completion.model == "base"

    fake = FakeSGLang()
    sglang = backend(fake, lora_mode="lora_path")
    await sglang.generate(MESSAGES, GenerationParams(), model="base", adapter="support-v2")
    await sglang.aclose()
    assert fake.bodies()[0]["model"] == "base"
    assert fake.bodies()[0]["lora_path"] == "support-v2"


async def test_lora_adapters_are_loaded_and_unloaded_through_their_endpoints() -> None:
    fake = FakeSGLang()
    sglang = backend(fake)
    await sglang.load_adapter("support-v2", "s3://cairn/adapters/support-v2")
    await sglang.load_adapter("pinned-one", "/models/pinned", pinned=True)
    await sglang.unload_adapter("support-v2")
    await sglang.aclose()
    assert [r.url.path for r in fake.requests] == [
        "/load_lora_adapter",
        "/load_lora_adapter",
        "/unload_lora_adapter",
    ]
    assert fake.bodies() == [
        {"lora_name": "support-v2", "lora_path": "s3://cairn/adapters/support-v2"},
        {"lora_name": "pinned-one", "lora_path": "/models/pinned", "pinned": True},
        {"lora_name": "support-v2"},
    ]


async def test_a_refused_adapter_load_raises_with_the_servers_message() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"success": False, "error_message": "LoRA rank 128 exceeds max_lora_rank 64"}
        )

    sglang = backend(FakeSGLang(refuse))
    with pytest.raises(ModelError, match="exceeds max_lora_rank 64"):
        await sglang.load_adapter("big", "/models/big")
    await sglang.aclose()

    def soft_refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"success": False, "error_message": "adapter support-v9 not found"})

    sglang = backend(FakeSGLang(soft_refuse))
    with pytest.raises(ModelError, match="refused to unload adapter 'support-v9'"):
        await sglang.unload_adapter("support-v9")
    await sglang.aclose()


@pytest.mark.parametrize(
    ("status", "payload", "error", "message"),
    [
        (
            400,
            {"object": "error", "message": "max_tokens is too large", "code": 400},
            ModelError,
            "HTTP 400: max_tokens is too large",
        ),
        (404, {"error": {"message": "LoRA adapter 'x' not loaded"}}, AdapterNotFoundError, "not loaded"),
        (503, {"detail": "server is starting"}, BackendUnavailableError, "HTTP 503: server is starting"),
        (500, "Internal Server Error", ModelError, "HTTP 500: Internal Server Error"),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
async def test_http_errors_become_clear_inference_errors(
    status: int, payload: object, error: type[Exception], message: str, stream: bool
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        if isinstance(payload, str):
            return httpx.Response(status, text=payload)
        return httpx.Response(status, json=payload)

    sglang = backend(FakeSGLang(fail), stream=stream)
    with pytest.raises(error, match=message):
        await sglang.generate(MESSAGES, PARAMS, model="m")
    await sglang.aclose()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('data: {"choices": [{"delta": {"content": "x"}}]}\n\ndata: [DONE]\n\n', "without usage"),
        ("data: {not json\n\n", "unreadable stream chunk"),
        ('data: {"error": {"message": "CUDA out of memory"}}\n\n', "CUDA out of memory"),
    ],
)
async def test_broken_streams_are_model_errors(body: str, message: str) -> None:
    sglang = backend(FakeSGLang(lambda request: httpx.Response(200, text=body)))
    with pytest.raises(ModelError, match=message):
        await sglang.generate(MESSAGES, PARAMS, model="m")
    await sglang.aclose()


async def test_a_response_without_usage_is_a_model_error() -> None:
    def no_usage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}
        )

    sglang = backend(FakeSGLang(no_usage), stream=False)
    with pytest.raises(ModelError, match="usage"):
        await sglang.generate(MESSAGES, PARAMS, model="m")
    await sglang.aclose()


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A local TCP server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("stream", [True, False])
async def test_a_server_that_does_not_answer_times_out(silent_server: str, stream: bool) -> None:
    sglang = SGLangBackend(silent_server, timeout_s=0.2, stream=stream)
    with pytest.raises(GenerationTimeoutError, match=r"did not answer within 0\.2 s"):
        await sglang.generate(MESSAGES, PARAMS, model="m")
    with pytest.raises(GenerationTimeoutError):
        await sglang.load_adapter("a", "/a")
    await sglang.aclose()


async def test_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sglang = SGLangBackend(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(BackendUnavailableError, match="cannot reach SGLang"):
        await sglang.generate(MESSAGES, PARAMS, model="m")
    with pytest.raises(BackendUnavailableError):
        await sglang.unload_adapter("a")
    assert await sglang.health() is False
    await sglang.aclose()


async def test_health_is_true_when_the_server_answers() -> None:
    sglang = backend(FakeSGLang(lambda request: httpx.Response(200)))
    assert await sglang.health() is True
    await sglang.aclose()
