"""The HTTP (OpenAI-compatible) backend against a real server: `transformers serve` on SmolLM2.

`test_inference_sglang.py` pins the request bodies and the error mapping against a mocked
transport; this module runs the same `SGLangBackend` against a real OpenAI-compatible server, the
one the installed `transformers` ships (`cairn_testing.openai_server`), offline, on the converted
SmolLM2-135M-Instruct: streamed and plain generation, usage, time to first token, progress,
`max_tokens`, stop strings, reproducibility, concurrent requests, and a server that is down or slow.

Where this server differs from SGLang, and what is tested instead:
- it returns the stop string at the end of the text (SGLang cuts it off): the backend cuts it;
- it ignores `stream_options` and always sends usage in the last chunk;
- it samples only where the model's generation config turns sampling on, and SmolLM2's does not:
  `temperature` and `seed` are accepted and ignored, every answer is greedy. Seeded sampling is
  therefore not exercised here; what is tested is what holds on any server: the same seeded
  request answers the same text;
- it serves one model and has no LoRA endpoints: adapters are not tested here (the mocked suite
  covers SGLang's), only that asking for one fails with a clear error.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn_events import ChatMessage, GenerationParams
from cairn_inference.adapters.conversion import MANIFEST, ensure_converted
from cairn_inference.adapters.sglang import SGLangBackend
from cairn_inference.domain.completion import (
    BackendUnavailableError,
    Completion,
    GenerationTimeoutError,
    ModelError,
)
from cairn_inference.domain.deltas import DeltaChunker, reporting_to
from cairn_localstack.process import ProcessManager
from cairn_testing.openai_server import PROCESS_NAME, OpenAIServer, transformers_serve
from cairn_testing.processes import free_port

from .conftest import REAL_MODEL_DIR

# Always runs: the module's server fixture converts SmolLM2 first when it is not converted yet (once, as
# `cairn inference prepare` does; the end-to-end tests then find it up to date).
pytestmark = pytest.mark.integration

QUESTION = [ChatMessage(role="user", content="What is the capital of France?")]
SHORT = GenerationParams(max_tokens=12)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAIServer]:
    """`transformers serve` on the converted SmolLM2 (converted here first when missing: tens of seconds),
    for the whole module (it starts in ~20 s)."""
    if not (REAL_MODEL_DIR / MANIFEST).is_file():
        ensure_converted(REAL_MODEL_DIR)
    with transformers_serve(REAL_MODEL_DIR, tmp_path_factory.mktemp("openai-server")) as running:
        yield running


@pytest.fixture(scope="module")
async def answer(server: OpenAIServer) -> Completion:
    """The plain (non-streamed) greedy answer to `QUESTION` with `SHORT`, which other requests are
    compared with."""
    return await generate(server, stream=False)


async def generate(
    server: OpenAIServer, params: GenerationParams = SHORT, *, stream: bool = True, timeout_s: float = 120.0
) -> Completion:
    backend = SGLangBackend(server.base_url, stream=stream, timeout_s=timeout_s)
    try:
        return await backend.generate(QUESTION, params, model=server.model)
    finally:
        await backend.aclose()


async def test_streamed_and_plain_generation_agree_on_text_and_usage(
    server: OpenAIServer, answer: Completion
) -> None:
    streamed = await generate(server, stream=True)
    plain = answer
    assert "Paris" in streamed.text
    assert streamed.text == plain.text  # greedy
    assert streamed.finish_reason == plain.finish_reason == "stop"
    assert streamed.usage == plain.usage
    assert streamed.usage.input_tokens > 0
    assert 0 < streamed.usage.output_tokens < SHORT.max_tokens
    assert streamed.ttft_ms is not None
    assert 0 < streamed.ttft_ms <= streamed.latency_ms
    assert plain.ttft_ms is None
    assert streamed.model == plain.model == server.model
    assert streamed.backend == "sglang"


async def test_a_streamed_request_reports_its_growing_text(server: OpenAIServer) -> None:
    reports: list[tuple[str, int]] = []
    with reporting_to(lambda text, tokens: reports.append((text, tokens))):
        completion = await generate(server, stream=True)
    assert len(reports) > 1, "the server streams about one chunk per token"
    assert len(reports) <= completion.usage.output_tokens
    assert [tokens for _, tokens in reports] == list(range(1, len(reports) + 1))
    texts = [text for text, _ in reports]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert texts[-1] == completion.text
    chunker = DeltaChunker(every_tokens=1)
    sent = "".join(piece for text, tokens in reports if (piece := chunker.offer(text, tokens, 0.0)))
    assert sent == completion.text


@pytest.mark.parametrize("stream", [True, False])
async def test_max_tokens_ends_the_answer_with_finish_length(server: OpenAIServer, stream: bool) -> None:
    completion = await generate(server, GenerationParams(max_tokens=3), stream=stream)
    assert completion.finish_reason == "length"
    assert completion.usage.output_tokens == 3
    assert completion.text


async def test_the_answer_ends_before_a_stop_string(server: OpenAIServer, answer: Completion) -> None:
    whole = answer
    stop = " " + whole.text.split()[2]  # the third word: "The capital of ..."
    params = GenerationParams(max_tokens=SHORT.max_tokens, stop=[stop])
    for stream in (True, False):
        stopped = await generate(server, params, stream=stream)
        assert stopped.text == whole.text[: whole.text.index(stop)], stream
        assert stopped.finish_reason == "stop"
        assert stopped.usage.output_tokens < whole.usage.output_tokens


async def test_the_same_seeded_request_answers_the_same_text(server: OpenAIServer) -> None:
    params = GenerationParams(max_tokens=8, temperature=0.8, seed=7)
    first = await generate(server, params, stream=False)
    second = await generate(server, params, stream=False)
    assert first.text == second.text
    assert first.usage == second.usage


async def test_concurrent_requests_each_get_the_answer_they_would_get_alone(
    server: OpenAIServer, answer: Completion
) -> None:
    together = await asyncio.gather(*(generate(server, stream=stream) for stream in (True, False, True)))
    assert [c.text for c in together] == [answer.text] * 3
    assert [c.usage for c in together] == [answer.usage] * 3


async def test_an_adapter_is_refused_clearly(server: OpenAIServer) -> None:
    backend = SGLangBackend(server.base_url)
    try:
        with pytest.raises(ModelError, match="HTTP 400"):
            await backend.generate(QUESTION, SHORT, model=server.model, adapter="support-v2")
        with pytest.raises(ModelError, match="HTTP 404"):
            await backend.load_adapter("support-v2", "/adapters/support-v2")
    finally:
        await backend.aclose()


async def test_health_answers_while_the_server_runs(server: OpenAIServer) -> None:
    backend = SGLangBackend(server.base_url)
    assert await backend.health() is True
    await backend.aclose()


async def test_a_server_that_is_down_is_unavailable() -> None:
    backend = SGLangBackend(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendUnavailableError, match="cannot reach"):
        await backend.generate(QUESTION, SHORT, model="SmolLM2-135M-Instruct")
    assert await backend.health() is False
    await backend.aclose()


async def test_a_generation_slower_than_the_timeout_times_out(server: OpenAIServer) -> None:
    # 16 tokens of a 30-layer model take far longer on CPU than 50 ms, and the plain (non-streamed)
    # answer only comes once they are all generated
    with pytest.raises(GenerationTimeoutError, match=r"within 0\.05 s"):
        await generate(server, GenerationParams(max_tokens=16), stream=False, timeout_s=0.05)


def test_a_server_that_does_not_answer_in_time_fails_and_is_stopped(tmp_path: Path) -> None:
    with (
        pytest.raises(TimeoutError, match=r"did not answer .*/health within 1 s"),
        transformers_serve(REAL_MODEL_DIR, tmp_path, startup_timeout=1),
    ):
        pass
    assert not ProcessManager(tmp_path).is_running(PROCESS_NAME)
    assert "starting transformers-serve" in ProcessManager(tmp_path).tail(PROCESS_NAME)


def test_a_server_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with (
        pytest.raises(RuntimeError, match=r"exited while starting:\n(.|\n)*Error"),
        transformers_serve(not_a_model, tmp_path / "run"),
    ):
        pass
