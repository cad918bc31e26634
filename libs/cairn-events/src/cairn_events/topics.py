"""The topic registry: `schemas/topics/<topic>.yaml` read, validated and cached."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from cairn_events.base import EVENT_TYPE_PATTERN, frozen_config
from cairn_events.paths import schemas_dir
from cairn_events.registry import UnknownEventType

__all__ = [
    "EXTERNAL",
    "SERVICES",
    "EventTypeEntry",
    "TopicFile",
    "TopicFileError",
    "TopicSpec",
    "load_topics",
    "read_topic_file",
    "shadow_topic",
    "topic_of",
]

EXTERNAL = "upstream"
"""How topic files name systems outside Cairn (upstream producers and consumers, the `cairn` CLI)."""

Party = Literal[
    "prompt-store",
    "retriever",
    "safety",
    "inference",
    "feedback",
    "tuner",
    "evaluator",
    "audit",
    "gateway",
    "upstream",
]
"""Who may appear as owner, producer or consumer of a topic: a Cairn service or `EXTERNAL`."""

SERVICES: tuple[str, ...] = tuple(party for party in get_args(Party) if party != EXTERNAL)
"""The Cairn services that may appear as owner, producer or consumer of a topic (`Party` less `EXTERNAL`)."""

TopicName = Annotated[str, StringConstraints(pattern=r"^cairn\.[a-z][a-z0-9_.-]*$")]
EventTypeName = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN)]


class TopicFileError(ValueError):
    """A topic file that is not valid YAML or does not follow the topic file format."""


@dataclass(frozen=True)
class TopicSpec:
    """One Kafka topic: what it carries, who writes and reads it, and how it is configured.

    `retention_ms` None means the topic is kept forever (`retention.ms=-1`). `shadow_of` names the
    primary topic whose replay and shadow traffic this topic carries instead (see `shadow_topic`).
    """

    name: str
    description: str
    owner: str
    key: str
    partitions: int
    compatibility: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    event_types: tuple[str, ...]
    retention_ms: int | None
    shadow_of: str | None = None


class KeySpec(BaseModel):
    """The partition key of a topic."""

    model_config = frozen_config()

    field: str = Field(min_length=1, description="The payload field whose value is the message key.")
    description: str = Field(min_length=1, description="What the key is and why it keeps order.")


class EventTypeEntry(BaseModel):
    """One event type a topic carries, with its schema files (paths relative to `schemas/`)."""

    model_config = frozen_config()

    type: EventTypeName = Field(description="The CloudEvents type, e.g. `cairn.request.submitted.v1`.")
    schema_: str = Field(alias="schema", description="The JSON Schema file.")
    avro: str = Field(description="The Avro schema file.")
    examples: list[str] = Field(min_length=1, description="Example payload files.")


class PlannedParties(BaseModel):
    """Producers and consumers the architecture intends but that are not built yet (documentation only)."""

    model_config = frozen_config()

    producers: list[Party] = Field([], description="Intended producers.")
    consumers: list[Party] = Field([], description="Intended consumers.")


class TopicFile(BaseModel):
    """The contents of `schemas/topics/<topic>.yaml`."""

    model_config = frozen_config()

    name: TopicName = Field(description="The topic name; also the file name.")
    description: str = Field(min_length=1, description="What the topic carries.")
    owner: Party = Field(description="The service that owns the topic's contract.")
    key: KeySpec = Field(description="The partition key.")
    partitions: int = Field(ge=1, description="Partition count to create the topic with.")
    retention_ms: int | None = Field(description="Retention in milliseconds; null keeps messages forever.")
    compatibility: Literal["BACKWARD", "FORWARD", "FULL", "NONE"] = Field(
        description="Compatibility mode new schema versions must keep."
    )
    producers: list[Party] = Field(description="Who publishes on the topic today.")
    consumers: list[Party] = Field(description="Who subscribes to the topic today.")
    planned: PlannedParties = Field(PlannedParties(), description="Who is intended to (documentation only).")
    event_types: list[EventTypeEntry] = Field(min_length=1, description="The event types the topic carries.")
    shadow_of: TopicName | None = Field(
        None,
        description=(
            "The primary topic this one shadows: events of the primary's types that belong to a replay or "
            "shadow trail (`ce_replayid` set) are published here instead, so the primary's consumers never "
            "see them. The types must be the primary's."
        ),
    )

    def spec(self) -> TopicSpec:
        """The runtime view of this topic file."""
        return TopicSpec(
            name=self.name,
            description=self.description.strip(),
            owner=self.owner,
            key=self.key.field,
            partitions=self.partitions,
            compatibility=self.compatibility,
            producers=tuple(self.producers),
            consumers=tuple(self.consumers),
            event_types=tuple(entry.type for entry in self.event_types),
            retention_ms=self.retention_ms,
            shadow_of=self.shadow_of,
        )


def read_topic_file(path: Path) -> TopicFile:
    """Parse and validate one topic file; raises `TopicFileError` naming the file and the problems."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        topic = TopicFile.model_validate(content)
    except (yaml.YAMLError, ValidationError) as exc:
        raise TopicFileError(f"{path}: {exc}") from exc
    if topic.name != path.stem:
        raise TopicFileError(f"{path}: name {topic.name!r} does not match the file name")
    for field_name in ("producers", "consumers"):
        parties: list[str] = getattr(topic, field_name)
        if len(set(parties)) != len(parties):
            raise TopicFileError(f"{path}: {field_name} lists a party twice")
    types = [entry.type for entry in topic.event_types]
    if len(set(types)) != len(types):
        raise TopicFileError(f"{path}: event_types lists a type twice")
    return topic


