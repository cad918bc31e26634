"""OpenAI's chat completion request and response, as far as the gateway serves them.

Only what Cairn can honour is read; OpenAI parameters with no Cairn meaning (`frequency_penalty`,
`logprobs`, ...) are accepted and ignored, the ones whose silent loss would change the answer
(`n` > 1, `tools`, `functions`) are refused. Two Cairn extensions ride in the body (the `openai`
client sends them with `extra_body=`): `variables` (the prompt template's variables) and
`metadata` (string labels kept with the request, as OpenAI's own `metadata`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cairn_events import JsonScalar


class ContentPart(BaseModel):
    """One part of a message's content; only `text` parts carry meaning here."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="The part's kind: `text` (others are refused).")
    text: str | None = Field(None, description="The text of a `text` part.")


class StreamOptions(BaseModel):
    """`stream_options` of a streamed request."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = Field(False, description="Send a last chunk with the token usage.")


class ChatTurn(BaseModel):
    """One message of `messages`."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"] = Field(
        description="Who speaks; `developer` is read as `system`; `tool`/`function` are refused."
    )
    content: str | list[ContentPart] | None = Field(None, description="The text, or text parts.")
    name: str | None = Field(None, description="Ignored.")


class ChatCompletionRequest(BaseModel):
    """The body of `POST /v1/chat/completions`."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, description="A prompt and/or model reference (see docs/gateway.md).")
    messages: list[ChatTurn] = Field(min_length=1, description="The conversation.")
    stream: bool = Field(False, description="Answer as server-sent `chat.completion.chunk` events.")
    stream_options: StreamOptions | None = Field(None, description="Options of a streamed answer.")
    temperature: float | None = Field(None, description="Sampling temperature (0 .. 2).")
    top_p: float | None = Field(None, description="Nucleus sampling mass (0 .. 1].")
    max_tokens: int | None = Field(None, description="Most tokens to generate.")
    max_completion_tokens: int | None = Field(None, description="Same as `max_tokens` (newer name).")
    seed: int | None = Field(None, description="Seed for reproducible sampling.")
    stop: str | list[str] | None = Field(None, description="Stop sequences.")
    service_tier: str | None = Field(
        None,
        description="OpenAI's processing tier, mapped to Cairn's latency class for inference's routing "
        "policy: `flex` → batch, `priority` → interactive, `default`/`auto` → none (docs/routing.md).",
    )
    user: str | None = Field(None, description="Pseudonymous end-user id: the request's `user_id`.")
    n: int | None = Field(None, description="Choices wanted: only 1.")
    tools: list[Any] | None = Field(None, description="Refused: tool calls are not served.")
    functions: list[Any] | None = Field(None, description="Refused: function calls are not served.")
    variables: dict[str, JsonScalar] = Field({}, description="Cairn: the prompt template's variables.")
    metadata: dict[str, str] = Field({}, description="Cairn/OpenAI: string labels kept with the request.")
