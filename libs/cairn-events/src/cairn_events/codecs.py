"""Encode events to message values and decode them back, as JSON or Avro (schemaless binary)."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from pydantic import ValidationError

from cairn_events.avro_schema import avro_schema
from cairn_events.base import Event
from cairn_events.common import DeadLetterKind
from cairn_events.paths import avro_schema_path, schemas_dir
from cairn_events.registry import UnknownEventType, event_class

__all__ = [
    "CONTENT_TYPES",
    "CONTENT_TYPE_AVRO",
    "CONTENT_TYPE_JSON",
    "DecodeError",
    "decode",
    "encode",
    "media_type",
]

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_AVRO = "application/avro"
CONTENT_TYPES = (CONTENT_TYPE_JSON, CONTENT_TYPE_AVRO)
_MAX_ERRORS = 10


class DecodeError(ValueError):
    """A message value that is not a valid event of its declared type; `kind` says why, for dead-lettering."""

    def __init__(self, kind: DeadLetterKind, reason: str) -> None:
        super().__init__(f"{kind.value}: {reason}")
        self.kind = kind
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.reason))


def media_type(content_type: str) -> str:
    """The bare media type of a `content-type` value: parameters dropped, lower case."""
    return content_type.split(";", 1)[0].strip().lower()


def encode(event: Event, content_type: str = CONTENT_TYPE_JSON) -> bytes:
    """The message value of an event.

    JSON: compact UTF-8 of `model_dump(mode="json")`. Avro: schemaless binary encoding with
    the event type's published `.avsc`. Raises ValueError for any other content type.
    """
    datum = event.model_dump(mode="json")
    kind = media_type(content_type)
    if kind == CONTENT_TYPE_JSON:
        text = json.dumps(datum, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    if kind == CONTENT_TYPE_AVRO:
        buffer = io.BytesIO()
        schemaless_writer(buffer, _parsed_avro(event.event_type), datum, strict=True)
        return buffer.getvalue()
    raise ValueError(f"unsupported content type {content_type!r}: use one of {', '.join(CONTENT_TYPES)}")


def decode(event_type: str, data: bytes, content_type: str = CONTENT_TYPE_JSON) -> Event:
    """The event a message value carries; raises `DecodeError` (and nothing else) when it cannot.

    JSON is validated strictly (no string-to-number coercion); Avro is read with the event
    type's published `.avsc` and must be consumed exactly, then validated by the model.
    """
    try:
        event_cls = event_class(event_type)
    except UnknownEventType as exc:
        raise DecodeError(DeadLetterKind.UNKNOWN_TYPE, str(exc)) from None
    kind = media_type(content_type) if isinstance(content_type, str) else ""
    if kind not in CONTENT_TYPES:
        raise DecodeError(
            DeadLetterKind.UNSUPPORTED_CONTENT_TYPE,
            f"content type {content_type!r} is not one of {', '.join(CONTENT_TYPES)}",
        )
    if not isinstance(data, bytes | bytearray | memoryview):  # e.g. a tombstone's None
        not_decodable = DeadLetterKind.NOT_JSON if kind == CONTENT_TYPE_JSON else DeadLetterKind.NOT_AVRO
        raise DecodeError(not_decodable, f"message value is {type(data).__name__}, not bytes")
    raw = bytes(data)
    return _decode_json(event_cls, raw) if kind == CONTENT_TYPE_JSON else _decode_avro(event_cls, raw)


def _decode_json(event_cls: type[Event], raw: bytes) -> Event:
    try:
        return event_cls.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            detail = errors[0]["msg"]
            raise DecodeError(DeadLetterKind.NOT_JSON, f"not UTF-8 JSON: {detail}") from None
        if errors and errors[0]["type"] == "model_type" and not errors[0]["loc"]:
            raise DecodeError(DeadLetterKind.SCHEMA_INVALID, "payload is not a JSON object") from None
        raise DecodeError(DeadLetterKind.SCHEMA_INVALID, _summary(event_cls, exc)) from None


def _decode_avro(event_cls: type[Event], raw: bytes) -> Event:
    buffer = io.BytesIO(raw)
    try:
        datum = schemaless_reader(buffer, _parsed_avro(event_cls.event_type), None)
    except Exception as exc:  # fastavro raises EOFError, IndexError, ValueError, UnicodeDecodeError...
        detail = str(exc) or type(exc).__name__
        raise DecodeError(DeadLetterKind.NOT_AVRO, f"not Avro of {event_cls.event_type}: {detail}") from None
    if buffer.tell() != len(raw):
        raise DecodeError(
            DeadLetterKind.NOT_AVRO,
            f"not Avro of {event_cls.event_type}: {len(raw) - buffer.tell()} bytes left after the record",
        )
    try:
        return event_cls.model_validate(datum)
    except ValidationError as exc:
        raise DecodeError(DeadLetterKind.SCHEMA_INVALID, _summary(event_cls, exc)) from None


def _summary(event_cls: type[Event], exc: ValidationError) -> str:
    """Pydantic's errors as `field.path: message; ...`, at most ten of them."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{_location(e['loc'])}: {e['msg']}" for e in errors[:_MAX_ERRORS]]
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more")
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} validation {noun} for {event_cls.event_type}: " + "; ".join(parts)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(payload)"


def _parsed_avro(event_type: str) -> Any:
    try:
        root = str(schemas_dir())
    except FileNotFoundError:
        root = ""
    return _load_avro(event_type, root)


@functools.cache
def _load_avro(event_type: str, root: str) -> Any:
    """The parsed `.avsc` under `root`, or the schema converted from the model when there is none."""
    path = avro_schema_path(event_type, root=Path(root)) if root else None
    if path is not None and path.is_file():
        schema = json.loads(path.read_text(encoding="utf-8"))
    else:
        schema = avro_schema(event_class(event_type))
    return parse_schema(schema)
