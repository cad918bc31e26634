"""The registry: type strings to classes, unknown types, dataschema URIs, where the schema files are."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_events import (
    EVENT_TYPES,
    RequestSubmittedV1,
    UnknownEventType,
    dataschema_uri,
    event_class,
    schemas_dir,
)
from cairn_events.paths import SCHEMAS_DIR_ENV, avro_schema_path, example_paths, json_schema_path
from cairn_events.registry import schema_family, schema_version


def test_event_class_finds_registered_types() -> None:
    assert event_class("cairn.request.submitted.v1") is RequestSubmittedV1
    assert all(event_class(name).event_type == name for name in EVENT_TYPES)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        EVENT_TYPES["cairn.fake.thing.v1"] = RequestSubmittedV1  # type: ignore[index]


def test_unknown_event_type_is_a_key_error_with_a_clear_message() -> None:
    with pytest.raises(KeyError) as caught:
        event_class("cairn.request.submitted.v9")
    assert isinstance(caught.value, UnknownEventType)
    assert caught.value.event_type == "cairn.request.submitted.v9"
    assert "unknown event type 'cairn.request.submitted.v9'" in str(caught.value)
    assert "cairn.request.submitted.v1" in str(caught.value)


def test_dataschema_uri_and_family() -> None:
    assert dataschema_uri("cairn.request.submitted.v1") == "urn:cairn:schema:cairn.request.submitted:v1"
    assert dataschema_uri("cairn.model.promoted.v12") == "urn:cairn:schema:cairn.model.promoted:v12"
    assert schema_family("cairn.deadletter.recorded.v1") == "cairn.deadletter.recorded"
    assert schema_version("cairn.deadletter.recorded.v3") == 3


@pytest.mark.parametrize(
    "bad", ["request.submitted.v1", "cairn.request.submitted", "cairn.Request.submitted.v1", ""]
)
def test_malformed_event_types_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="malformed event type"):
        dataschema_uri(bad)


def test_schemas_dir_is_found_in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCHEMAS_DIR_ENV, raising=False)
    found = schemas_dir()
    assert found.name == "schemas"
    assert (found / "topics").is_dir()


def test_schemas_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(SCHEMAS_DIR_ENV, str(tmp_path))
    assert schemas_dir() == tmp_path
    assert (
        json_schema_path("cairn.request.submitted.v1") == tmp_path / "cairn.request.submitted/v1.schema.json"
    )
    assert avro_schema_path("cairn.request.submitted.v1") == tmp_path / "cairn.request.submitted/v1.avsc"


def test_example_paths_belong_to_their_version(tmp_path: Path) -> None:
    examples = tmp_path / "cairn.request.submitted" / "examples"
    examples.mkdir(parents=True)
    for name in ("v1-b.json", "v1-a.json", "v2-a.json", "notes.md"):
        (examples / name).write_text("{}")
    found = example_paths("cairn.request.submitted.v1", tmp_path)
    assert [path.name for path in found] == ["v1-a.json", "v1-b.json"]
