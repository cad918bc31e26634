"""The models in cairn-events and the files under schemas/ say the same thing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cairn_events import EVENT_TYPES, load_topics, topic_of
from cairn_events.generate import stale_files
from cairn_events.registry import schema_family
from cairn_events.topics import TopicFile


def test_generated_files_match_the_models(schemas_root: Path) -> None:
    stale = stale_files(schemas_root)
    assert not stale, f"run `make schemas`; these differ from the models: {[str(p) for p in stale]}"


def test_generate_check_exits_clean(schemas_root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cairn_events.generate", "--check", "--schemas-dir", str(schemas_root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_schema_folder_without_a_model(schemas_root: Path) -> None:
    families = {schema_family(event_type) for event_type in EVENT_TYPES}
    # `topics/` holds the topic files, `examples/` the runnable clients in other languages
    folders = {
        path.name
        for path in schemas_root.iterdir()
        if path.is_dir() and path.name not in {"topics", "examples"}
    }
    assert folders <= families, f"schema folders with no model: {sorted(folders - families)}"
    for folder in folders:
        versions = {path.name.split(".")[0] for path in (schemas_root / folder).glob("v*.*")}
        registered = {
            event_type.rsplit(".", 1)[1] for event_type in EVENT_TYPES if event_type.startswith(f"{folder}.")
        }
        assert versions <= registered, (
            f"{folder}: schema versions with no model: {sorted(versions - registered)}"
        )


def test_every_event_type_is_on_exactly_one_topic_and_vice_versa(topic_files: dict[str, TopicFile]) -> None:
    """One primary topic per type; a shadow topic (`shadow_of`) repeats its primary's types."""
    listed = [
        entry.type for topic in topic_files.values() if topic.shadow_of is None for entry in topic.event_types
    ]
    assert len(listed) == len(set(listed)), "an event type is listed on two topics"
    assert set(listed) == set(EVENT_TYPES), (
        f"not on any topic: {sorted(set(EVENT_TYPES) - set(listed))}; "
        f"not registered: {sorted(set(listed) - set(EVENT_TYPES))}"
    )


def test_models_name_the_topic_that_lists_them() -> None:
    for event_type, event_cls in EVENT_TYPES.items():
        assert topic_of(event_type).name == event_cls.topic, event_type


def test_topic_key_is_every_events_key_field(topic_files: dict[str, TopicFile]) -> None:
    for topic in topic_files.values():
        for entry in topic.event_types:
            event_cls = EVENT_TYPES[entry.type]
            assert topic.key.field in event_cls.model_fields, f"{entry.type} has no field {topic.key.field}"
            assert event_cls.key_field == topic.key.field, f"{entry.type} is keyed by {event_cls.key_field}"


def test_the_seventeen_topics(topic_files: dict[str, TopicFile]) -> None:
    assert (
        sorted(topic_files)
        == sorted(load_topics())
        == [
            "cairn.admin",
            "cairn.alerts",
            "cairn.completions",
            "cairn.completions.deltas",
            "cairn.contexts",
            "cairn.datasets",
            "cairn.deadletter",
            "cairn.documents",
            "cairn.evaluations",
            "cairn.experiments",
            "cairn.feedback",
            "cairn.models",
            "cairn.prompts",
            "cairn.requests",
            "cairn.responses",
            "cairn.responses.shadow",
            "cairn.reviews",
            "cairn.screenings",
            "cairn.tuning",
        ]
    )
    assert all(topic.compatibility == "BACKWARD" for topic in topic_files.values())
