"""SGLang over HTTP: the production backend (a GPU server speaking the OpenAI API).

Chat: `POST /v1/chat/completions` with model, messages, max_tokens, temperature, top_p, stop and
seed. Streaming (the default) measures the time to the first token and asks for usage in the
last chunk (`stream_options.include_usage`); without streaming, usage comes from the response.
While streaming, a request that streams to its client (`domain.deltas.current_progress()`) is told
the text so far as chunks arrive (SGLang sends about one per token); without streaming its whole
text goes out in its last delta.
The text ends before the first stop string, as the OpenAI API defines it: SGLang, vLLM and llama.cpp
cut it off themselves, `transformers serve` returns it, so the backend cuts it where it is left.
A LoRA adapter is named with SGLang's `model:adapter` syntax (or, for older servers, the
`lora_path` field). Adapters are loaded and unloaded at run time with `POST /load_lora_adapter`
and `POST /unload_lora_adapter`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx

from cairn_events import ChatMessage, GenerationParams, TokenUsage
from cairn_inference.domain.chat import chat_dicts
from cairn_inference.domain.completion import (
    AdapterNotFoundError,
    BackendUnavailableError,
    Completion,
    GenerationTimeoutError,
    ModelError,
)
from cairn_inference.domain.deltas import current_progress
from cairn_inference.domain.stops import truncate_at_stop
from cairn_inference.domain.usage import usage_from_openai

__all__ = ["SGLangBackend"]

LoraMode = Literal["model_suffix", "lora_path"]


class SGLangBackend:
    """A `ModelBackend` and `AdapterManager` for an SGLang server."""

    name = "sglang"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        stream: bool = True,
        lora_mode: LoraMode = "model_suffix",
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.stream = stream
        self.lora_mode = lora_mode
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            headers=headers,
            transport=transport,
        )

    @property
    def server_address(self) -> tuple[str, int | None]:
        """Host and port of the server, for telemetry."""
        url = httpx.URL(self.base_url)
        return url.host, url.port

    def request_body(
        self, messages: Sequence[ChatMessage], params: GenerationParams, *, model: str, adapter: str | None
    ) -> dict[str, Any]:
        """The JSON body of `POST /v1/chat/completions` for one generation."""
        body: dict[str, Any] = {
            "model": f"{model}:{adapter}" if adapter and self.lora_mode == "model_suffix" else model,
            "messages": chat_dicts(messages),
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": self.stream,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if adapter and self.lora_mode == "lora_path":
            body["lora_path"] = adapter
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        *,
        model: str,
        adapter: str | None = None,
    ) -> Completion:
        body = self.request_body(messages, params, model=model, adapter=adapter)
        started = time.perf_counter()
        try:
            if self.stream:
                text, finish, usage, served, first = await self._stream(body, started)
            else:
                text, finish, usage, served, first = await self._once(body)
        except httpx.TimeoutException as exc:
            raise GenerationTimeoutError(
                f"SGLang at {self.base_url} did not answer within {self.timeout_s:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendUnavailableError(f"cannot reach SGLang at {self.base_url}: {exc!r}") from exc
        latency = (time.perf_counter() - started) * 1000
        text, stopped = truncate_at_stop(text, params.stop)
        if stopped:
            finish = "stop"
        return Completion(
            text=text,
            finish_reason=finish,
            usage=usage,
            latency_ms=latency,
            ttft_ms=None if first is None else (first - started) * 1000,
            backend=self.name,
            model=_base_model(served) or model,
            adapter=adapter,
        )

    async def _once(self, body: dict[str, Any]) -> tuple[str, str, TokenUsage, str | None, float | None]:
        response = await self._client.post("/v1/chat/completions", json=body)
        _raise_for_status(response, "chat completion")
        data = _json(response)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            finish = choice.get("finish_reason") or "stop"
            usage = usage_from_openai(data.get("usage"))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ModelError(f"unexpected chat completion from SGLang: {exc!r}") from exc
        return text, str(finish), usage, data.get("model"), None

    async def _stream(
        self, body: dict[str, Any], started: float
    ) -> tuple[str, str, TokenUsage, str | None, float | None]:
        parts: list[str] = []
        progress = current_progress()
        finish: str | None = None
        usage: TokenUsage | None = None
        served: str | None = None
        first: float | None = None
        async with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code >= 400:
                await response.aread()
                _raise_for_status(response, "chat completion")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError as exc:
                    raise ModelError(f"SGLang sent an unreadable stream chunk: {payload[:200]!r}") from exc
                if "error" in chunk:
                    raise ModelError(f"SGLang failed mid-stream: {_error_text(chunk)}")
                served = chunk.get("model") or served
                for choice in chunk.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        if first is None:
                            first = time.perf_counter()
                        parts.append(delta)
                        if progress is not None:
                            progress("".join(parts), len(parts))
                    finish = choice.get("finish_reason") or finish
                if chunk.get("usage"):
                    try:
                        usage = usage_from_openai(chunk["usage"])
                    except ValueError as exc:
                        raise ModelError(f"SGLang reported unreadable usage: {exc}") from exc
        if usage is None:
            raise ModelError(
                "SGLang's stream ended without usage (is stream_options.include_usage supported?)"
            )
        return "".join(parts), finish or "stop", usage, served, first

    async def load_adapter(self, name: str, path: str, *, pinned: bool = False) -> None:
        """`POST /load_lora_adapter`: load PEFT adapter files at `path` (as the server sees it) as `name`."""
        body: dict[str, Any] = {"lora_name": name, "lora_path": path}
        if pinned:
            body["pinned"] = True
        await self._adapter_call("/load_lora_adapter", body, f"load adapter {name!r}")

    async def unload_adapter(self, name: str) -> None:
        """`POST /unload_lora_adapter`: forget adapter `name`."""
        await self._adapter_call("/unload_lora_adapter", {"lora_name": name}, f"unload adapter {name!r}")

    async def _adapter_call(self, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            response = await self._client.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise GenerationTimeoutError(
                f"SGLang did not answer to {what} within {self.timeout_s:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendUnavailableError(
                f"cannot reach SGLang at {self.base_url} to {what}: {exc!r}"
            ) from exc
        _raise_for_status(response, what)
        data = _json(response) if response.content else {}
        if data.get("success") is False:
            raise ModelError(f"SGLang refused to {what}: {_error_text(data)}")
        return data

    async def health(self) -> bool:
        """Whether `GET /health` answers 200."""
        try:
            response = await self._client.get("/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._client.aclose()


def _base_model(served: str | None) -> str | None:
    return served.split(":", 1)[0] if served else None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise ModelError(
            f"SGLang answered {response.status_code} with non-JSON: {response.text[:200]!r}"
        ) from exc
    if not isinstance(data, dict):
        raise ModelError(f"SGLang answered with {type(data).__name__}, expected an object")
    return data


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error_message", "message", "detail", "error"):
            if data.get(key):
                return str(data[key])
    return str(data)[:300]


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    try:
        detail = _error_text(response.json())
    except ValueError:
        detail = response.text[:300] or response.reason_phrase
    message = f"SGLang {what} failed with HTTP {response.status_code}: {detail}"
    if response.status_code in (502, 503, 504):
        raise BackendUnavailableError(message)
    if response.status_code == 404 and "lora" in detail.lower():
        raise AdapterNotFoundError(message)
    raise ModelError(message)
