"""Property tests: any payload valid under an event's JSON Schema decodes, and round-trips through both codecs;
`decode` answers arbitrary or damaged bytes with DecodeError and nothing else."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastavro import parse_schema
from fastavro.validation import validate as avro_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from cairn_events import CONTENT_TYPE_AVRO, CONTENT_TYPE_JSON, EVENT_TYPES, DecodeError, decode, encode
from cairn_events.avro_schema import avro_schema
from cairn_events.json_schema import json_schema

EVENT_TYPE_NAMES = sorted(EVENT_TYPES)
CONTENT_TYPES = [CONTENT_TYPE_JSON, CONTENT_TYPE_AVRO]
EXAMPLES = int(os.environ.get("CAIRN_PROPERTY_EXAMPLES", "40"))  # raise it for a thorough run
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
OFFSETS = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(-timedelta(hours=8)),
        timezone(timedelta(hours=14)),
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def payloads(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under a JSON Schema node (the subset pydantic emits for our models)."""
    node = _resolve(node, root)
    if "anyOf" in node:
        return st.one_of([payloads(branch, root) for branch in node["anyOf"]])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(min_value=node.get("minimum"), max_value=node.get("maximum"))
    if kind == "number":
        return _numbers(node)
    if kind == "string":
        return _strings(node)
    if kind == "array":
        items = payloads(node.get("items", {}), root)
        return st.lists(items, min_size=node.get("minItems", 0), max_size=node.get("maxItems", 3))
    if kind == "object":
        props = node.get("properties", {})
        if not props:
            values = payloads(node.get("additionalProperties", {"type": "string"}), root)
            return st.dictionaries(st.text(max_size=12), values, max_size=3)
        required = set(node.get("required", []))
        return st.fixed_dictionaries(
            {name: payloads(sub, root) for name, sub in props.items() if name in required},
            optional={name: payloads(sub, root) for name, sub in props.items() if name not in required},
        )
    raise AssertionError(f"no strategy for schema node {node!r}")


def _numbers(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    floats = st.floats(
        min_value=low,
        max_value=high,
        exclude_min="exclusiveMinimum" in node,
        exclude_max="exclusiveMaximum" in node,
        allow_nan=False,
        allow_infinity=False,
    )

    def in_bounds(value: int) -> bool:
        return (low is None or value > low or (value == low and "minimum" in node)) and (
            high is None or value < high or (value == high and "maximum" in node)
        )

    return floats | st.integers(-1000, 1000).filter(in_bounds)


def _strings(node: dict[str, Any]) -> st.SearchStrategy[str]:
    if node.get("format") == "date-time":
        moments = st.datetimes(datetime(1970, 1, 2), datetime(9998, 12, 30), timezones=OFFSETS)
        return st.one_of(
            moments.map(lambda moment: moment.isoformat()),
            moments.map(lambda moment: moment.astimezone(UTC).isoformat().replace("+00:00", "Z")),
        )
    min_size, max_size = node.get("minLength", 0), node.get("maxLength")
    if "pattern" in node:
        return st.from_regex(node["pattern"], fullmatch=True).filter(
            lambda text: len(text) >= min_size and (max_size is None or len(text) <= max_size)
        )
    return st.text(min_size=min_size, max_size=max_size if max_size is not None else 24)


@pytest.mark.parametrize("event_type", EVENT_TYPE_NAMES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_schema_valid_payloads_decode_and_round_trip(event_type: str, data: st.DataObject) -> None:
    event_cls = EVENT_TYPES[event_type]
    schema = json_schema(event_cls)
    payload = data.draw(payloads(schema, schema), label="payload")
    Draft202012Validator(schema).validate(payload)

    event = decode(event_type, json.dumps(payload).encode())

    assert decode(event_type, encode(event)) == event
    assert decode(event_type, encode(event, CONTENT_TYPE_AVRO), CONTENT_TYPE_AVRO) == event
    Draft202012Validator(schema).validate(json.loads(encode(event)))
    assert avro_validate(event.model_dump(mode="json"), parse_schema(avro_schema(event_cls)))


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@settings(max_examples=EXAMPLES * 8, deadline=None)
@given(event_type=st.sampled_from(EVENT_TYPE_NAMES), data=st.binary(max_size=512))
def test_decode_of_arbitrary_bytes_raises_only_decode_error(
    event_type: str, data: bytes, content_type: str
) -> None:
    with contextlib.suppress(DecodeError):
        decode(event_type, data, content_type)


@settings(max_examples=EXAMPLES * 8, deadline=None)
@given(event_type=st.sampled_from(EVENT_TYPE_NAMES), value=JSON_VALUES)
def test_decode_of_arbitrary_json_raises_only_decode_error(event_type: str, value: Any) -> None:
    with contextlib.suppress(DecodeError):
        decode(event_type, json.dumps(value).encode())


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_decode_of_damaged_messages_raises_only_decode_error(content_type: str, data: st.DataObject) -> None:
    event_type = data.draw(st.sampled_from(EVENT_TYPE_NAMES), label="event_type")
    schema = json_schema(EVENT_TYPES[event_type])
    event = decode(event_type, json.dumps(data.draw(payloads(schema, schema), label="payload")).encode())
    raw = bytearray(encode(event, content_type))
    damage = data.draw(st.sampled_from(["truncate", "flip", "append"]), label="damage")
    if damage == "truncate":
        raw = raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)), label="cut")]
    elif damage == "flip":
        index = data.draw(st.integers(0, len(raw) - 1), label="index")
        raw[index] ^= data.draw(st.integers(1, 255), label="mask")
    else:
        raw += data.draw(st.binary(min_size=1, max_size=8), label="tail")
    try:
        decoded = decode(event_type, bytes(raw), content_type)
    except DecodeError:
        return
    assert type(decoded) is type(event)
