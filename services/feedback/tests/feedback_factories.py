"""Builders of the events the feedback service consumes, and of a ready-made request trail.

Loaded by path (`cairn_testing.suites.load_suite`): test files cannot import each other.
"""

from __future__ import annotations

from typing import Any

from cairn_events import FeedbackSubmittedV1, InputScreenedV1, RequestSubmittedV1, ResponseCompletedV1

QUESTION = "How do I reset my password?"
ANSWER = "Open Settings, then Security, and choose Reset password."
SYSTEM = "You are the support assistant. Answer from the context."


def at(second: int) -> str:
    """An RFC 3339 time `second` seconds after a fixed moment."""
    return f"2025-03-04T09:{second // 60:02d}:{second % 60:02d}Z"


def request(request_id: str = "req-1", **fields: Any) -> RequestSubmittedV1:
    data: dict[str, Any] = {
        "request_id": request_id,
        "tenant": "acme",
        "prompt": "qa",
        "variables": {"topic": "accounts"},
        "messages": [{"role": "user", "content": QUESTION}],
        "user_id": "u-7",
        "submitted_at": at(0),
    }
    data.update(fields)
    return RequestSubmittedV1.model_validate(data)


def screening(request_id: str = "req-1", question: str = QUESTION, **fields: Any) -> InputScreenedV1:
    data: dict[str, Any] = {
        "request_id": request_id,
        "tenant": "acme",
        "verdict": "allow",
        "findings": [],
        "policy": "default@1",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        "chunks": [],
        "prompt_name": "qa",
        "prompt_version": 3,
        "params": {},
        "screened_at": at(1),
    }
    data.update(fields)
    return InputScreenedV1.model_validate(data)


def response(request_id: str = "req-1", text: str | None = ANSWER, **fields: Any) -> ResponseCompletedV1:
    data: dict[str, Any] = {
        "request_id": request_id,
        "tenant": "acme",
        "status": "completed" if text is not None else "failed",
        "text": text,
        "model": "cairn-qa",
        "model_version": "2",
        "adapter": "cairn-qa:2",
        "prompt_name": "qa",
        "prompt_version": 3,
        "completed_at": at(2),
    }
    data.update(fields)
    return ResponseCompletedV1.model_validate(data)


def feedback(feedback_id: str = "fb-1", request_id: str = "req-1", **fields: Any) -> FeedbackSubmittedV1:
    data: dict[str, Any] = {
        "feedback_id": feedback_id,
        "request_id": request_id,
        "tenant": "acme",
        "submitted_at": at(10),
    }
    data.update(fields)
    return FeedbackSubmittedV1.model_validate(data)


def request_events(
    request_id: str, question: str = QUESTION, answer: str | None = ANSWER, **req: Any
) -> list[Any]:
    """The request, its screened input and its response (no feedback)."""
    return [
        request(request_id, **req),
        screening(request_id, question),
        response(request_id, answer),
    ]
