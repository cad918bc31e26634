"""The event models: keys, subjects, immutability, strictness, descriptions, helpers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from cairn_events import (
    EVENT_TYPES,
    ChatMessage,
    DeadLetterKind,
    DeadLetterRecordedV1,
    Event,
    FeedbackSubmittedV1,
    GenerationParams,
    RawHeader,
    RequestSubmittedV1,
    ReviewRequestedV1,
    TokenUsage,
    TuningProgressedV1,
)

NOW = datetime(2025, 3, 4, 9, 15, tzinfo=UTC)


def request(**overrides: Any) -> RequestSubmittedV1:
    fields: dict[str, Any] = {"request_id": "req-1", "prompt": "support-answer", "submitted_at": NOW}
    return RequestSubmittedV1(**{**fields, **overrides})


def models_reachable_from(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for info in model.model_fields.values():
        stack: list[Any] = [info.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in found:
                found |= models_reachable_from(tp)
            stack.extend(getattr(tp, "__args__", ()))
    return found


def test_every_event_type_is_versioned_and_named_after_its_class() -> None:
    assert len(EVENT_TYPES) == 21
    for event_type, event_cls in EVENT_TYPES.items():
        thing, happened, version = event_type.split(".")[1:]
        words = "".join(word.title() for word in thing.split("_"))  # admin_action -> AdminAction
        assert event_cls.__name__ == f"{words}{happened.title()}{version.upper()}".replace(
            "Deadletter", "DeadLetter"
        )
        assert event_cls.topic.startswith("cairn.")
        assert event_cls.key_field in event_cls.model_fields


@pytest.mark.parametrize("event_cls", [EVENT_TYPES[name] for name in sorted(EVENT_TYPES)])
def test_every_field_and_model_is_described(event_cls: type[Event]) -> None:
    for model in models_reachable_from(event_cls):
        assert (model.__doc__ or "").strip(), model
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


def test_partition_key_and_subject_of_a_request() -> None:
    event = request(request_id="req-42")
    assert event.partition_key() == "req-42"
    assert event.subject() == "req-42"


def test_subject_is_the_request_id_even_when_keyed_otherwise() -> None:
    review = ReviewRequestedV1(
        review_id="rev-1",
        request_id="req-9",
        tenant="acme",
        stage="output",
        verdict="review",
        findings=[],
        text="...",
        requested_at=NOW,
    )
    assert review.partition_key() == "req-9"
    assert review.subject() == "req-9"


def test_events_without_a_request_have_no_subject() -> None:
    progress = TuningProgressedV1(job_id="job-1", state="running", step=3, progressed_at=NOW)
    assert progress.partition_key() == "job-1"
    assert progress.subject() is None


def test_defaults_of_a_minimal_request() -> None:
    event = request()
    assert event.tenant == "default"
    assert event.variables == {}
    assert event.messages == []
    assert event.retrieval is None
    assert event.params == GenerationParams(max_tokens=256, temperature=0.0, top_p=1.0, stop=[], seed=None)


def test_mutable_defaults_are_not_shared() -> None:
    first, second = request(), request()
    first.messages.append(ChatMessage(role="user", content="hello"))
    assert second.messages == []


def test_events_are_frozen_and_reject_unknown_fields() -> None:
    event = request()
    with pytest.raises(ValidationError):
        event.tenant = "other"
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        request(colour="blue")


@pytest.mark.parametrize("request_id", ["", "has space", "x" * 129, "slash/no", "émoji"])
def test_request_id_pattern_rejects(request_id: str) -> None:
    with pytest.raises(ValidationError):
        request(request_id=request_id)


@pytest.mark.parametrize(
    "request_id", ["a", "req-01J9Z6T4K8Q2V7W3X5Y1A0B2C3", "tenant:acme.req_7", "x" * 128]
)
def test_request_id_pattern_accepts(request_id: str) -> None:
    assert request(request_id=request_id).request_id == request_id


@pytest.mark.parametrize("prompt", ["support-answer", "support-answer@production", "team/faq:12", "a"])
def test_prompt_reference_accepts(prompt: str) -> None:
    assert request(prompt=prompt).prompt == prompt


@pytest.mark.parametrize("prompt", ["", "-lead", "name:0", "name:v2", "name@", "a@b:1", "two words"])
def test_prompt_reference_rejects(prompt: str) -> None:
    with pytest.raises(ValidationError):
        request(prompt=prompt)


def test_timestamps_must_carry_an_offset() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        request(submitted_at=datetime(2025, 3, 4, 9, 15))


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 0), ("max_tokens", 8193), ("temperature", 2.5), ("top_p", 0.0), ("seed", 2**63)],
)
def test_generation_params_bounds(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        GenerationParams(**{field: value})


def test_non_finite_floats_are_rejected() -> None:
    with pytest.raises(ValidationError):
        GenerationParams(temperature=float("nan"))


def test_feedback_rating_is_one_to_five() -> None:
    base: dict[str, Any] = {"feedback_id": "fb-1", "request_id": "req-1", "submitted_at": NOW}
    assert FeedbackSubmittedV1(**base, rating=5).rating == 5
    with pytest.raises(ValidationError):
        FeedbackSubmittedV1(**base, rating=6)


def test_token_usage_total() -> None:
    assert TokenUsage(input_tokens=10, output_tokens=5).total_tokens == 15


def test_dead_letter_keeps_the_original_message_byte_for_byte() -> None:
    value = b"\xff\x00not json"
    event = DeadLetterRecordedV1.from_message(
        kind=DeadLetterKind.NOT_JSON,
        reason="not UTF-8 JSON",
        topic="cairn.requests",
        partition=2,
        offset=18,
        consumer_group="cairn-audit",
        key=b"req-1",
        value=value,
        headers=[("ce_type", b"cairn.request.submitted.v1"), ("empty", None)],
        at=NOW,
    )
    assert event.original_value() == value
    assert event.original_key() == b"req-1"
    assert event.original_headers[0].value_bytes() == b"cairn.request.submitted.v1"
    assert event.original_headers[1] == RawHeader(key="empty", value_b64="")
    assert event.partition_key() == "cairn.requests"
    assert event.subject() is None


def test_dead_letter_without_key() -> None:
    event = DeadLetterRecordedV1.from_message(
        kind=DeadLetterKind.HANDLER_FAILED,
        reason="boom",
        topic="cairn.prompts",
        partition=0,
        offset=0,
        consumer_group="cairn-retriever",
        key=None,
        value=None,
        headers=[],
        at=NOW,
    )
    assert event.original_key() is None
    assert event.original_value() == b""


def test_raw_header_rejects_non_base64() -> None:
    with pytest.raises(ValidationError):
        RawHeader(key="k", value_b64="not base64!")
    assert RawHeader.from_bytes("k", b"\x01\x02").value_b64 == base64.b64encode(b"\x01\x02").decode()


def test_a_concrete_event_must_declare_an_existing_key_field() -> None:
    with pytest.raises(TypeError, match="key_field"):

        class Broken(Event):
            event_type: ClassVar[str] = "cairn.broken.happened.v1"
            topic: ClassVar[str] = "cairn.broken"
            key_field: ClassVar[str] = "nope"

            thing_id: str

    with pytest.raises(TypeError, match="must declare"):

        class HalfDeclared(Event):
            event_type: ClassVar[str] = "cairn.half.declared.v1"

            thing_id: str
