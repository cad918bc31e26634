"""JSON and Avro codecs: encodings, and the DecodeError kinds a dead-letter router relies on."""

from __future__ import annotations

import io
import json
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro import schemaless_writer

from cairn_events import (
    CONTENT_TYPE_AVRO,
    CONTENT_TYPE_JSON,
    ChatMessage,
    DeadLetterKind,
    DecodeError,
    RequestSubmittedV1,
    decode,
    encode,
)
from cairn_events.avro_schema import avro_schema

SUBMITTED = "cairn.request.submitted.v1"
EVENT = RequestSubmittedV1(
    request_id="req-1",
    tenant="acme",
    prompt="support-answer@production",
    variables={"tier": "gold", "orders": 3, "score": 4.5, "vip": True},
    messages=[ChatMessage(role="user", content="Où est ma commande ?")],
    submitted_at=datetime(2025, 3, 4, 9, 15, 22, 481000, tzinfo=UTC),
)


def kind_of(
    data: bytes, content_type: str = CONTENT_TYPE_JSON, event_type: str = SUBMITTED
) -> DeadLetterKind:
    with pytest.raises(DecodeError) as caught:
        decode(event_type, data, content_type)
    return caught.value.kind


def test_json_is_compact_utf8_of_the_json_dump() -> None:
    data = encode(EVENT)
    assert (
        data == json.dumps(EVENT.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert "Où est ma commande ?".encode() in data
    assert b'"submitted_at":"2025-03-04T09:15:22.481000Z"' in data


@pytest.mark.parametrize("content_type", [CONTENT_TYPE_JSON, CONTENT_TYPE_AVRO])
def test_round_trip_keeps_scalar_types_of_variables(content_type: str) -> None:
    decoded = decode(SUBMITTED, encode(EVENT, content_type), content_type)
    assert decoded == EVENT
    assert isinstance(decoded, RequestSubmittedV1)
    assert [type(value) for value in decoded.variables.values()] == [str, int, float, bool]


def test_avro_is_schemaless_binary_of_the_avsc() -> None:
    buffer = io.BytesIO()
    schemaless_writer(buffer, avro_schema(RequestSubmittedV1), EVENT.model_dump(mode="json"))
    assert encode(EVENT, CONTENT_TYPE_AVRO) == buffer.getvalue()


def test_content_type_parameters_are_ignored() -> None:
    assert decode(SUBMITTED, encode(EVENT), "Application/JSON; charset=utf-8") == EVENT


def test_encode_rejects_other_content_types() -> None:
    with pytest.raises(ValueError, match="unsupported content type"):
        encode(EVENT, "text/plain")


@pytest.mark.parametrize("data", [b"", b"\xff\xfe\x00", b"{", b'{"request_id": "\xff"}', b"nan", b"[" * 5000])
def test_bytes_that_are_not_json(data: bytes) -> None:
    assert kind_of(data) is DeadLetterKind.NOT_JSON


@pytest.mark.parametrize("data", [b"[]", b"42", b'"text"', b"null"])
def test_json_that_is_not_an_object(data: bytes) -> None:
    with pytest.raises(DecodeError, match="not a JSON object") as caught:
        decode(SUBMITTED, data)
    assert caught.value.kind is DeadLetterKind.SCHEMA_INVALID


def test_schema_invalid_names_every_field_path() -> None:
    payload: dict[str, Any] = {
        "request_id": "has space",
        "prompt": "support-answer",
        "params": {"max_tokens": 99999},
        "messages": [{"role": "robot", "content": "hi"}],
    }
    with pytest.raises(DecodeError) as caught:
        decode(SUBMITTED, json.dumps(payload).encode())
    error = caught.value
    assert error.kind is DeadLetterKind.SCHEMA_INVALID
    assert error.reason.startswith("4 validation errors for cairn.request.submitted.v1: ")
    for path in ("request_id:", "params.max_tokens:", "messages.0.role:", "submitted_at: Field required"):
        assert path in error.reason
    assert str(error) == f"schema_invalid: {error.reason}"


def test_json_decoding_is_strict() -> None:
    payload = json.loads(encode(EVENT))
    payload["params"] = {"max_tokens": "12"}
    assert kind_of(json.dumps(payload).encode()) is DeadLetterKind.SCHEMA_INVALID


def test_errors_are_summarised_to_ten() -> None:
    payload = json.loads(encode(EVENT))
    payload["messages"] = [{"role": "robot", "content": "x"}] * 15
    with pytest.raises(DecodeError, match=r"and 5 more$"):
        decode(SUBMITTED, json.dumps(payload).encode())


@pytest.mark.parametrize(
    "moment", ["1700000000", "2025-03-04 09:15:22Z", "2025-03-04T09:15:22+0100", "2025-03-04"]
)
def test_timestamps_must_be_rfc3339_text(moment: str) -> None:
    payload = json.loads(encode(EVENT)) | {"submitted_at": moment}
    with pytest.raises(DecodeError, match=r"submitted_at: .*RFC 3339"):
        decode(SUBMITTED, json.dumps(payload).encode())


def test_unknown_event_type() -> None:
    with pytest.raises(DecodeError, match="unknown event type") as caught:
        decode("cairn.request.submitted.v7", encode(EVENT))
    assert caught.value.kind is DeadLetterKind.UNKNOWN_TYPE


@pytest.mark.parametrize("content_type", ["text/plain", "application/cloudevents+json", ""])
def test_unsupported_content_type(content_type: str) -> None:
    assert kind_of(encode(EVENT), content_type) is DeadLetterKind.UNSUPPORTED_CONTENT_TYPE


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [(CONTENT_TYPE_JSON, DeadLetterKind.NOT_JSON), (CONTENT_TYPE_AVRO, DeadLetterKind.NOT_AVRO)],
)
def test_a_tombstone_is_not_an_event(content_type: str, kind: DeadLetterKind) -> None:
    with pytest.raises(DecodeError, match="NoneType, not bytes") as caught:
        decode(SUBMITTED, None, content_type)  # type: ignore[arg-type]
    assert caught.value.kind is kind


def test_bytearray_and_memoryview_values_decode() -> None:
    data = encode(EVENT)
    assert decode(SUBMITTED, bytearray(data)) == EVENT  # type: ignore[arg-type]
    assert decode(SUBMITTED, memoryview(data)) == EVENT  # type: ignore[arg-type]


def test_truncated_avro() -> None:
    data = encode(EVENT, CONTENT_TYPE_AVRO)
    assert kind_of(data[:-3], CONTENT_TYPE_AVRO) is DeadLetterKind.NOT_AVRO


def test_avro_with_trailing_bytes() -> None:
    with pytest.raises(DecodeError, match="2 bytes left") as caught:
        decode(SUBMITTED, encode(EVENT, CONTENT_TYPE_AVRO) + b"\x00\x00", CONTENT_TYPE_AVRO)
    assert caught.value.kind is DeadLetterKind.NOT_AVRO


def test_json_sent_as_avro_is_not_avro() -> None:
    assert kind_of(encode(EVENT), CONTENT_TYPE_AVRO) is DeadLetterKind.NOT_AVRO


def test_avro_that_decodes_but_breaks_the_model() -> None:
    datum = EVENT.model_dump(mode="json") | {"request_id": "has space"}
    buffer = io.BytesIO()
    schemaless_writer(buffer, avro_schema(RequestSubmittedV1), datum)
    with pytest.raises(DecodeError, match="request_id") as caught:
        decode(SUBMITTED, buffer.getvalue(), CONTENT_TYPE_AVRO)
    assert caught.value.kind is DeadLetterKind.SCHEMA_INVALID


def test_decode_error_survives_pickling() -> None:
    error = DecodeError(DeadLetterKind.NOT_JSON, "nope")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.kind, copy.reason, str(copy)) == (error.kind, error.reason, str(error))
    assert isinstance(copy, ValueError)
