"""`check_backward` on synthetic schema pairs: each breaking rule is caught, allowed changes pass."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from cairn_events import EVENT_TYPES
from cairn_events.compat import check_backward
from cairn_events.json_schema import json_schema

ADVICE = "publish a new version (v2) beside v1 instead"

BASE: dict[str, Any] = {
    "$id": "urn:cairn:schema:cairn.thing.happened:v1",
    "title": "ThingHappenedV1",
    "type": "object",
    "additionalProperties": False,
    "required": ["thing_id", "count", "kind", "params"],
    "properties": {
        "thing_id": {"type": "string", "pattern": "^[a-z0-9-]{1,64}$"},
        "count": {"type": "integer", "minimum": 0, "maximum": 100},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.5},
        "kind": {"$ref": "#/$defs/Kind"},
        "note": {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}], "default": None},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "params": {"$ref": "#/$defs/Params"},
        "seen_at": {"type": "string", "format": "date-time"},
    },
    "$defs": {
        "Kind": {"type": "string", "enum": ["a", "b", "c"]},
        "Params": {
            "type": "object",
            "additionalProperties": False,
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1},
                "seed": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            },
        },
    },
}


def changed(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    edit(new)
    return new


def props(schema: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = schema["properties"]
    return result


def drop(schema: dict[str, Any], name: str) -> None:
    props(schema).pop(name)
    schema["required"].remove(name)


def require(schema: dict[str, Any], name: str, node: dict[str, Any]) -> None:
    props(schema)[name] = node
    schema["required"].append(name)


BREAKING: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "remove a field": (lambda s: props(s).pop("seen_at"), "seen_at: field removed"),
    "remove a required field": (lambda s: drop(s, "count"), "count: field removed"),
    "add a required field": (
        lambda s: require(s, "owner", {"type": "string"}),
        "owner: required field added",
    ),
    "make a field required": (lambda s: s["required"].append("ratio"), "ratio: field became required"),
    "change a type": (
        lambda s: props(s).update(count={"type": "string"}),
        "count: type changed from integer to string",
    ),
    "narrow number to integer": (
        lambda s: props(s).update(ratio={"type": "integer"}),
        "ratio: type changed from number to integer",
    ),
    "drop null from an optional field": (
        lambda s: props(s).update(note={"type": "string"}),
        "note: type changed from null|string to string",
    ),
    "remove an enum value": (
        lambda s: s["$defs"]["Kind"].update(enum=["a", "b"]),
        "kind: enum value(s) removed: ['c']",
    ),
    "restrict to an enum": (
        lambda s: props(s)["thing_id"].update(enum=["x"]),
        "thing_id: now restricted to the values ['x']",
    ),
    "raise a minimum": (
        lambda s: props(s)["count"].update(minimum=1),
        "count: lower bound raised from 0 to 1",
    ),
    "lower a maximum": (
        lambda s: props(s)["count"].update(maximum=50),
        "count: upper bound lowered from 100 to 50",
    ),
    "make a bound exclusive": (
        lambda s: props(s)["ratio"].update(exclusiveMaximum=1),
        "ratio: upper bound lowered from 1 to 1",
    ),
    "add a bound": (lambda s: props(s)["tags"]["items"].update(minLength=1), "tags[]: minimum length raised"),
    "lower a max length": (
        lambda s: props(s)["note"]["anyOf"][0].update(maxLength=100),
        "note: maximum length lowered from 200 to 100",
    ),
    "lower max items": (lambda s: props(s)["tags"].update(maxItems=5), "tags: maximum item count lowered"),
    "change a pattern": (
        lambda s: props(s)["thing_id"].update(pattern="^[a-z]{1,64}$"),
        "thing_id: pattern changed",
    ),
    "add a format": (lambda s: props(s)["thing_id"].update(format="uuid"), "thing_id: format changed"),
    "narrow a nested field": (
        lambda s: s["$defs"]["Params"]["properties"]["size"].update(maximum=10),
        "params.size: upper bound lowered",
    ),
    "remove a nested field": (
        lambda s: s["$defs"]["Params"]["properties"].pop("seed"),
        "params.seed: field removed",
    ),
    "narrow map values": (
        lambda s: props(s)["labels"]["additionalProperties"].update(maxLength=8),
        "labels.*: maximum length lowered",
    ),
    "close an open map": (
        lambda s: props(s)["labels"].update(additionalProperties=False),
        "labels: extra properties no longer accepted",
    ),
    "narrow array items": (
        lambda s: props(s)["tags"].update(items={"type": "integer"}),
        "tags[]: type changed from string to integer",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKING))
def test_breaking_change_is_reported(name: str) -> None:
    edit, expected = BREAKING[name]
    problems = check_backward(BASE, changed(edit))
    assert problems, f"{name} was not reported"
    assert any(problem.startswith(expected) for problem in problems), problems
    assert all(problem.endswith(ADVICE) for problem in problems)


ALLOWED: dict[str, Callable[[dict[str, Any]], object]] = {
    "no change": lambda s: None,
    "add an optional field": lambda s: props(s).update(
        colour={"anyOf": [{"type": "string"}, {"type": "null"}]}
    ),
    "widen integer to number": lambda s: props(s).update(count={"type": "number"}),
    "add an enum value": lambda s: s["$defs"]["Kind"].update(enum=["a", "b", "c", "d"]),
    "make a field optional": lambda s: s["required"].remove("kind"),
    "raise a maximum": lambda s: props(s)["count"].update(maximum=1000),
    "drop a bound": lambda s: props(s)["count"].pop("minimum"),
    "allow null": lambda s: props(s).update(
        count={"anyOf": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "null"}]}
    ),
    "edit descriptions and titles": lambda s: props(s)["count"].update(
        description="How many.", title="Count"
    ),
    "inline a $ref": lambda s: props(s).update(kind={"type": "string", "enum": ["a", "b", "c"]}),
    "drop a pattern": lambda s: props(s)["thing_id"].pop("pattern"),
    "add a nested optional field": lambda s: s["$defs"]["Params"]["properties"].update(
        temperature={"type": "number", "default": 0}
    ),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_compatible_change_passes(name: str) -> None:
    assert check_backward(BASE, changed(ALLOWED[name])) == []


def test_advice_names_the_next_version() -> None:
    old = changed(lambda s: s.update({"$id": "urn:cairn:schema:cairn.thing.happened:v3"}))
    new = changed(lambda s: s.update({"$id": "urn:cairn:schema:cairn.thing.happened:v3"}))
    props(new).pop("count")
    assert check_backward(old, new)[0].endswith("publish a new version (v4) beside v3 instead")


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_published_schema_is_compatible_with_itself(event_type: str) -> None:
    schema = json_schema(EVENT_TYPES[event_type])
    assert check_backward(schema, copy.deepcopy(schema)) == []
