"""The topic registry read from `schemas/topics/*.yaml`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cairn_events import TopicSpec, UnknownEventType, load_topics, topic_of
from cairn_events.topics import TopicFileError, shadow_topic

VALID = """
name: cairn.things
description: Things that happened.
owner: audit
key:
  field: thing_id
  description: The thing id.
partitions: 3
retention_ms: null
compatibility: BACKWARD
producers: [upstream]
consumers: [audit]
planned:
  consumers: [audit, tuner]
event_types:
  - type: cairn.thing.happened.v1
    schema: cairn.thing.happened/v1.schema.json
    avro: cairn.thing.happened/v1.avsc
    examples: [cairn.thing.happened/examples/v1-one.json]
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_reads_a_topic_file(tmp_path: Path) -> None:
    write(tmp_path / "topics", "cairn.things", VALID)
    expected = TopicSpec(
        name="cairn.things",
        description="Things that happened.",
        owner="audit",
        key="thing_id",
        partitions=3,
        compatibility="BACKWARD",
        producers=("upstream",),
        consumers=("audit",),
        event_types=("cairn.thing.happened.v1",),
        retention_ms=None,
    )
    assert load_topics(tmp_path / "topics") == {"cairn.things": expected}
    assert load_topics(tmp_path) == {"cairn.things": expected}  # a schemas/ folder works too


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("name: cairn.things", "name: cairn.other"), "does not match the file name"),
        (("owner: audit", "owner: billing"), "owner"),
        (("partitions: 3", "partitions: 0"), "partitions"),
        (("compatibility: BACKWARD", "compatibility: SOMETIMES"), "compatibility"),
        (("consumers: [audit]", "consumers: [audit, audit]"), "consumers lists a party twice"),
        (("type: cairn.thing.happened.v1", "type: thing.happened"), "type"),
        (("retention_ms: null", "retention_ms: null\ncolour: blue"), "colour"),
        (("key:\n  field: thing_id", "key:\n  field: ''"), "field"),
        (("description: Things", "description: [Things"), "description"),
    ],
)
def test_rejects_invalid_topic_files(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    write(tmp_path, "cairn.things", VALID.replace(*change))
    with pytest.raises(TopicFileError, match=message):
        load_topics(tmp_path)


def test_an_event_type_belongs_to_one_topic(tmp_path: Path) -> None:
    write(tmp_path, "cairn.things", VALID)
    write(tmp_path, "cairn.others", VALID.replace("name: cairn.things", "name: cairn.others"))
    with pytest.raises(TopicFileError, match=r"already on cairn\.others"):
        load_topics(tmp_path)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(TopicFileError, match="no topic files"):
        load_topics(tmp_path)


def test_results_are_cached_but_callers_get_their_own_dict(tmp_path: Path) -> None:
    write(tmp_path, "cairn.things", VALID)
    first = load_topics(tmp_path)
    first.clear()
    assert list(load_topics(tmp_path)) == ["cairn.things"]


def test_topic_of_uses_the_repository_topics() -> None:
    assert topic_of("cairn.request.submitted.v1").name == "cairn.requests"
    assert topic_of("cairn.model.promoted.v1").key == "model_name"
    with pytest.raises(UnknownEventType):
        topic_of("cairn.nothing.happened.v1")


SHADOW = VALID.replace("name: cairn.things", "name: cairn.things.shadow").replace(
    "compatibility: BACKWARD", "compatibility: BACKWARD\nshadow_of: cairn.things"
)


def test_a_shadow_topic_repeats_its_primary_topics_types(tmp_path: Path) -> None:
    write(tmp_path, "cairn.things", VALID)
    write(tmp_path, "cairn.things.shadow", SHADOW)
    topics = load_topics(tmp_path)
    assert topics["cairn.things.shadow"].shadow_of == "cairn.things"
    assert topics["cairn.things.shadow"].event_types == topics["cairn.things"].event_types
    assert topics["cairn.things"].shadow_of is None


@pytest.mark.parametrize(
    ("shadow", "message"),
    [
        (SHADOW.replace("shadow_of: cairn.things", "shadow_of: cairn.nowhere"), "is not a primary topic"),
        (SHADOW.replace("cairn.thing.happened.v1", "cairn.thing.vanished.v1"), "exactly the types"),
    ],
)
def test_a_shadow_topic_must_shadow_an_existing_topic_with_its_types(
    tmp_path: Path, shadow: str, message: str
) -> None:
    write(tmp_path, "cairn.things", VALID)
    write(tmp_path, "cairn.things.shadow", shadow)
    with pytest.raises(TopicFileError, match=message):
        load_topics(tmp_path)


def test_a_topic_has_at_most_one_shadow(tmp_path: Path) -> None:
    write(tmp_path, "cairn.things", VALID)
    write(tmp_path, "cairn.things.shadow", SHADOW)
    write(
        tmp_path,
        "cairn.things.shadow2",
        SHADOW.replace("name: cairn.things.shadow", "name: cairn.things.shadow2"),
    )
    with pytest.raises(TopicFileError, match="more than one shadow topic"):
        load_topics(tmp_path)


def test_a_shadow_of_a_shadow_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "cairn.things", VALID)
    write(tmp_path, "cairn.things.shadow", SHADOW)
    write(
        tmp_path,
        "cairn.things.shadow2",
        SHADOW.replace("name: cairn.things.shadow", "name: cairn.things.shadow2").replace(
            "shadow_of: cairn.things", "shadow_of: cairn.things.shadow"
        ),
    )
    with pytest.raises(TopicFileError, match="is not a primary topic"):
        load_topics(tmp_path)


def test_the_responses_have_a_shadow_topic_and_lookups_name_the_primary() -> None:
    assert shadow_topic("cairn.responses") == "cairn.responses.shadow"
    assert shadow_topic("cairn.requests") is None
    assert topic_of("cairn.response.completed.v1").name == "cairn.responses"
    shadow = load_topics()["cairn.responses.shadow"]
    assert shadow.retention_ms is not None
    assert shadow.retention_ms < (load_topics()["cairn.responses"].retention_ms or 0)
