"""What the evaluator keeps of live traffic: one record per response, request, feedback and rendered
prompt (with an experiment variant), and the alerts it raised. Plus the rules that make them."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cairn_events import ChatMessage, JsonScalar, ResponseStatus, Verdict

__all__ = [
    "EVALUATOR_USER",
    "AlertFiring",
    "FeedbackRecord",
    "PromptAttribution",
    "RequestRecord",
    "ResponseRecord",
    "is_refusal",
    "model_label",
    "prompt_name_of",
    "prompt_text_length",
    "question_of",
    "sampled",
]

EVALUATOR_USER = "cairn-evaluator"
"""The user id of the evaluator's own requests (never observed as live traffic)."""

_FROZEN = ConfigDict(frozen=True)


class ResponseRecord(BaseModel):
    """One live response: who, which prompt and model, how it ended, tokens, groundedness."""

    model_config = _FROZEN

    event_id: str
    request_id: str
    tenant: str
    prompt_name: str | None = None
    prompt_version: int | None = None
    model: str | None = None
    model_version: str | None = None
    status: ResponseStatus
    refused: bool
    input_tokens: int | None = None
    output_tokens: int | None = None
    groundedness: float | None = None
    """None when not scored (not sampled, not completed, or no citations)."""
    completed_at: datetime

    @property
    def prompt_key(self) -> str:
        """`name:version`, or `-` when the prompt was never resolved."""
        if self.prompt_name is None:
            return "-"
        return f"{self.prompt_name}:{self.prompt_version}" if self.prompt_version else self.prompt_name

    @property
    def model_key(self) -> str:
        """`model:version`, the model alone, or `-`."""
        return model_label(self.model, self.model_version)


class RequestRecord(BaseModel):
    """One live request: its prompt, the length of the user's input, the question's embedding (sampled)."""

    model_config = _FROZEN

    event_id: str
    request_id: str
    tenant: str
    prompt_name: str
    prompt_length: int
    embedding: list[float] | None = None
    submitted_at: datetime


class FeedbackRecord(BaseModel):
    """One feedback on a live answer (joined to its response by request id when read)."""

    model_config = _FROZEN

    event_id: str
    feedback_id: str
    request_id: str
    tenant: str
    rating: int | None = None
    thumbs: Literal["up", "down"] | None = None
    submitted_at: datetime


class PromptAttribution(BaseModel):
    """The experiment and variant the prompt store chose for a request."""

    model_config = _FROZEN

    event_id: str
    request_id: str
    tenant: str
    prompt_name: str
    prompt_version: int
    experiment: str | None = None
    variant: str | None = None
    rendered_at: datetime

    @property
    def variant_key(self) -> str:
        """`experiment/variant` (either may be missing)."""
        return f"{self.experiment or '-'}/{self.variant or '-'}"


class AlertFiring(BaseModel):
    """One firing of an alert; `key` (alert name and scope) is what the cooldown applies to."""

    model_config = _FROZEN

    alert_id: str
    key: str
    alert_name: str
    severity: Literal["info", "warning", "critical"]
    summary: str
    labels: dict[str, str]
    value: float | None = None
    raised_at: datetime
    published: bool = False


def sampled(key: str, rate: float) -> bool:
    """Deterministic sampling: the same key is always in or always out (a hash below the rate)."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def is_refusal(status: ResponseStatus, verdict: Verdict | None) -> bool:
    """Blocked or rejected, or an output screening verdict of block."""
    return status in (ResponseStatus.BLOCKED, ResponseStatus.REJECTED) or verdict is Verdict.BLOCK


def prompt_name_of(ref: str) -> str:
    """The prompt name of a reference `name`, `name@label` or `name:version`."""
    return ref.split("@", 1)[0].split(":", 1)[0]


def question_of(variables: dict[str, JsonScalar], messages: list[ChatMessage]) -> str | None:
    """The user's question: the `question` variable, else the last user message; None when neither."""
    question = variables.get("question")
    if isinstance(question, str) and question.strip():
        return question
    for message in reversed(messages):
        if message.role == "user" and message.content.strip():
            return message.content
    return None


def prompt_text_length(variables: dict[str, JsonScalar], messages: list[ChatMessage]) -> int:
    """Characters of the user's input: string variables and message contents."""
    return sum(len(v) for v in variables.values() if isinstance(v, str)) + sum(
        len(m.content) for m in messages
    )


def model_label(model: str | None, version: str | None) -> str:
    """`model:version`, the model alone, or `-`."""
    if model is None:
        return "-"
    if version is None or model.endswith(f":{version}"):
        return model
    return f"{model}:{version}"
