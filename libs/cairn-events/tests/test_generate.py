"""The schema generator and its `--check` mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from fastavro import parse_schema
from jsonschema import Draft202012Validator
from pydantic import Field

from cairn_events import EVENT_TYPES, ContextChunk, Event, Verdict
from cairn_events.avro_schema import avro_schema
from cairn_events.generate import expected_files, main


def test_writes_then_checks_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--schemas-dir", str(tmp_path)]) == 0
    assert main(["--schemas-dir", str(tmp_path), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert len(list(tmp_path.rglob("v1.schema.json"))) == len(EVENT_TYPES)
    assert len(list(tmp_path.rglob("v1.avsc"))) == len(EVENT_TYPES)


def test_check_lists_stale_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--schemas-dir", str(tmp_path)])
    changed = tmp_path / "cairn.request.submitted" / "v1.avsc"
    changed.write_text(changed.read_text() + " ")
    missing = tmp_path / "cairn.alert.raised" / "v1.schema.json"
    missing.unlink()
    capsys.readouterr()
    assert main(["--schemas-dir", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "run `make schemas`" in out
    assert str(changed) in out
    assert str(missing) in out
    assert main(["--schemas-dir", str(tmp_path)]) == 0
    assert main(["--schemas-dir", str(tmp_path), "--check"]) == 0


def test_generated_files_are_deterministic_valid_schemas(tmp_path: Path) -> None:
    files = expected_files(tmp_path)
    assert files == expected_files(tmp_path)
    for path, content in files.items():
        assert content.endswith("}\n")
        document = json.loads(content)
        assert content == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if path.name.endswith(".schema.json"):
            Draft202012Validator.check_schema(document)
            assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert document["$id"].startswith("urn:cairn:schema:")
            assert document["title"]
            assert document["description"]
        else:
            parse_schema(document)
            assert document["namespace"] == ".".join(path.parent.name.split(".")[:2])


def test_named_avro_types_are_defined_once(tmp_path: Path) -> None:
    content = expected_files(tmp_path)[tmp_path / "cairn.input.screened" / "v1.avsc"]
    assert content.count('"name": "ContextChunk"') == 1
    assert content.count('"name": "ChatMessage"') == 1
    document = json.loads(content)
    chunks = next(field for field in document["fields"] if field["name"] == "chunks")
    assert chunks["type"]["items"]["name"] == "ContextChunk"


def test_a_named_type_used_twice_is_referenced_by_name() -> None:
    class PairFoundV1(Event):
        """Two chunks compared."""

        event_type: ClassVar[str] = "cairn.pair.found.v1"
        topic: ClassVar[str] = "cairn.pairs"
        key_field: ClassVar[str] = "pair_id"

        pair_id: str = Field(description="Pair id.")
        left: ContextChunk = Field(description="Left chunk.")
        right: ContextChunk | None = Field(None, description="Right chunk.")
        verdicts: dict[str, Verdict] = Field({}, description="Verdicts by check.")
        verdict: Verdict = Field(description="Overall verdict.")
        side: Literal["left", "right"] = Field(description="Winning side.")

    schema = avro_schema(PairFoundV1)
    fields = {field["name"]: field for field in schema["fields"]}
    assert schema["namespace"] == "cairn.pair"
    assert fields["left"]["type"]["name"] == "ContextChunk"
    assert fields["right"]["type"] == ["null", "ContextChunk"]
    assert fields["right"]["default"] is None
    assert fields["verdicts"]["type"]["values"]["name"] == "Verdict"
    assert fields["verdict"]["type"] == "Verdict"
    assert fields["side"]["type"] == {
        "type": "enum",
        "name": "PairFoundV1Side",
        "doc": "Winning side.",
        "symbols": ["left", "right"],
    }
    parse_schema(schema)
