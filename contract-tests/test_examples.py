"""Every example validates against its JSON Schema and Avro schema, parses into its model, and round-trips."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.validation import validate as avro_validate
from jsonschema import Draft202012Validator, FormatChecker

from cairn_events import CONTENT_TYPE_AVRO, CONTENT_TYPE_JSON, EVENT_TYPES, decode, encode, schemas_dir
from cairn_events.paths import avro_schema_path, example_paths, json_schema_path
from cairn_events.topics import TopicFile

EXAMPLES = [
    pytest.param(event_type, path, id=f"{event_type}:{path.name}")
    for event_type in sorted(EVENT_TYPES)
    for path in example_paths(event_type, schemas_dir())
]


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_has_examples(event_type: str) -> None:
    found = [path.name for path in example_paths(event_type, schemas_dir())]
    assert found, f"{event_type} has no examples/v1-*.json"
    if event_type == "cairn.request.submitted.v1":
        assert {"v1-minimal.json", "v1-full.json"} <= set(found)


@pytest.mark.parametrize(("event_type", "path"), EXAMPLES)
def test_example_validates_against_its_json_schema(
    event_type: str, path: Path, format_checker: FormatChecker
) -> None:
    schema = load(json_schema_path(event_type))
    validator = Draft202012Validator(schema, format_checker=format_checker)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(load(path))
    ]
    assert not errors, errors


def named_types(schema: Any, found: dict[str, Any]) -> dict[str, Any]:
    """Every named Avro type (record, enum) defined anywhere in `schema`, by name."""
    if isinstance(schema, list):
        for branch in schema:
            named_types(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum"):
            found[schema["name"]] = schema
        for field in schema.get("fields", []):
            named_types(field["type"], found)
        for key in ("items", "values"):
            if key in schema:
                named_types(schema[key], found)
    return found


def with_avro_defaults(schema: Any, datum: Any, named: dict[str, Any]) -> Any:
    """The datum as an Avro reader sees it: missing record fields filled from the `.avsc` defaults."""
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, list):
        records = [named.get(b, b) if isinstance(b, str) else b for b in schema]
        record = next((b for b in records if isinstance(b, dict) and b.get("type") == "record"), None)
        return with_avro_defaults(record, datum, named) if record and isinstance(datum, dict) else datum
    if not isinstance(schema, dict):
        return datum
    if schema["type"] == "record":
        return {
            field["name"]: with_avro_defaults(
                field["type"], datum[field["name"]] if field["name"] in datum else field["default"], named
            )
            for field in schema["fields"]
        }
    if schema["type"] == "array":
        return [with_avro_defaults(schema["items"], item, named) for item in datum]
    if schema["type"] == "map":
        return {key: with_avro_defaults(schema["values"], value, named) for key, value in datum.items()}
    return datum


@pytest.mark.parametrize(("event_type", "path"), EXAMPLES)
def test_example_validates_against_its_avro_schema(event_type: str, path: Path) -> None:
    avsc = load(avro_schema_path(event_type))
    datum = with_avro_defaults(avsc, load(path), named_types(avsc, {}))
    parsed = parse_schema(avsc)
    assert avro_validate(datum, parsed)
    # The Avro bytes any Avro library writes from the example decode to what its JSON decodes to.
    buffer = io.BytesIO()
    schemaless_writer(buffer, parsed, datum)
    assert decode(event_type, buffer.getvalue(), CONTENT_TYPE_AVRO) == decode(event_type, path.read_bytes())


@pytest.mark.parametrize(("event_type", "path"), EXAMPLES)
def test_example_parses_into_its_model_and_round_trips(
    event_type: str, path: Path, format_checker: FormatChecker
) -> None:
    event = decode(event_type, path.read_bytes())
    assert type(event) is EVENT_TYPES[event_type]
    for content_type in (CONTENT_TYPE_JSON, CONTENT_TYPE_AVRO):
        assert decode(event_type, encode(event, content_type), content_type) == event
    # What the model writes (every field, defaults included) is valid under the published schema too.
    validator = Draft202012Validator(load(json_schema_path(event_type)), format_checker=format_checker)
    validator.validate(json.loads(encode(event)))


def test_examples_are_listed_in_their_topic_file(
    topic_files: dict[str, TopicFile], schemas_root: Path
) -> None:
    listed = {
        schemas_root / example
        for topic in topic_files.values()
        for entry in topic.event_types
        for example in entry.examples
    }
    on_disk = set(schemas_root.glob("*/examples/*.json"))
    assert not listed - on_disk, f"listed in topic files but missing: {sorted(map(str, listed - on_disk))}"
    assert not on_disk - listed, f"examples no topic file lists: {sorted(map(str, on_disk - listed))}"


def test_topic_files_point_at_the_right_schema_files(
    topic_files: dict[str, TopicFile], schemas_root: Path
) -> None:
    for topic in topic_files.values():
        for entry in topic.event_types:
            assert schemas_root / entry.schema_ == json_schema_path(entry.type, schemas_root), entry
            assert schemas_root / entry.avro == avro_schema_path(entry.type, schemas_root), entry
            examples = {schemas_root / example for example in entry.examples}
            assert examples == set(example_paths(entry.type, schemas_root)), entry


def test_the_format_checker_really_checks_timestamps(format_checker: FormatChecker) -> None:
    schema = {"type": "string", "format": "date-time"}
    validator = Draft202012Validator(schema, format_checker=format_checker)
    assert validator.is_valid("2025-03-04T09:15:22.481+01:00")
    assert validator.is_valid("2025-03-04T08:15:22Z")
    for bad in ("2025-03-04T09:15:22", "2025-03-04", "yesterday", "2025-13-04T09:15:22Z"):
        assert not validator.is_valid(bad), bad