def load_topics(directory: Path | None = None) -> dict[str, TopicSpec]:
    """Every topic, by name, from `<directory>/*.yaml` (default `schemas_dir() / "topics"`).

    `directory` may also be a `schemas/` folder holding `topics/`. Files are validated (see
    `read_topic_file`) and an event type may belong to one topic only, except that a shadow topic
    (`shadow_of`) repeats the types of the existing primary topic it names. Results are cached
    per folder; the returned dict is a fresh copy.
    """
    folder = directory if directory is not None else schemas_dir() / "topics"
    if (folder / "topics").is_dir():
        folder = folder / "topics"
    return dict(_load(str(folder.resolve())))


@functools.cache
def _load(folder: str) -> dict[str, TopicSpec]:
    paths = sorted(Path(folder).glob("*.yaml"))
    if not paths:
        raise TopicFileError(f"{folder}: no topic files (*.yaml)")
    topics: dict[str, TopicSpec] = {}
    owner_of: dict[str, str] = {}
    for path in paths:
        spec = read_topic_file(path).spec()
        if spec.shadow_of is None:
            for event_type in spec.event_types:
                if event_type in owner_of:
                    raise TopicFileError(f"{path}: {event_type} is already on {owner_of[event_type]}")
                owner_of[event_type] = spec.name
        topics[spec.name] = spec
    for spec in topics.values():
        if spec.shadow_of is None:
            continue
        where = Path(folder) / f"{spec.name}.yaml"
        primary = topics.get(spec.shadow_of)
        if primary is None or primary.shadow_of is not None:
            raise TopicFileError(f"{where}: shadow_of {spec.shadow_of!r} is not a primary topic")
        if set(spec.event_types) != set(primary.event_types):
            raise TopicFileError(f"{where}: a shadow topic carries exactly the types of {primary.name}")
        if sum(1 for other in topics.values() if other.shadow_of == spec.shadow_of) > 1:
            raise TopicFileError(f"{where}: {spec.shadow_of} has more than one shadow topic")
    return topics


def shadow_topic(topic: str) -> str | None:
    """The topic that carries `topic`'s replay and shadow traffic, or None when it has none.

    An event of a replay or shadow trail (its envelope's `ce_replayid` set) whose topic has a shadow
    topic is published there instead (`cairn_bus.publisher`), so that topic's upstream consumers
    never see it. Read from the repository's topic files once.
    """
    return _shadow_topics().get(topic)


@functools.cache
def _shadow_topics() -> dict[str, str]:
    return {spec.shadow_of: spec.name for spec in load_topics().values() if spec.shadow_of is not None}


def topic_of(event_type: str) -> TopicSpec:
    """The (primary) topic that carries an event type; raises `UnknownEventType` if no topic file
    lists it. A shadow topic that repeats the type is never returned."""
    for spec in load_topics().values():
        if spec.shadow_of is None and event_type in spec.event_types:
            return spec
    raise UnknownEventType(event_type)
